"""DNS-01 activities: resolve where the value goes, hand it to the Issuer's provider, and
check that every authoritative server of the zone serves it.

The RFC 2136 provider lives here too: TSIG-signed dynamic updates. A wildcard and its apex
share one ``_acme-challenge`` name with different values, so presenting adds a value
beside any others and cleaning up deletes only its own value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager

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

from acmeflow.activities.credential_copies import CopyOwner, CredentialCopies
from acmeflow.activities.dns01_publishers import Dns01Publishers, TxtTarget
from acmeflow.activities.dns_zones import (
    DNS_UNAVAILABLE,
    QUERY_TIMEOUT_S,
    authoritative_servers,
    cname_hint,
    resolve_target,
    txt_values,
)
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

__all__ = [
    "DNS_UNAVAILABLE",
    "Dns01Activities",
    "Rfc2136Publisher",
    "check_dns01",
    "tsig_algorithm",
]

TXT_TTL = 60
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


class Rfc2136Publisher:
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

    @staticmethod
    def _config(spec: ChallengeSpec) -> Rfc2136:
        if spec.solver.dns01 is None:
            raise bad_request(f"challenge {spec.name} has no rfc2136 solver")
        return spec.solver.dns01

    def _update(
        self, config: Rfc2136, zone: str, secret: bytes | None
    ) -> tuple[dns.update.UpdateMessage, tuple[str, int]]:
        server = split_host_port(config.nameserver, 53)
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

    def add_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        """Add the value beside any others, its TSIG secret kept as ``copy``'s first."""
        config = self._config(spec)
        record = target.fqdn
        ref = self._tsig_ref(config)
        secret = self._secrets.require(ref, "TSIG secret") if ref else None
        copies = self._copied(ref)
        if copies is not None and ref is not None and secret is not None:
            copies.keep(copy, secret, about={"record": record, "source": ref.describe()})
        try:
            update, server = self._update(config, target.zone, secret)
            update.add(record, TXT_TTL, dns.rdatatype.TXT, f'"{target.value}"')
            self._send(update, server, f"add TXT {record}")
        except ApplicationError as error:
            if copies is not None and error.type == BAD_REQUEST:
                # Refused (or never sent): nothing was added, and the copy is of no use.
                copies.discard(copy)
            raise

    def delete_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        """Delete only this value, signed with the user's secret or else ``copy``'s, then
        discard the copy."""
        config = self._config(spec)
        record = target.fqdn
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
        update, server = self._update(config, target.zone, secret)
        update.delete(record, dns.rdatatype.TXT, f'"{target.value}"')
        self._send(update, server, f"delete TXT {record}")
        if copies is not None:
            copies.discard(copy)


def check_dns01(spec: ChallengeSpec, settings: SelfCheckSettings) -> SelfCheckResult:
    """Passes once every authoritative server of the target's zone serves our value."""
    try:
        target = resolve_target(spec, settings)
        for server in authoritative_servers(spec, target, settings):
            values = txt_values(target.fqdn, server.address)
            if target.value not in values:
                hint = "" if spec.solver.cname_follow else cname_hint(target.fqdn, server.address)
                return SelfCheckResult(
                    False,
                    f"nameserver {server} serves {len(values)} TXT value(s) for "
                    f"{target.fqdn} (zone {target.zone}), not yet the expected one{hint}",
                )
    except ApplicationError as error:
        return SelfCheckResult(False, error.message)
    except (OSError, dns.exception.DNSException) as error:
        return SelfCheckResult(
            False, f"querying authoritative servers for {spec.dns_name}: {error}"
        )
    return SelfCheckResult(True)


class Dns01Activities:
    """Present, self-check and clean up DNS-01 challenges through the Issuer's provider."""

    def __init__(self, publishers: Dns01Publishers, settings: SelfCheckSettings) -> None:
        self._publishers = publishers
        self._settings = settings

    @activity.defn(name=ActivityName.PRESENT_DNS01)
    def present_dns01(self, spec: ChallengeSpec) -> None:
        with _named_provider(spec):
            publisher = self._publishers.for_challenge(spec)
            publisher.add_txt(spec, resolve_target(spec, self._settings), copy=_copy(spec))

    @activity.defn(name=ActivityName.SELF_CHECK_DNS01)
    def self_check_dns01(self, spec: ChallengeSpec) -> SelfCheckResult:
        return check_dns01(spec, self._settings)

    @activity.defn(name=ActivityName.CLEAN_UP_DNS01)
    def clean_up_dns01(self, spec: ChallengeSpec) -> None:
        with _named_provider(spec):
            publisher = self._publishers.for_challenge(spec)
            publisher.delete_txt(spec, resolve_target(spec, self._settings), copy=_copy(spec))


@contextmanager
def _named_provider(spec: ChallengeSpec) -> Iterator[None]:
    """A Challenge's reason names the provider it came from, whichever step failed (finding
    the zone, following a CNAME, or the provider's own call)."""
    try:
        yield
    except ApplicationError as error:
        provider = spec.solver.dns01_provider
        if not provider or error.message.startswith(provider) or provider in error.message:
            raise
        raise ApplicationError(
            f"{provider}: {error.message}",
            *error.details,
            type=error.type,
            non_retryable=error.non_retryable,
            next_retry_delay=error.next_retry_delay,
        ) from error


def _copy(spec: ChallengeSpec) -> CopyOwner:
    """This challenge of the running workflow: the same owner in present and clean-up."""
    return CopyOwner(activity.info().workflow_id or "", f"{spec.namespace}/{spec.name}")
