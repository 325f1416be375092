"""The Kubernetes side of a Certificate as its workflow asks activities to act on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from acmeflow.contracts.names import RequestedNames

CERTIFICATE_ANNOTATION = "acmeflow.io/certificate-name"
"""Annotation on the Secrets acmeflow writes for a Certificate: that Certificate's name."""
TLS_SECRET_LABEL = "acmeflow.io/certificate-name"
"""Label on every TLS Secret acmeflow writes (its Certificate's name, shortened to fit a
label value): the bridge watches Secrets by it, never every Secret of the cluster."""


class RotationPolicy(StrEnum):
    """A Certificate's ``privateKey.rotationPolicy``: a new key per issuance, or the same one."""

    ALWAYS = "Always"
    NEVER = "Never"


@dataclass(frozen=True)
class CertificateRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class KeyRequest:
    certificate: CertificateRef
    secret_name: str
    names: RequestedNames
    algorithm: str = "RSA"
    size: int = 0
    rotation_policy: str = RotationPolicy.ALWAYS
    encoding: str = "PKCS1"
    issuer_ref: dict[str, str] = field(default_factory=dict)
    """The issuer the Certificate names now: a Secret issued by another is reissued."""


@dataclass(frozen=True)
class PreparedKey:
    """The CSR to order with, and where its private key waits (never the key itself)."""

    csr_pem: str
    key_secret: str
    generated: bool


@dataclass(frozen=True)
class OrderResourceRequest:
    certificate: CertificateRef
    csr_pem: str
    names: RequestedNames
    issuer_ref: dict[str, str]
    revision: int
    duration: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderResourceRef:
    name: str
    uid: str


@dataclass(frozen=True)
class StoreRequest:
    certificate: CertificateRef
    secret_name: str
    key_secret: str
    chain_pem: str
    issuer_name: str
    issuer_kind: str = "Issuer"
    issuer_group: str = "acmeflow.io"
    names: RequestedNames | None = None
    """The names the Certificate asked for, for the Secret's annotations."""
    encoding: str = "PKCS1"
    secret_labels: dict[str, str] = field(default_factory=dict)
    secret_annotations: dict[str, str] = field(default_factory=dict)
    """The Certificate's ``secretTemplate``."""
    additional_output_formats: list[str] = field(default_factory=list)
    """``CombinedPEM`` and/or ``DER``."""


@dataclass(frozen=True)
class SecretInspection:
    """What the TLS Secret holds now, compared with what the Certificate asks for."""

    up_to_date: bool
    reason: str = ""
    not_before: str = ""
    not_after: str = ""
    conflict: str = ""
    violation: str = ""
    """Why the Secret is not good, as cert-manager names it (``DoesNotExist``,
    ``InvalidKeyPair``, ...); empty when it is up to date."""
    certificate_id: str = ""
    """The stored certificate's ARI identifier (RFC 9773: base64url of its authority key
    identifier, ``.``, base64url of its serial); what ``replaces`` names on renewal."""
