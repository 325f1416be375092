"""Addresses as people write them in flags and Issuer specs."""

from __future__ import annotations


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` to a pair."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, default_port
