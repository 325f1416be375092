"""The parts of cert-manager's ``certificaterequests.cert-manager.io/v1`` that acmeflow reads
and writes when it signs as an external issuer.

cert-manager owns this schema (its CRDs are installed from its module, never generated
here); these models hold only the fields the bridge uses and ignore the rest, as every
``CrdModel`` does, so a newer cert-manager never breaks the reader. ``spec.request`` is
base64 of the PEM CSR and ``status.certificate`` / ``status.ca`` base64 of PEM, as
cert-manager stores them.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Final, Literal

from pydantic import Field

from acmeflow.crds.models import Condition, CrdModel, KubeResource

CERT_MANAGER_GROUP: Final = "cert-manager.io"
CERT_MANAGER_VERSION: Final = "v1"
CERT_MANAGER_API_VERSION: Final = f"{CERT_MANAGER_GROUP}/{CERT_MANAGER_VERSION}"

APPROVED = "Approved"
DENIED = "Denied"
"""Condition types an approver sets; a signer acts on Approved requests only."""
REVISION_ANNOTATION = "cert-manager.io/certificate-revision"
"""The revision of the Certificate a request was made for (absent on hand-made requests)."""


class CertManagerIssuerRef(CrdModel):
    """The issuer a request names; cert-manager reads an empty kind as Issuer and an empty
    group as its own."""

    name: str
    kind: str = ""
    group: str = ""


class CertificateRequestSpec(CrdModel):
    request: str = Field(min_length=1)
    """Base64 of the PEM certificate signing request."""
    issuer_ref: CertManagerIssuerRef
    duration: str | None = None
    """Requested lifetime as a Go duration (``2160h0m0s``)."""
    is_ca: bool | None = None


class CertificateRequestStatus(CrdModel):
    conditions: list[Condition] | None = None
    """Approved or Denied (from an approver) and Ready (from the signer)."""
    certificate: str | None = None
    """Base64 of the PEM chain, leaf first."""
    ca: str | None = None
    """Base64 of the PEM CA certificate, where the signer knows it."""
    failure_time: datetime | None = None
    """When signing failed; cert-manager backs off from it and never retries this request."""


class CertificateRequest(KubeResource):
    """A cert-manager request for one certificate, signed once by the issuer it names."""

    KIND: ClassVar[str] = "CertificateRequest"
    PLURAL: ClassVar[str] = "certificaterequests"

    api_version: str = CERT_MANAGER_API_VERSION
    kind: Literal["CertificateRequest"] = "CertificateRequest"
    spec: CertificateRequestSpec
    status: CertificateRequestStatus | None = None
