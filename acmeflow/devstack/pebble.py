"""Pebble, Let's Encrypt's test CA, resolving names through the stack's BIND9.

Pebble regenerates its root and intermediate at every start, so after it is healthy the
stack fetches them from the management port and writes them where clients (and tests
checking a chain) can trust them.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from acmeflow.devstack.go_builds import pebble_binary
from acmeflow.devstack.processes import ServerProcess
from acmeflow.devstack.tls import KeyPair, issue_leaf

# Names the stack's Pebble refuses, so tests can prove a rejected identifier is reported.
# Two labels at most: Pebble 2.4 panics on a name with fewer labels than a blocked entry.
BLOCKED_DOMAINS = ("blocked.test",)


@dataclass(frozen=True)
class PebbleOptions:
    """How one Pebble instance differs from the default; tests start variants."""

    name: str = "pebble"
    eab_keys: dict[str, str] = field(default_factory=dict)
    nonce_reject_percent: int = 5
    authz_reuse_percent: int = 0
    validity_seconds: int | None = None
    profiles: dict[str, int] = field(default_factory=dict)
    """ACME profiles offered, name -> certificate validity in seconds; empty keeps one
    ``default`` profile (``validity_seconds``, else 90 days)."""
    promote_common_name: bool = False
    """Every profile writes the first SAN as the subject's common name (Let's Encrypt's
    classic profile writes one too); by default Pebble leaves the subject empty."""
    alternate_roots: int = 0
    """Chains beside the default one, each to a root of its own (``PEBBLE_ALTERNATE_ROOTS``),
    offered as ``Link: rel="alternate"`` downloads."""
    binary: str = ""
    """Pebble to run; the stack's own build by default (see ``go_builds``)."""


@dataclass(frozen=True)
class PebbleEndpoints:
    directory_url: str
    management_url: str
    roots_path: Path


def _management_get(url: str, tls_ca: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(tls_ca))
    with urllib.request.urlopen(url, context=context, timeout=5) as response:
        return bytes(response.read())


def _profiles(options: PebbleOptions) -> dict[str, dict[str, object]]:
    """One profile unless a test asks for several: for an order naming none, Pebble picks
    one at random, so a second profile belongs on a Pebble of its own."""
    offered = options.profiles or {"default": options.validity_seconds or 7776000}
    return {
        name: {
            "description": f"valid for {seconds} seconds",
            "validityPeriod": seconds,
            "promoteCommonName": options.promote_common_name,
        }
        for name, seconds in offered.items()
    }


def pebble_process(
    state_dir: Path,
    tls_ca: KeyPair,
    options: PebbleOptions,
    *,
    port: int,
    management_port: int,
    http01_port: int,
    tls_port: int,
    dns_address: str,
) -> tuple[ServerProcess, PebbleEndpoints]:
    home = state_dir / options.name
    home.mkdir(parents=True, exist_ok=True)
    listener = issue_leaf(
        tls_ca,
        home,
        "listener",
        common_name="localhost",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
    )
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(listener.cert_path),
            "privateKey": str(listener.key_path),
            "httpPort": http01_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(options.eab_keys),
            "externalAccountMACKeys": options.eab_keys,
            "domainBlocklist": list(BLOCKED_DOMAINS),
            "profiles": _profiles(options),
        }
    }
    config_path = home / "pebble-config.json"
    config_path.write_text(json.dumps(config, indent=2))
    endpoints = PebbleEndpoints(
        directory_url=f"https://127.0.0.1:{port}/dir",
        management_url=f"https://127.0.0.1:{management_port}",
        roots_path=home / "roots.pem",
    )

    def healthy() -> bool:
        _management_get(endpoints.directory_url, tls_ca.cert_path)
        return True

    binary = options.binary or str(pebble_binary())
    process = ServerProcess(
        name=options.name,
        argv=[binary, "-config", str(config_path), "-dnsserver", dns_address],
        state_dir=state_dir,
        healthy=healthy,
        env={
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": str(options.nonce_reject_percent),
            "PEBBLE_AUTHZREUSE": str(options.authz_reuse_percent),
            "PEBBLE_ALTERNATE_ROOTS": str(options.alternate_roots),
        },
    )
    return process, endpoints


def save_roots(endpoints: PebbleEndpoints, tls_ca: Path) -> None:
    """Write Pebble's current root and intermediate (they change at every start)."""
    root = _management_get(f"{endpoints.management_url}/roots/0", tls_ca)
    intermediate = _management_get(f"{endpoints.management_url}/intermediates/0", tls_ca)
    endpoints.roots_path.write_bytes(root)
    endpoints.roots_path.with_name("intermediate.pem").write_bytes(intermediate)
