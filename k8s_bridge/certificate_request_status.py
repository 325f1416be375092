"""What a cert-manager CertificateRequest says at each step of its signing, as pure functions.

cert-manager's own issuers set one ``Ready`` condition with a fixed set of reasons, and
its Certificate controllers read them: ``Pending`` (still working), ``Issued`` (the
certificate is in ``status.certificate``), ``Failed`` and ``Denied`` (final: with
``status.failureTime``, from which cert-manager backs off). acmeflow writes the same, so
every tool built on CertificateRequests reads an acmeflow-signed one as any other.
"""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from acmeflow.contracts.progress import ConditionStatus
from acmeflow.crds.cert_manager import APPROVED, DENIED, CertificateRequestStatus
from acmeflow.crds.models import Condition
from acmeflow.k8s_bridge.conditions import READY, condition, set_conditions

PENDING = "Pending"
ISSUED = "Issued"
FAILED = "Failed"
FINAL_REASONS = frozenset({ISSUED, FAILED, DENIED})


def _condition(status: CertificateRequestStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions or [] if c.type == type_), None)


def holds(status: CertificateRequestStatus, type_: str) -> bool:
    """The condition ``type_`` is True (Approved, Denied)."""
    found = _condition(status, type_)
    return found is not None and found.status == ConditionStatus.TRUE


def finished(status: CertificateRequestStatus) -> bool:
    """Signed or given up on: such a request is never signed (again)."""
    ready = _condition(status, READY)
    if ready is not None and (
        ready.status == ConditionStatus.TRUE or ready.reason in FINAL_REASONS
    ):
        return True
    return status.failure_time is not None


def approval_pending(status: CertificateRequestStatus) -> bool:
    return not holds(status, APPROVED) and not holds(status, DENIED)


def _ready(
    status: CertificateRequestStatus,
    *,
    ready: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
) -> list[Condition]:
    """The request's conditions with Ready replaced; Approved and Denied kept as they are."""
    update = condition(
        status.conditions,
        type_=READY,
        status=ready,
        reason=reason,
        message=message,
        generation=generation,
    )
    return set_conditions(status.conditions, update)


def pending(
    status: CertificateRequestStatus, *, message: str, generation: int
) -> CertificateRequestStatus:
    conditions = _ready(
        status, ready=ConditionStatus.FALSE, reason=PENDING, message=message, generation=generation
    )
    return CertificateRequestStatus(conditions=conditions)


def failed(
    status: CertificateRequestStatus,
    *,
    reason: str,
    message: str,
    generation: int,
    at: datetime,
) -> CertificateRequestStatus:
    """Final: Ready False (``Failed`` or ``Denied``) with the time cert-manager backs off from."""
    conditions = _ready(
        status, ready=ConditionStatus.FALSE, reason=reason, message=message, generation=generation
    )
    return CertificateRequestStatus(conditions=conditions, failure_time=at)


def denied(
    status: CertificateRequestStatus, *, generation: int, at: datetime
) -> CertificateRequestStatus:
    why = (
        _condition(status, DENIED) or Condition(type=DENIED, status=ConditionStatus.TRUE)
    ).message
    message = "The request was denied by an approver" + (f": {why}" if why else "")
    return failed(
        status,
        reason=DENIED,
        message=f"{message}; acmeflow does not sign it",
        generation=generation,
        at=at,
    )


def issued(
    status: CertificateRequestStatus, *, chain_pem: str, order: str, generation: int
) -> CertificateRequestStatus:
    conditions = _ready(
        status,
        ready=ConditionStatus.TRUE,
        reason=ISSUED,
        message=f'Certificate issued through Order "{order}"',
        generation=generation,
    )
    ca = self_signed_top(chain_pem)
    return CertificateRequestStatus(
        conditions=conditions,
        certificate=base64.b64encode(chain_pem.encode()).decode(),
        ca=base64.b64encode(ca.encode()).decode() if ca else None,
    )


def self_signed_top(chain_pem: str) -> str:
    """The chain's last certificate as PEM if it is a root (signed by itself), else "".

    ACME CAs send the leaf and intermediates, rarely the root: the CA is known only when
    the chain ends in one, and guessing it from elsewhere would be worse than leaving
    ``status.ca`` out.
    """
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        return ""
    top = chain[-1]
    if top.issuer != top.subject:
        return ""
    try:
        top.verify_directly_issued_by(top)
    except (ValueError, TypeError, InvalidSignature):
        return ""
    return top.public_bytes(Encoding.PEM).decode()
