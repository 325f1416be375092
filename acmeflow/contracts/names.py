"""The identifiers a certificate is for."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestedNames:
    """The identifiers an order is for, as its spec states them."""

    common_name: str = ""
    dns_names: list[str] = field(default_factory=list)
    ip_addresses: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        """Every identifier once, the common name first: what search attributes list."""
        first = [self.common_name] if self.common_name else []
        return list(dict.fromkeys(first + self.dns_names + self.ip_addresses))
