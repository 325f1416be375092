"""The worker's typed configuration, loaded once at start-up (``acmeflow.plumbing.settings``)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from acmeflow.plumbing.settings import TemporalSettings, load_settings


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
    renewal_info_recheck_max_s: float = 86400.0
    """Most seconds before a certificate's ARI window is asked for again, whatever the CA's
    Retry-After (clamped to 1 min..1 day by RFC 9773); lower it only for tests and demos."""
    http01_store_dir: Path | None = None
    """Directory the HTTP-01 responder serves tokens from (standalone, outside Kubernetes)."""
    self_check_resolver: str = ""
    """DNS server (host:port) for self-checks; empty uses the system resolver."""
    self_check_http01_port: int = 80
    """Port the HTTP-01 self-check connects to (80 on the internet)."""
    self_check_dns_port: int = 53
    """Port of the zone's authoritative servers for the DNS-01 propagation check."""
    self_check_nameservers: dict[str, str] = Field(default_factory=dict)
    """Nameserver host name to the host:port the DNS-01 self-check asks instead (dev stacks
    run every server on 127.0.0.1 with its own port); flag --self-check-nameserver
    NAME=HOST:PORT, repeatable, or NAME=HOST:PORT,... in one value."""
    route53_endpoint: str = ""
    """Route53 API URL (and STS's) for a Route53-compatible API or an emulator such as moto;
    empty: AWS's own."""
    kubernetes: bool = False
    """Use Kubernetes Secrets and in-cluster HTTP-01 routing (Ingress or Gateway HTTPRoute)."""
    kubeconfig: Path | None = None
    """Kubeconfig for --kubernetes; the in-cluster service account when unset."""
    own_namespace: str = "acmeflow"
    """acmeflow's own namespace (the worker's), where --kubernetes keeps what a challenge's
    clean-up needs (a copy of its DNS credential) until the record is gone; deploy/ sets it
    to the pod's namespace."""
    solver_namespace: str = "acmeflow"
    """Namespace of the acmeflow-solver Service that in-cluster HTTP-01 routes lead to."""
    cluster_domain: str = "cluster.local"
    """The cluster's DNS domain, for the solver Service's name seen from other namespaces."""

    @field_validator("self_check_nameservers", mode="before")
    @classmethod
    def _nameserver_pairs(cls, value: Any) -> Any:
        """Flags and the environment give ``NAME=HOST:PORT`` texts; a file gives a mapping."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            value = dict(nameserver_pair(text) for item in value for text in item.split(","))
        if isinstance(value, dict):
            return {_absolute(str(name)): str(address) for name, address in value.items()}
        return value


def nameserver_pair(text: str) -> tuple[str, str]:
    name, equals, address = text.strip().partition("=")
    if not (name and equals and address):
        raise ValueError(f"{text!r}: expected NAME=HOST:PORT, e.g. ns.example.net.=127.0.0.1:5301")
    return name, address


def _absolute(name: str) -> str:
    """Host names compare lower case with their trailing dot, as NS records give them."""
    return name.strip().lower().rstrip(".") + "."


def load_config(
    args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
) -> WorkerConfig:
    return load_settings(WorkerConfig, args, env)
