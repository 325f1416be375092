"""DNS-01 over RFC 2136: TSIG-signed dynamic updates and a propagation check.

A wildcard and its apex share one ``_acme-challenge`` name with different values, so
presenting adds a value beside any others and cleaning up deletes only its own value.
"""

from __future__ import annotations

import base64
import binascii

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.activities.credential_copies import CopyOwner, CredentialCopies
from acmeflow.activities.errors import bad_request
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.activities.self_check_settings import SelfCheckSettings
from acmeflow.activities.tsig_refusals import tsig_refusal
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.challenge import ChallengeSpec, SelfCheckResult
from acmeflow.contracts.errors import BAD_REQUEST
from acmeflow.contracts.issuer import Rfc2136
from acmeflow.contracts.secrets import SecretRef
from acmeflow.plumbing.addresses import split_host_port

DNS_UNAVAILABLE = "DnsUnavailable"
"""Retryable: the nameserver was out of reach or failed (SERVFAIL); not a refusal."""
TXT_TTL = 60
QUERY_TIMEOUT_S = 5.0
_ALGORITHMS = {
    "HMACMD5": dns.tsig.HMAC_MD5,
    "HMACSHA1": dns.tsig.HMAC_SHA1,
    "HMACSHA224": dns.tsig.HMAC_SHA224,
    "HMACSHA256": dns.tsig.HMAC_SHA256,
    "HMACSHA384": dns.tsig.HMAC_SHA384,
    "HMACSHA512": dns.tsig.HMAC_SHA512,
}


def tsig_algorithm(name: str) -> dns.name.Name:
    """cert-manager spells ``HMACSHA256``; BIND spells ``hmac-sha256``; accept both."""
    normalized = name.upper().replace("-", "").replace("_", "") or "HMACSHA256"
    if normalized not in _ALGORITHMS:
        raise bad_request(
            f"unsupported TSIG algorithm {name!r}; use one of {', '.join(sorted(_ALGORITHMS))}"
        )
    return _ALGORITHMS[normalized]


def _query(
    name: str, rdtype: dns.rdatatype.RdataType, server: tuple[str, int]
) -> dns.message.Message:
    request = dns.message.make_query(name, rdtype)
    response = dns.query.udp(request, server[0], port=server[1], timeout=QUERY_TIMEOUT_S)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(request, server[0], port=server[1], timeout=QUERY_TIMEOUT_S)
    return response


def find_zone(record: str, server: tuple[str, int]) -> str:
    """The zone containing ``record``: the closest enclosing name that has an SOA."""
    name = dns.name.from_text(record)
    while True:
        response = _query(name.to_text(), dns.rdatatype.SOA, server)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return str(rrset.name.to_text())
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                return str(rrset.name.to_text())
        if name == dns.name.root:
            raise bad_request(f"no zone found for {record} at {server[0]}:{server[1]}")
        name = name.parent()


def txt_values(record: str, server: tuple[str, int]) -> list[str]:
    response = _query(record, dns.rdatatype.TXT, server)
    values = []
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            values += [b"".join(rdata.strings).decode() for rdata in rrset]
    return values


class Rfc2136Updater:
    """Sends signed updates to the nameserver a solver names; secrets read per call.

    Presenting keeps a copy of the TSIG secret before the record goes out
    (``acmeflow.activities.credential_copies``), so the record can be removed after the
    user's Secret vanished with its namespace; removing the record discards the copy. So,
    where copies are kept, no copy means no record of this challenge in the zone: it was
    never sent, or it is gone already (a clean-up retried after it succeeded).
    """

    def __init__(self, secrets: SecretStore, copies: CredentialCopies | None = None) -> None:
        self._secrets = secrets
        self._copies = copies

    @staticmethod
    def _tsig_ref(config: Rfc2136) -> SecretRef | None:
        if not config.tsig_key_name:
            return None
        if config.tsig_secret is None:
            raise bad_request(f"TSIG key {config.tsig_key_name} has no secret reference")
        return config.tsig_secret

    def _copied(self, ref: SecretRef | None) -> CredentialCopies | None:
        """Where copies of ``ref`` go: only a Kubernetes Secret can vanish with its namespace."""
        return self._copies if ref is not None and ref.in_kubernetes else None

    def _update(
        self, config: Rfc2136, record: str, secret: bytes | None
    ) -> tuple[dns.update.UpdateMessage, tuple[str, int]]:
        server = split_host_port(config.nameserver, 53)
        zone = find_zone(record, server)
        keyring = None
        if secret is not None:
            text = secret.decode().strip()
            try:
                base64.b64decode(text, validate=True)
            except binascii.Error as error:
                where = config.tsig_secret.describe() if config.tsig_secret else "the secret"
                raise bad_request(f"TSIG secret in {where} is not base64") from error
            keyring = dns.tsigkeyring.from_text({config.tsig_key_name: text})
        update = dns.update.UpdateMessage(
            zone,
            keyring=keyring,
            keyname=dns.name.from_text(config.tsig_key_name) if config.tsig_key_name else None,
            keyalgorithm=tsig_algorithm(config.tsig_algorithm),
        )
        return update, server

    def _send(self, update: dns.update.UpdateMessage, server: tuple[str, int], what: str) -> None:
        try:
            response = dns.query.tcp(update, server[0], port=server[1], timeout=QUERY_TIMEOUT_S)
        except dns.tsig.PeerError as error:
            raise tsig_refusal(error, what=what, server=server, key_name=update.keyname) from error
        except (OSError, dns.exception.DNSException) as error:
            raise ApplicationError(
                f"{what}: nameserver {server[0]}:{server[1]} unreachable: {error}",
                type=DNS_UNAVAILABLE,
            ) from error
        rcode = response.rcode()
        if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
            raise bad_request(
                f"{what}: nameserver refused the update "
                f"({dns.rcode.to_text(rcode)}); check the TSIG key and the "
                "zone's update policy"
            )
        if rcode != dns.rcode.NOERROR:
            raise ApplicationError(
                f"{what}: nameserver answered {dns.rcode.to_text(rcode)}", type=DNS_UNAVAILABLE
            )

    def add_txt(self, config: Rfc2136, record: str, value: str, *, copy: CopyOwner) -> None:
        """Add ``value`` beside any others, its TSIG secret kept as ``copy``'s first."""
        ref = self._tsig_ref(config)
        secret = self._secrets.require(ref, "TSIG secret") if ref else None
        copies = self._copied(ref)
        if copies is not None and ref is not None and secret is not None:
            copies.keep(copy, secret, about={"record": record, "source": ref.describe()})
        try:
            update, server = self._update(config, record, secret)
            update.add(record, TXT_TTL, dns.rdatatype.TXT, f'"{value}"')
            self._send(update, server, f"add TXT {record}")
        except ApplicationError as error:
            if copies is not None and error.type == BAD_REQUEST:
                # Refused (or never sent): nothing was added, and the copy is of no use.
                copies.discard(copy)
            raise

    def delete_txt(self, config: Rfc2136, record: str, value: str, *, copy: CopyOwner) -> None:
        """Delete only ``value``, signed with the user's secret or else ``copy``'s, then
        discard the copy."""
        ref = self._tsig_ref(config)
        copies = self._copied(ref)
        secret = None
        if ref is not None:
            secret = self._secrets.read(ref)
            if secret is None and copies is not None:
                secret = copies.read(copy)
                if secret is None:
                    activity.logger.info(
                        "%s is gone and no copy is kept for %s: no record of it to delete",
                        ref.describe(),
                        copy.challenge,
                    )
                    return
            if secret is None:
                raise bad_request(f"TSIG secret: {ref.describe()} does not exist")
        update, server = self._update(config, record, secret)
        update.delete(record, dns.rdatatype.TXT, f'"{value}"')
        self._send(update, server, f"delete TXT {record}")
        if copies is not None:
            copies.discard(copy)


def authoritative_servers(
    record: str, config: Rfc2136, settings: SelfCheckSettings
) -> list[tuple[str, int]]:
    """The updated server plus every NS of the zone (at the configured port)."""
    primary = split_host_port(config.nameserver, 53)
    zone = find_zone(record, primary)
    servers = [primary]
    response = _query(zone, dns.rdatatype.NS, primary)
    for rrset in response.answer:
        for ns in rrset:
            host = ns.target.to_text()
            glue = _query(host, dns.rdatatype.A, primary)
            for a_rrset in glue.answer:
                for address in a_rrset:
                    server = (address.to_text(), settings.dns_authoritative_port)
                    if server not in servers:
                        servers.append(server)
    return servers


def check_dns01(spec: ChallengeSpec, settings: SelfCheckSettings) -> SelfCheckResult:
    """Passes once every authoritative server serves our value."""
    if spec.solver.dns01 is None:
        return SelfCheckResult(False, "challenge has no DNS-01 solver")
    record = dns01_record_name(spec.dns_name)
    try:
        servers = authoritative_servers(record, spec.solver.dns01, settings)
        for server in servers:
            values = txt_values(record, server)
            if spec.key not in values:
                return SelfCheckResult(
                    False,
                    f"{server[0]}:{server[1]} serves {len(values)} TXT value(s) for "
                    f"{record}, not yet the expected one",
                )
    except (OSError, dns.exception.DNSException) as error:
        return SelfCheckResult(False, f"querying authoritative servers for {record}: {error}")
    return SelfCheckResult(True)


class Dns01Activities:
    """Present, self-check and clean up DNS-01 challenges through RFC 2136."""

    def __init__(self, updater: Rfc2136Updater, settings: SelfCheckSettings) -> None:
        self._updater = updater
        self._settings = settings

    @staticmethod
    def _provider(spec: ChallengeSpec) -> Rfc2136:
        if spec.solver.dns01 is None:
            raise bad_request(f"challenge {spec.name} has no DNS-01 (rfc2136) solver")
        return spec.solver.dns01

    @activity.defn(name=ActivityName.PRESENT_DNS01)
    def present_dns01(self, spec: ChallengeSpec) -> None:
        self._updater.add_txt(
            self._provider(spec), dns01_record_name(spec.dns_name), spec.key, copy=_copy(spec)
        )

    @activity.defn(name=ActivityName.SELF_CHECK_DNS01)
    def self_check_dns01(self, spec: ChallengeSpec) -> SelfCheckResult:
        return check_dns01(spec, self._settings)

    @activity.defn(name=ActivityName.CLEAN_UP_DNS01)
    def clean_up_dns01(self, spec: ChallengeSpec) -> None:
        self._updater.delete_txt(
            self._provider(spec), dns01_record_name(spec.dns_name), spec.key, copy=_copy(spec)
        )


def _copy(spec: ChallengeSpec) -> CopyOwner:
    """This challenge of the running workflow: the same owner in present and clean-up."""
    return CopyOwner(activity.info().workflow_id or "", f"{spec.namespace}/{spec.name}")
