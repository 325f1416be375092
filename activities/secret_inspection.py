"""Whether a TLS Secret's data is a good key pair for a Certificate, and if not, why.

The checks run in cert-manager's order, and a Secret that fails one says so with
cert-manager's reason, so ``kubectl describe`` reads the same::

    DoesNotExist         the Secret is gone
    MissingData          tls.crt or tls.key is empty or absent
    InvalidCertificate   tls.crt holds no PEM certificate that parses
    InvalidKeyPair       tls.key holds no private key that parses, or not the certificate's
    SecretMismatch       the certificate's names are not the Certificate's
    Expired              the certificate's notAfter has passed

The messages are acmeflow's own; each starts "Issuing certificate as", since each leads
straight to an issuance.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from temporalio.exceptions import ApplicationError

from acmeflow.activities.csr import load_private_key
from acmeflow.activities.tls_secret_contents import (
    ISSUER_ANNOTATION,
    ISSUER_GROUP_ANNOTATION,
    ISSUER_KIND_ANNOTATION,
)
from acmeflow.contracts.certificate import SecretInspection
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.progress import ConditionReason


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public_bytes(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ari_certificate_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1: base64url(authority key identifier) "." base64url(DER serial);
    empty for a certificate without a key identifier of its issuer (ARI cannot name it)."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return ""
    if not aki.key_identifier:
        return ""
    serial = cert.serial_number
    # The serial's DER INTEGER content: big-endian two's complement, room for the sign bit.
    serial_der = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)
    return f"{_b64url(aki.key_identifier)}.{_b64url(serial_der)}"


def certificate_names(cert: x509.Certificate) -> RequestedNames:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return RequestedNames()
    return RequestedNames(
        dns_names=list(san.get_values_for_type(x509.DNSName)),
        ip_addresses=[str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
    )


def _wanted(names: RequestedNames) -> tuple[set[str], set[str]]:
    dns = {n.lower() for n in names.dns_names}
    if names.common_name and names.common_name not in names.ip_addresses:
        dns.add(names.common_name.lower())
    return dns, set(names.ip_addresses)


def _names_problem(have: RequestedNames, want: RequestedNames) -> str:
    """'' when the certificate is for exactly the wanted names, else what differs."""
    have_dns, have_ips = {n.lower() for n in have.dns_names}, set(have.ip_addresses)
    want_dns, want_ips = _wanted(want)
    missing = sorted((want_dns - have_dns) | (want_ips - have_ips))
    extra = sorted((have_dns - want_dns) | (have_ips - want_ips))
    parts = [f"lacks {', '.join(missing)}"] if missing else []
    parts += [f"also names {', '.join(extra)}"] if extra else []
    return "; ".join(parts)


def _not_good(violation: ConditionReason, message: str, **facts: str) -> SecretInspection:
    return SecretInspection(
        False, f"Issuing certificate as {message}", violation=violation, **facts
    )


def issued_by_another_issuer(
    annotations: dict[str, str], issuer_ref: dict[str, str]
) -> SecretInspection | None:
    """cert-manager's ``IncorrectIssuer``: the Secret's issuer annotations name another
    issuer than the Certificate does now. A Secret written before acmeflow recorded the
    issuer's kind says nothing, so an upgrade reissues nothing."""
    kind = annotations.get(ISSUER_KIND_ANNOTATION)
    if not kind or not issuer_ref.get("name"):
        return None
    stored = (
        annotations.get(ISSUER_ANNOTATION, ""),
        kind,
        annotations.get(ISSUER_GROUP_ANNOTATION, ""),
    )
    wanted = (
        issuer_ref["name"],
        issuer_ref.get("kind") or "Issuer",
        issuer_ref.get("group") or "acmeflow.io",
    )
    if stored == wanted:
        return None
    name, kind, group = stored
    return _not_good(
        ConditionReason.INCORRECT_ISSUER, f"Secret was previously issued by {kind}.{group}/{name}"
    )


def secret_missing(secret_name: str) -> SecretInspection:
    return _not_good(ConditionReason.SECRET_MISSING, f'Secret "{secret_name}" does not exist')


def inspect_key_pair(
    chain: bytes | None, key_pem: bytes | None, names: RequestedNames, *, now: datetime
) -> SecretInspection:
    """The verdict on a Secret's ``tls.crt`` and ``tls.key`` for ``names`` at ``now``."""
    if not chain or not key_pem:
        empty = "tls.crt" if not chain else "tls.key"
        return _not_good(ConditionReason.SECRET_DATA_MISSING, f"the Secret has no {empty}")
    try:
        cert = x509.load_pem_x509_certificates(chain)[0]
    except ValueError as error:
        return _not_good(
            ConditionReason.INVALID_CERTIFICATE,
            f"the Secret's tls.crt holds no certificate that can be read ({error})",
        )
    facts = {
        "not_before": iso(cert.not_valid_before_utc),
        "not_after": iso(cert.not_valid_after_utc),
        "certificate_id": ari_certificate_id(cert),
    }
    try:
        key = load_private_key(key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm, ApplicationError) as error:
        return _not_good(
            ConditionReason.INVALID_KEY_PAIR,
            f"the Secret's tls.key holds no private key that can be read ({error})",
            **facts,
        )
    if public_bytes(cert.public_key()) != public_bytes(key.public_key()):
        return _not_good(
            ConditionReason.INVALID_KEY_PAIR,
            "the Secret's private key is not the key of its certificate",
            **facts,
        )
    differs = _names_problem(certificate_names(cert), names)
    if differs:
        return _not_good(
            ConditionReason.SECRET_MISMATCH,
            f"the Secret's certificate does not match the Certificate's names: it {differs}",
            **facts,
        )
    if cert.not_valid_after_utc <= now:
        return _not_good(
            ConditionReason.EXPIRED, f"the certificate expired at {facts['not_after']}", **facts
        )
    return SecretInspection(True, **facts)
