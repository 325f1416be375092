"""The stack's PowerDNS as tests see it: what its API holds, what its DNS port serves, and
lexicon solvers that reach it (right key, wrong key, an address where nothing listens).

Tests ask PowerDNS itself, never only the resolver in front of it, so "no record left" means
the provider's store holds none.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest

from acmeflow.contracts.issuer import Lexicon, SolverConfig
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.powerdns import SERVER_ID, ZONE
from acmeflow.devstack.stack import StackInfo

__all__ = ["powerdns"]


@dataclass(frozen=True)
class PowerDns:
    """The stack's PowerDNS: its API (with the key) and its DNS port."""

    api_url: str
    api_key: str
    dns_address: str
    zone: str = ZONE

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.api_url}/api/v1/servers/{SERVER_ID}/zones{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def api_txt(self, record: str, *, zone: str = "") -> list[str]:
        """The TXT values PowerDNS's store holds at ``record`` (absolute name)."""
        held = self._call("GET", f"/{zone or self.zone + '.'}")
        return sorted(
            entry["content"].strip('"')
            for rrset in held["rrsets"]
            if rrset["name"] == record and rrset["type"] == "TXT"
            for entry in rrset["records"]
        )

    def create_zone(self, zone: str) -> None:
        """Another zone (absolute name) in PowerDNS, served by the same nameserver."""
        body = {"name": zone, "kind": "Native", "nameservers": [f"ns.{self.zone}."]}
        self._call("POST", "", body)

    def delete_zone(self, zone: str) -> None:
        self._call("DELETE", f"/{zone}")

    def served_txt(self, record: str) -> list[str]:
        """The TXT values PowerDNS's DNS port answers for ``record``."""
        host, port = self.dns_address.rsplit(":", 1)
        answer = dns.query.udp(
            dns.message.make_query(record, "TXT"), host, port=int(port), timeout=5
        )
        return sorted(b"".join(r.strings).decode() for rrset in answer.answer for r in rrset)

    def put_txt(self, record: str, values: list[str]) -> None:
        """Set ``record``'s TXT values to exactly ``values`` (none: remove the record)."""
        rrset: dict[str, Any] = {"name": record, "type": "TXT", "ttl": 60}
        if values:
            rrset |= {"changetype": "REPLACE", "records": [{"content": f'"{v}"'} for v in values]}
        else:
            rrset |= {"changetype": "DELETE"}
        self._call("PATCH", f"/{self.zone}.", {"rrsets": [rrset]})


def powerdns_of(stack: StackInfo) -> PowerDns:
    """The stack's PowerDNS; the test fails (never skips) when the stack runs none."""
    if not (stack.powerdns_api_url and stack.powerdns_api_key_path):
        pytest.fail(
            "this stack runs no PowerDNS (a manifest from before it existed): "
            "restart it with `acmeflow dev down && acmeflow dev up`",
            pytrace=False,
        )
    return PowerDns(
        api_url=stack.powerdns_api_url,
        api_key=Path(stack.powerdns_api_key_path).read_text().strip(),
        dns_address=stack.powerdns_address,
    )


@pytest.fixture(scope="session")
def powerdns(stack: StackInfo) -> PowerDns:
    return powerdns_of(stack)


def lexicon_powerdns_solver(
    api_url: str, key: str, secrets_dir: Path, *, zone: str = ""
) -> SolverConfig:
    """lexicon's ``powerdns`` provider: the URL in the clear, the key from a file."""
    key_file = secrets_dir / f"pdns-key-{uuid.uuid4().hex[:6]}"
    key_file.write_text(key + "\n")
    return SolverConfig(
        lexicon=Lexicon(
            provider="powerdns",
            zone=zone,
            options={"pdns_server": api_url},
            secret_options={"auth_token": SecretRef(path=str(key_file))},
        )
    )
