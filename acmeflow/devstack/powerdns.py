"""PowerDNS Authoritative as the stack's API-driven DNS provider, serving ``example.net``.

Debian's ``pdns_server`` runs as a process of the stack, never as the system service: its
configuration, its SQLite database and its control socket live in ``<state>/powerdns``.
The HTTP API (``X-API-Key``, a random key kept in ``api.key``) is what dns-lexicon's
``powerdns`` provider drives; the DNS port serves the zone to BIND9, which forwards
``example.net`` here so that Pebble, resolving only through BIND9, sees the records.

The zone mirrors BIND9's: every name resolves to 127.0.0.1, and names tests use for
HTTP-01 get their own A records. Caches are off, so a record changed through the API is
what the next query sees.
"""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import dns.message
import dns.query
import dns.rdatatype

from acmeflow.devstack.processes import ServerProcess

ZONE: Final = "example.net"
SERVER_ID: Final = "localhost"
"""The only server id a standalone PowerDNS answers to in its API paths."""
_SCHEMAS: Final = (
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
)
_OWN_A_RECORDS: Final = ("@", "ns", "*", "www", *(f"test{n}" for n in range(1, 10)))


@dataclass(frozen=True)
class PowerDnsEndpoints:
    """Where the server answers; the API key stays in its file."""

    dns_address: str
    api_url: str
    """The webserver's root (``http://127.0.0.1:PORT``), as lexicon's ``pdns_server`` wants it."""
    api_key_path: Path
    zone: str = ZONE


def _config(home: Path, *, port: int, api_port: int, api_key: str) -> str:
    settings = {
        "launch": "gsqlite3",
        "gsqlite3-database": str(home / "pdns.sqlite3"),
        "local-address": "127.0.0.1",
        "local-port": str(port),
        "api": "yes",
        "api-key": api_key,
        "webserver": "yes",
        "webserver-address": "127.0.0.1",
        "webserver-port": str(api_port),
        "webserver-allow-from": "127.0.0.0/8",
        "guardian": "no",
        "daemon": "no",
        "socket-dir": str(home),
        "disable-syslog": "yes",
        "security-poll-suffix": "",
        "cache-ttl": "0",
        "query-cache-ttl": "0",
        "negquery-cache-ttl": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _zone_file() -> str:
    lines = [
        f"$ORIGIN {ZONE}.",
        "$TTL 60",
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 60 60 3600 5",
        f"@ IN NS ns.{ZONE}.",
        *(f"{host} IN A 127.0.0.1" for host in _OWN_A_RECORDS),
    ]
    return "\n".join(lines) + "\n"


def _schema() -> str:
    for path in _SCHEMAS:
        if path.is_file():
            return path.read_text()
    raise RuntimeError(
        f"PowerDNS's SQLite schema is missing (looked at {', '.join(map(str, _SCHEMAS))}): "
        "install pdns-server and pdns-backend-sqlite3"
    )


def _create_database(home: Path) -> None:
    """An empty gsqlite3 database holding the zone, loaded by PowerDNS's own tool."""
    database = home / "pdns.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.executescript(_schema())
    zone_path = home / f"{ZONE}.zone"
    zone_path.write_text(_zone_file())
    loaded = subprocess.run(
        ["pdnsutil", f"--config-dir={home}", "load-zone", ZONE, str(zone_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if loaded.returncode != 0:
        database.unlink()  # so the next start tries again
        raise RuntimeError(f"pdnsutil load-zone {ZONE} failed: {loaded.stderr.strip()}")


def read_api_key(endpoints: PowerDnsEndpoints) -> str:
    return endpoints.api_key_path.read_text().strip()


def powerdns_process(
    state_dir: Path, *, port: int, api_port: int
) -> tuple[ServerProcess, PowerDnsEndpoints]:
    home = state_dir / "powerdns"
    home.mkdir(parents=True, exist_ok=True)
    key_path = home / "api.key"
    if not key_path.exists():
        key_path.write_text(secrets.token_urlsafe(24))
        key_path.chmod(0o600)
    endpoints = PowerDnsEndpoints(
        dns_address=f"127.0.0.1:{port}",
        api_url=f"http://127.0.0.1:{api_port}",
        api_key_path=key_path,
    )
    config_path = home / "pdns.conf"
    config_path.write_text(
        _config(home, port=port, api_port=api_port, api_key=read_api_key(endpoints))
    )
    config_path.chmod(0o600)
    if not (home / "pdns.sqlite3").exists():
        _create_database(home)

    def healthy() -> bool:
        query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
        if not dns.query.udp(query, "127.0.0.1", port=port, timeout=1).answer:
            return False
        request = urllib.request.Request(
            f"{endpoints.api_url}/api/v1/servers/{SERVER_ID}",
            headers={"X-API-Key": read_api_key(endpoints)},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status) == 200

    process = ServerProcess(
        name="powerdns",
        argv=["/usr/sbin/pdns_server", f"--config-dir={home}"],
        state_dir=state_dir,
        healthy=healthy,
    )
    return process, endpoints
