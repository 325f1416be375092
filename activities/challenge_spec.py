"""The values a solver works with: one challenge to present, and a self-check verdict."""

from __future__ import annotations

from dataclasses import dataclass

from acmeflow.activities.issuer_config import SolverConfig


@dataclass(frozen=True)
class ChallengeSpec:
    """Everything needed to present, check and clean up one challenge on any worker."""

    name: str
    namespace: str
    order_name: str
    dns_name: str
    wildcard: bool
    type: str
    token: str
    key: str
    url: str
    authorization_url: str
    solver: SolverConfig


@dataclass(frozen=True)
class SelfCheckResult:
    """Whether the world already serves the challenge; ``reason`` says why not."""

    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class SelfCheckSettings:
    """How this worker reaches what it presented (a resolver and ports, for dev stacks)."""

    resolver: str = ""
    http01_port: int = 80
    dns_authoritative_port: int = 53


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` to a pair."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, default_port
