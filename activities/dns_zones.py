"""Where a DNS-01 value goes and who must serve it: zone by SOA, CNAME follow, NS servers.

Every provider gets the same answer to "which record, in which zone" (a ``TxtTarget``),
so none of them guesses the zone from the Issuer or from the name's parent:

- the zone is the closest enclosing name that owns an SOA record, found by walking up
  from the record's name (a name that is a CNAME cannot be a zone apex, so it is passed);
- with ``cnameStrategy: Follow`` a ``_acme-challenge`` CNAME chain is followed first, and
  the value is written where it ends, in that name's zone; loops and chains longer than
  ``MAX_CNAME_HOPS`` are refused with a reason;
- the propagation self-check asks every authoritative server of that zone (its NS names,
  their addresses through the resolver), whatever the provider.

RFC 2136 keeps asking the nameserver it updates for the zone (that server must hold it);
every other provider asks the worker's resolver (``--self-check-resolver``, else the
system's first nameserver).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
from temporalio.exceptions import ApplicationError

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.errors import bad_request
from acmeflow.activities.self_check_settings import SelfCheckSettings
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.plumbing.addresses import split_host_port

DNS_UNAVAILABLE = "DnsUnavailable"
"""Retryable: a nameserver was out of reach or failed (SERVFAIL); not a refusal."""
QUERY_TIMEOUT_S = 5.0
MAX_CNAME_HOPS = 8
"""People delegate with one CNAME, seldom two; a long chain is a mistake to report."""

Server = tuple[str, int]
Lookup = Callable[[str, dns.rdatatype.RdataType], dns.message.Message]
"""Ask one question of one server and return its whole answer (answer and authority)."""


def query(name: str, rdtype: dns.rdatatype.RdataType, server: Server) -> dns.message.Message:
    """One question over UDP, again over TCP when the answer was truncated."""
    request = dns.message.make_query(name, rdtype)
    response = dns.query.udp(request, server[0], port=server[1], timeout=QUERY_TIMEOUT_S)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(request, server[0], port=server[1], timeout=QUERY_TIMEOUT_S)
    return response


def asking(server: Server) -> Lookup:
    """A ``Lookup`` on ``server``: unreachable or failing (SERVFAIL) is retryable."""
    where = f"{server[0]}:{server[1]}"

    def lookup(name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        what = f"{dns.rdatatype.to_text(rdtype)} {name}"
        try:
            response = query(name, rdtype, server)
        except (OSError, dns.exception.DNSException) as error:
            raise ApplicationError(
                f"nameserver {where} unreachable asking {what}: {error}", type=DNS_UNAVAILABLE
            ) from error
        if response.rcode() == dns.rcode.SERVFAIL:
            raise ApplicationError(
                f"nameserver {where} answered SERVFAIL to {what}", type=DNS_UNAVAILABLE
            )
        return response

    return lookup


def resolver_server(settings: SelfCheckSettings) -> Server:
    """The configured resolver, else the system's first nameserver."""
    if settings.resolver:
        return split_host_port(settings.resolver, 53)
    nameservers = dns.resolver.get_default_resolver().nameservers
    if not nameservers:
        raise bad_request("no resolver: start the worker with --self-check-resolver")
    return str(nameservers[0]), 53


def _owned(response: dns.message.Message, name: dns.name.Name, rdtype: int) -> list[str]:
    """The data of ``rdtype`` records owned by ``name`` in the answer section."""
    return [
        rdata.to_text()
        for rrset in response.answer
        if rrset.name == name and rrset.rdtype == rdtype
        for rdata in rrset
    ]


def _via_resolver(settings: SelfCheckSettings) -> Lookup:
    """The resolver, found only when first asked (RFC 2136 rarely needs it)."""

    def lookup(name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        return asking(resolver_server(settings))(name, rdtype)

    return lookup


def zone_of(fqdn: str, lookup: Lookup, *, where: str) -> str:
    """The closest enclosing name of ``fqdn`` that owns an SOA; ``where`` names the server
    for the reason when there is none."""
    name = dns.name.from_text(fqdn)
    while True:
        response = lookup(name.to_text(), dns.rdatatype.SOA)
        if _owned(response, name, dns.rdatatype.SOA):
            return str(name.to_text())
        if name == dns.name.root:
            raise bad_request(f"no zone found for {fqdn} at {where}: no enclosing SOA")
        name = name.parent()


def cname_chain(fqdn: str, lookup: Lookup) -> list[str]:
    """``fqdn`` and every name its CNAMEs lead to, in order; the last one holds the value."""
    chain = [dns.name.from_text(fqdn)]
    while True:
        response = lookup(chain[-1].to_text(), dns.rdatatype.CNAME)
        targets = _owned(response, chain[-1], dns.rdatatype.CNAME)
        if not targets:
            return [str(name.to_text()) for name in chain]
        following = dns.name.from_text(targets[0])
        shown = " -> ".join(str(name.to_text()) for name in [*chain, following])
        if following in chain:
            raise bad_request(f"CNAME loop: {shown}")
        if len(chain) > MAX_CNAME_HOPS:
            raise bad_request(f"CNAME chain longer than {MAX_CNAME_HOPS} hops: {shown}")
        chain.append(following)


def zone_server(spec: ChallengeSpec, settings: SelfCheckSettings) -> Server:
    """Who is asked for the zone: the updated nameserver for RFC 2136, else the resolver."""
    if spec.solver.dns01 is not None:
        return split_host_port(spec.solver.dns01.nameserver, 53)
    return resolver_server(settings)


def resolve_target(spec: ChallengeSpec, settings: SelfCheckSettings) -> TxtTarget:
    """The record this challenge's value goes to, with its zone."""
    fqdn = dns01_record_name(spec.dns_name)
    if spec.solver.cname_follow:
        fqdn = cname_chain(fqdn, asking(resolver_server(settings)))[-1]
    server = zone_server(spec, settings)
    zone = zone_of(fqdn, asking(server), where=f"{server[0]}:{server[1]}")
    return TxtTarget(fqdn=fqdn, zone=zone, value=spec.key)


@dataclass(frozen=True)
class Nameserver:
    """One authoritative server of a zone, as the self-check reaches it."""

    host: str
    """Its NS name (``ns1.example.net.``), or the address when it has none (RFC 2136's)."""
    address: Server

    def __str__(self) -> str:
        """``ns1.example.net. at 192.0.2.1:53``, or the address alone when it has no name."""
        address = f"{self.address[0]}:{self.address[1]}"
        return address if self.host == self.address[0] else f"{self.host} at {address}"


def nameserver_addresses(
    host: str, lookups: list[Lookup], *, port: int, overrides: Mapping[str, str]
) -> list[Server]:
    """Where ``host`` listens: an override (dev stacks), else its A records (AAAA only
    without any A), from the first lookup that has them."""
    override = overrides.get(host.lower())
    if override:
        return [split_host_port(override, port)]
    name = dns.name.from_text(host)
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        for lookup in lookups:
            addresses = _owned(lookup(host, rdtype), name, rdtype)
            if addresses:
                return [(address, port) for address in addresses]
    return []


def authoritative_servers(
    spec: ChallengeSpec, target: TxtTarget, settings: SelfCheckSettings
) -> list[Nameserver]:
    """Every NS of the target's zone; for RFC 2136 the updated server comes first."""
    server = zone_server(spec, settings)
    lookups = [asking(server)]
    servers: list[Nameserver] = []
    if spec.solver.dns01 is not None:
        servers.append(Nameserver(server[0], server))
        lookups.append(_via_resolver(settings))
    zone = dns.name.from_text(target.zone)
    for host in _owned(lookups[0](target.zone, dns.rdatatype.NS), zone, dns.rdatatype.NS):
        for address in nameserver_addresses(
            host,
            lookups,
            port=settings.dns_authoritative_port,
            overrides=settings.nameservers,
        ):
            if all(address != known.address for known in servers):
                servers.append(Nameserver(host, address))
    return servers


def cname_hint(fqdn: str, server: Server) -> str:
    """Why a value written at ``fqdn`` never shows: the name is a CNAME, so a nameserver
    drops TXT records added there (RFC 2136 §3.4.1.2) and resolvers look where it points."""
    name = dns.name.from_text(fqdn)
    targets = _owned(query(fqdn, dns.rdatatype.CNAME, server), name, dns.rdatatype.CNAME)
    if not targets:
        return ""
    return f"; {fqdn} is a CNAME to {targets[0]}: set cnameStrategy: Follow on the solver"


def txt_values(fqdn: str, server: Server) -> list[str]:
    """The TXT values ``server`` holds at ``fqdn``."""
    response = query(fqdn, dns.rdatatype.TXT, server)
    name = dns.name.from_text(fqdn)
    return [
        b"".join(rdata.strings).decode()
        for rrset in response.answer
        if rrset.name == name and rrset.rdtype == dns.rdatatype.TXT
        for rdata in rrset
    ]
