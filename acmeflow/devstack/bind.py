"""BIND9 as the authoritative server of the test zone, with TSIG-signed dynamic updates.

Every name in the zone resolves to 127.0.0.1, so Pebble's HTTP-01 validation reaches
the stack's responder. Names tests use for HTTP-01 get their own A records: a wildcard
stops answering for ``x.example.com`` while ``_acme-challenge.x.example.com`` exists.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from acmeflow.devstack.processes import ServerProcess

ZONE = "example.com"
TSIG_KEY_NAME = "acmeflow-tsig"
TSIG_ALGORITHM = "hmac-sha256"
_HOSTS_WITH_OWN_RECORDS = ("www", *(f"test{i}" for i in range(1, 10)))


@dataclass(frozen=True)
class DnsEndpoints:
    """What a DNS-01 solver needs to update the zone; the secret stays in a file."""

    address: str
    zone: str
    tsig_key_name: str
    tsig_algorithm: str
    tsig_secret_path: Path


def _zone_file() -> str:
    lines = [
        "$TTL 60",
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 60 60 3600 5",
        f"@ IN NS ns.{ZONE}.",
        "@ IN A 127.0.0.1",
        "ns IN A 127.0.0.1",
        "* IN A 127.0.0.1",
        *(f"{host} IN A 127.0.0.1" for host in _HOSTS_WITH_OWN_RECORDS),
    ]
    return "\n".join(lines) + "\n"


def bind_process(state_dir: Path, *, port: int) -> tuple[ServerProcess, DnsEndpoints]:
    home = state_dir / "bind"
    home.mkdir(parents=True, exist_ok=True)
    secret_path = home / "tsig.secret"
    if not secret_path.exists():
        secret_path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        secret_path.chmod(0o600)
    secret = secret_path.read_text().strip()
    zone_path = home / f"{ZONE}.zone"
    if not zone_path.exists():
        zone_path.write_text(_zone_file())
    config = f"""
key "{TSIG_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{secret}"; }};
controls {{ }};
options {{
    directory "{home}";
    pid-file "{home}/named.pid";
    session-keyfile "{home}/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
zone "{ZONE}" {{
    type primary;
    file "{zone_path}";
    update-policy {{
        grant {TSIG_KEY_NAME} name _acme-challenge.{ZONE}. TXT;
        grant {TSIG_KEY_NAME} wildcard *.{ZONE}. TXT;
    }};
}};
"""
    config_path = home / "named.conf"
    config_path.write_text(config)

    def healthy() -> bool:
        query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
        answer = dns.query.udp(query, "127.0.0.1", port=port, timeout=1)
        return bool(answer.answer)

    process = ServerProcess(
        name="bind9",
        argv=["/usr/sbin/named", "-g", "-4", "-c", str(config_path)],
        state_dir=state_dir,
        healthy=healthy,
    )
    endpoints = DnsEndpoints(
        address=f"127.0.0.1:{port}",
        zone=ZONE,
        tsig_key_name=TSIG_KEY_NAME,
        tsig_algorithm=TSIG_ALGORITHM,
        tsig_secret_path=secret_path,
    )
    return process, endpoints
