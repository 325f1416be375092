"""HTTP-01: publish the key authorization where any responder replica can serve it.

Outside Kubernetes the shared store is a directory (one file per token) that the
``acmeflow solver`` responder serves; inside, the Challenge resources are the store and
presenting adds the routing object (``acmeflow.activities.http01_routes``).
"""

from __future__ import annotations

import http.client
import ipaddress
import os
from pathlib import Path
from typing import Protocol

import dns.resolver
from temporalio import activity

from acmeflow.activities.challenge_values import http01_url_path
from acmeflow.activities.self_check_settings import SelfCheckSettings
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.challenge import ChallengeSpec, SelfCheckResult
from acmeflow.plumbing.addresses import split_host_port

SELF_CHECK_TIMEOUT_S = 5.0


class Http01Publisher(Protocol):
    def publish(self, spec: ChallengeSpec) -> None: ...

    def withdraw(self, spec: ChallengeSpec) -> None: ...


class DirectoryStore:
    """Tokens as files in a directory shared by the workers and the responder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, token: str) -> Path:
        if not token or "/" in token or token.startswith("."):
            raise ValueError(f"invalid HTTP-01 token {token!r}")
        return self.directory / token

    def publish(self, spec: ChallengeSpec) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(spec.token)
        partial = target.with_name(f".{spec.token}.{os.getpid()}")
        partial.write_text(spec.key)
        partial.replace(target)

    def withdraw(self, spec: ChallengeSpec) -> None:
        self.path(spec.token).unlink(missing_ok=True)

    def lookup(self, token: str) -> str | None:
        try:
            return self.path(token).read_text()
        except (OSError, ValueError):
            return None


def resolve_addresses(name: str, resolver_address: str) -> list[str]:
    """A/AAAA of ``name`` through the configured resolver (or the system's)."""
    try:
        ipaddress.ip_address(name)
        return [name]
    except ValueError:
        pass
    resolver = dns.resolver.Resolver(configure=not resolver_address)
    if resolver_address:
        host, port = split_host_port(resolver_address, 53)
        resolver.nameservers = [host]
        resolver.port = port
    addresses: list[str] = []
    for record_type in ("A", "AAAA"):
        try:
            answer = resolver.resolve(name, record_type, lifetime=SELF_CHECK_TIMEOUT_S)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        addresses += [rdata.to_text() for rdata in answer]
    return addresses


def check_http01(spec: ChallengeSpec, settings: SelfCheckSettings) -> SelfCheckResult:
    """Fetch the token the way the CA will; the reason names what differs."""
    path = http01_url_path(spec.token)
    try:
        addresses = resolve_addresses(spec.dns_name, settings.resolver)
    except dns.exception.DNSException as error:
        return SelfCheckResult(False, f"cannot resolve {spec.dns_name}: {error}")
    if not addresses:
        return SelfCheckResult(False, f"{spec.dns_name} has no A or AAAA record")
    for address in addresses:
        connection = http.client.HTTPConnection(
            address, settings.http01_port, timeout=SELF_CHECK_TIMEOUT_S
        )
        try:
            connection.request("GET", path, headers={"Host": spec.dns_name})
            response = connection.getresponse()
            body = response.read().decode(errors="replace").strip()
        except OSError as error:
            return SelfCheckResult(
                False, f"GET http://{spec.dns_name}{path} via {address}: {error}"
            )
        finally:
            connection.close()
        if response.status != 200:
            return SelfCheckResult(
                False,
                f"GET http://{spec.dns_name}{path} via {address} "
                f"answered {response.status}, expected 200",
            )
        if body != spec.key:
            return SelfCheckResult(
                False,
                f"GET http://{spec.dns_name}{path} via {address} "
                "served a different key authorization",
            )
    return SelfCheckResult(True)


class Http01Activities:
    """Present, self-check and clean up HTTP-01 challenges."""

    def __init__(self, publisher: Http01Publisher, settings: SelfCheckSettings) -> None:
        self._publisher = publisher
        self._settings = settings

    @activity.defn(name=ActivityName.PRESENT_HTTP01)
    def present_http01(self, spec: ChallengeSpec) -> None:
        self._publisher.publish(spec)

    @activity.defn(name=ActivityName.SELF_CHECK_HTTP01)
    def self_check_http01(self, spec: ChallengeSpec) -> SelfCheckResult:
        return check_http01(spec, self._settings)

    @activity.defn(name=ActivityName.CLEAN_UP_HTTP01)
    def clean_up_http01(self, spec: ChallengeSpec) -> None:
        self._publisher.withdraw(spec)
