"""The worker's typed configuration, loaded once at start-up.

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


class WorkerConfig(TemporalSettings):
    """The ``acmeflow worker`` process."""

    task_queue: str = "acmeflow"
    """Task queue this worker polls; the bridge starts workflows on it."""
    max_concurrent_activities: int = 200
    """Activities run at once; ACME steps are blocking calls, one thread each."""
    max_concurrent_workflow_tasks: int = 100
    """Workflow tasks processed at once."""
    max_cached_workflows: int = 1000
    """Workflows kept in memory between tasks; a sleeping Certificate costs about 0.75 MB.
    Beyond it the least recently used are evicted and replayed from history when they wake."""
    graceful_shutdown_s: float = 20.0
    """On SIGTERM, how long running activities may finish before the worker stops."""
    http01_store_dir: Path | None = None
    """Directory the HTTP-01 responder serves tokens from (standalone, outside Kubernetes)."""
    self_check_resolver: str = ""
    """DNS server (host:port) for self-checks; empty uses the system resolver."""
    self_check_http01_port: int = 80
    """Port the HTTP-01 self-check connects to (80 on the internet)."""
    self_check_dns_port: int = 53
    """Port of the zone's authoritative servers for the DNS-01 propagation check."""
    kubernetes: bool = False
    """Use Kubernetes Secrets and in-cluster HTTP-01 routing (Ingress or Gateway HTTPRoute)."""
    kubeconfig: Path | None = None
    """Kubeconfig for --kubernetes; the in-cluster service account when unset."""
    solver_namespace: str = "acmeflow"
    """Namespace of the acmeflow-solver Service that in-cluster HTTP-01 routes lead to."""
    cluster_domain: str = "cluster.local"
    """The cluster's DNS domain, for the solver Service's name seen from other namespaces."""


def _env_values(model: type[BaseModel], env: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for name in model.model_fields:
        for key in (ENV_PREFIX + name.upper(), _ENV_ALIASES.get(name, "")):
            if key and key in env:
                values[name] = env[key]
                break
    return values


def add_config_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel] = WorkerConfig
) -> None:
    parser.add_argument("--config", type=Path, help="YAML or JSON file with these settings")
    for name, info in model.model_fields.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=f"cfg_{name}", default=None, help=info.description
        )


def load_config(
    args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
) -> WorkerConfig:
    return load_settings(WorkerConfig, args, env)


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
