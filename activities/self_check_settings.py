"""How this worker's self-checks reach what it presented."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SelfCheckSettings:
    """A resolver and ports, so dev stacks on unprivileged ports can be checked too."""

    resolver: str = ""
    http01_port: int = 80
    dns_authoritative_port: int = 53
