"""How this worker's self-checks reach what it presented."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SelfCheckSettings:
    """A resolver and ports, so dev stacks on unprivileged ports can be checked too."""

    resolver: str = ""
    http01_port: int = 80
    dns_authoritative_port: int = 53
    nameservers: Mapping[str, str] = field(default_factory=dict)
    """Nameserver host name (lower case, trailing dot) to the ``host:port`` the DNS-01
    self-check asks instead of its addresses at ``dns_authoritative_port``."""
