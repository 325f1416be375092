"""BIND9 as the stack's nameserver: the test zones, TSIG-signed dynamic updates, and the
one resolver Pebble asks.

- ``example.com``: RFC 2136 (and the webhook's solver) write here. Every name resolves to
  127.0.0.1, so Pebble's HTTP-01 validation reaches the stack's responder. Names tests use
  for HTTP-01 get their own A records: a wildcard stops answering for ``x.example.com``
  while ``_acme-challenge.x.example.com`` exists. ``_acme-challenge.cname`` is a CNAME into
  ``delegated.test`` (cnameStrategy: Follow); ``_acme-challenge.loop`` and its
  ``delegated.test`` twin point at each other.
- ``example.org``: the mirror of the Route53 emulator's hosted zone, kept in step by the
  Route53 tests through TSIG updates of any type, since moto resolves nothing.
- ``delegated.test``: where CNAMEs lead; TXT updatable.
- ``example.net``: served by PowerDNS. BIND forwards it (``forward only``) so Pebble sees
  it, with no cache (even 1 s served a wildcard's first value to Pebble after its apex's
  was added), so every answer is fresh. Recursion is on, but the only place
  it can go is PowerDNS: BIND holds a root zone of its own whose single delegation is
  ``example.net``, so every other name gets an authoritative answer and no query leaves
  the machine. While PowerDNS is down the forward zone answers SERVFAIL, for its own
  names only.
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
ROUTE53_MIRROR_ZONE = "example.org"
CNAME_TARGET_ZONE = "delegated.test"
FORWARDED_ZONE = "example.net"
FORWARDED_NAMESERVER = f"ns.{FORWARDED_ZONE}."
"""The NS name PowerDNS gives example.net; the self-check maps it to PowerDNS's port."""
CNAME_NAME = "cname.example.com"
"""Its ``_acme-challenge`` is a CNAME to the same label under ``delegated.test``."""
CNAME_LOOP_NAME = "loop.example.com"
"""Its ``_acme-challenge`` CNAME leads to ``delegated.test`` and from there straight back."""
TSIG_KEY_NAME = "acmeflow-tsig"
TSIG_ALGORITHM = "hmac-sha256"
_HOSTS_WITH_OWN_RECORDS = ("www", "cname", "loop", *(f"test{i}" for i in range(1, 10)))


@dataclass(frozen=True)
class DnsEndpoints:
    """What a DNS-01 solver needs to update the zone; the secret stays in a file."""

    address: str
    zone: str
    tsig_key_name: str
    tsig_algorithm: str
    tsig_secret_path: Path


def self_check_nameservers(powerdns_port: int) -> dict[str, str]:
    """Where a worker's self-check reaches nameservers that are not on the DNS port: the
    worker's ``self_check_nameservers`` (flag ``--self-check-nameserver NAME=HOST:PORT``)."""
    return {FORWARDED_NAMESERVER: f"127.0.0.1:{powerdns_port}"} if powerdns_port else {}


def self_check_nameserver_flags(powerdns_port: int) -> list[str]:
    """``self_check_nameservers`` as ``acmeflow worker`` flags."""
    pairs = self_check_nameservers(powerdns_port).items()
    return [
        arg for name, address in pairs for arg in ("--self-check-nameserver", f"{name}={address}")
    ]


def _zone_head(zone: str) -> list[str]:
    return [
        "$TTL 60",
        f"$ORIGIN {zone}.",
        f"@ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 3600 5",
        f"@ IN NS ns.{zone}.",
        "@ IN A 127.0.0.1",
        "ns IN A 127.0.0.1",
        "* IN A 127.0.0.1",
    ]


def _zone_file() -> str:
    lines = [
        *_zone_head(ZONE),
        *(f"{host} IN A 127.0.0.1" for host in _HOSTS_WITH_OWN_RECORDS),
        f"_acme-challenge.cname IN CNAME _acme-challenge.cname.{CNAME_TARGET_ZONE}.",
        f"_acme-challenge.loop IN CNAME _acme-challenge.loop.{CNAME_TARGET_ZONE}.",
    ]
    return "\n".join(lines) + "\n"


def _cname_target_zone_file() -> str:
    lines = [
        *_zone_head(CNAME_TARGET_ZONE),
        f"_acme-challenge.loop IN CNAME _acme-challenge.{CNAME_LOOP_NAME}.",
    ]
    return "\n".join(lines) + "\n"


def _root_zone_file() -> str:
    """A root of the stack's own: nothing exists but what BIND serves and example.net."""
    lines = [
        "$TTL 60",
        ". IN SOA ns.root. hostmaster.root. 1 60 60 3600 1",
        ". IN NS ns.root.",
        "ns.root. IN A 127.0.0.1",
        f"{FORWARDED_ZONE}. IN NS {FORWARDED_NAMESERVER}",
        f"{FORWARDED_NAMESERVER} IN A 127.0.0.1",
    ]
    return "\n".join(lines) + "\n"


def _zone_path(home: Path, stem: str, text: str) -> Path:
    """A zone's file, written once: later dynamic updates live in it and its journal."""
    path = home / f"{stem}.zone"
    if not path.exists():
        path.write_text(text)
    return path


def _forwarded_zone(powerdns_port: int) -> str:
    if not powerdns_port:
        return ""
    return f"""
zone "{FORWARDED_ZONE}" {{
    type forward;
    forward only;
    forwarders {{ 127.0.0.1 port {powerdns_port}; }};
}};
"""


def bind_process(
    state_dir: Path, *, port: int, powerdns_port: int = 0
) -> tuple[ServerProcess, DnsEndpoints]:
    """BIND9 on ``port``; with ``powerdns_port`` it forwards example.net to PowerDNS."""
    home = state_dir / "bind"
    home.mkdir(parents=True, exist_ok=True)
    secret_path = home / "tsig.secret"
    if not secret_path.exists():
        secret_path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        secret_path.chmod(0o600)
    secret = secret_path.read_text().strip()
    zone_path = _zone_path(home, ZONE, _zone_file())
    mirror_path = _zone_path(
        home, ROUTE53_MIRROR_ZONE, "\n".join(_zone_head(ROUTE53_MIRROR_ZONE)) + "\n"
    )
    delegated_path = _zone_path(home, CNAME_TARGET_ZONE, _cname_target_zone_file())
    root_path = _zone_path(home, "root", _root_zone_file())
    config = f"""
key "{TSIG_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{secret}"; }};
controls {{ }};
options {{
    directory "{home}";
    pid-file "{home}/named.pid";
    session-keyfile "{home}/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion yes;
    allow-recursion {{ 127.0.0.1; }};
    qname-minimization disabled;
    max-cache-ttl 0;
    max-ncache-ttl 0;
    servfail-ttl 0;
    dnssec-validation no;
    notify no;
}};
zone "." {{ type primary; file "{root_path}"; }};
zone "{ZONE}" {{
    type primary;
    file "{zone_path}";
    update-policy {{
        grant {TSIG_KEY_NAME} name _acme-challenge.{ZONE}. TXT;
        grant {TSIG_KEY_NAME} wildcard *.{ZONE}. TXT;
    }};
}};
zone "{ROUTE53_MIRROR_ZONE}" {{
    type primary;
    file "{mirror_path}";
    update-policy {{ grant {TSIG_KEY_NAME} zonesub ANY; }};
}};
zone "{CNAME_TARGET_ZONE}" {{
    type primary;
    file "{delegated_path}";
    update-policy {{ grant {TSIG_KEY_NAME} zonesub TXT; }};
}};
{_forwarded_zone(powerdns_port)}"""
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
