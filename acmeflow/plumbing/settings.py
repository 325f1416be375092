"""Typed configuration, loaded once at start-up; the worker and the bridge build on it.

Sources, later ones winning: defaults, a YAML/JSON file (``--config``), environment
variables (``ACMEFLOW_<FIELD>``; ``TEMPORAL_ADDRESS`` and ``TEMPORAL_NAMESPACE`` too, as
the ``temporal`` CLI reads them), then command-line flags (``--<field-with-dashes>``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict

ENV_PREFIX = "ACMEFLOW_"
Settings = TypeVar("Settings", bound=BaseModel)
_ENV_ALIASES = {"temporal_address": "TEMPORAL_ADDRESS", "temporal_namespace": "TEMPORAL_NAMESPACE"}


class TemporalSettings(BaseModel):
    """How a component reaches Temporal; shared by the worker and the bridge."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    temporal_address: str = "127.0.0.1:7233"
    """Temporal frontend, host:port (Temporal Cloud: <namespace>.<account>.tmprl.cloud:7233)."""
    temporal_namespace: str = "default"
    """Temporal namespace the workflows run in."""
    temporal_tls: bool = False
    """Use TLS to Temporal (implied by a client certificate or an API key)."""
    temporal_tls_cert: Path | None = None
    """Client certificate (PEM) for mTLS to Temporal."""
    temporal_tls_key: Path | None = None
    """Key of the client certificate."""
    temporal_tls_ca: Path | None = None
    """CA bundle that signed Temporal's server certificate (default: system roots)."""
    temporal_api_key_file: Path | None = None
    """File holding a Temporal Cloud API key (a file, so the key stays out of ps output)."""
    metrics_bind: str = ""
    """host:port for the Prometheus /metrics endpoint; empty disables it."""

    @property
    def uses_tls(self) -> bool:
        return bool(self.temporal_tls or self.temporal_tls_cert or self.temporal_api_key_file)


def _env_values(model: type[BaseModel], env: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for name in model.model_fields:
        for key in (ENV_PREFIX + name.upper(), _ENV_ALIASES.get(name, "")):
            if key and key in env:
                values[name] = env[key]
                break
    return values


def add_config_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    parser.add_argument("--config", type=Path, help="YAML or JSON file with these settings")
    for name, info in model.model_fields.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=f"cfg_{name}", default=None, help=info.description
        )


def load_settings(
    model: type[Settings],
    args: argparse.Namespace | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    values: dict[str, Any] = {}
    config_file = getattr(args, "config", None) if args else None
    if config_file:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings at the top level")
        values.update(loaded)
    values.update(_env_values(model, os.environ if env is None else env))
    if args is not None:
        values.update(
            {
                name: getattr(args, f"cfg_{name}")
                for name in model.model_fields
                if getattr(args, f"cfg_{name}", None) is not None
            }
        )
    return model.model_validate(values)
