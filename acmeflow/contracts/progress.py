"""The snapshots a workflow publishes to its observer, and the Events they carry.

Observers (the log, ``acmeflow issue``, the Kubernetes bridge) always receive the whole
snapshot, never a delta, so a repeated or late delivery cannot leave them wrong. Events
carry a sequence number and the workflow time, so an observer can create each exactly
once and in order. Reasons are constant and messages stable, as in cert-manager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.states import FINAL_ORDER_STATES, ChallengeState, ChallengeType


class EventReason(StrEnum):
    # Order
    CHALLENGE_CREATED = "Created"
    ORDER_VALID = "OrderValid"
    ORDER_FAILED = "OrderFailed"
    # Challenge
    CHALLENGE_STARTED = "Started"
    CHALLENGE_PRESENTED = "Presented"
    DOMAIN_VERIFIED = "DomainVerified"
    PRESENT_ERROR = "PresentError"
    CHALLENGE_FAILED = "Failed"
    CLEAN_UP_ERROR = "CleanUpError"
    # Certificate
    KEY_GENERATED = "Generated"
    ORDER_CREATED = "OrderCreated"
    ISSUING = "Issuing"
    ISSUANCE_FAILED = "Failed"
    SECRET_CONFLICT = "SecretConflict"
    # Order, while the CA's rate limit is waited out (a Warning; the Order stays non-final)
    RATE_LIMITED = "RateLimited"
    # Certificate, while its issuer is missing or not Ready (nothing is issued meanwhile)
    ISSUER_NOT_READY = "IssuerNotReady"
    # Issuer: its account key changed, so a new ACME account was registered
    ACCOUNT_KEY_CHANGED = "AccountKeyChanged"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class ObjectKind(StrEnum):
    """The kinds an Event may be about."""

    ORDER = "Order"
    CHALLENGE = "Challenge"
    CERTIFICATE = "Certificate"
    ISSUER = "Issuer"
    CLUSTER_ISSUER = "ClusterIssuer"


class ConditionStatus(StrEnum):
    """True, False or Unknown, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionReason(StrEnum):
    """Reasons of the Certificate's and the Issuer's conditions, as cert-manager spells them."""

    # Certificate Ready
    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"
    SECRET_CONFLICT = "SecretConflict"
    # Certificate Issuing
    ISSUING = "Issuing"
    MANUALLY_TRIGGERED = "ManuallyTriggered"
    RENEWING = "Renewing"
    """The renewal time came (cert-manager's reason for a scheduled reissue)."""
    # Certificate Ready and Issuing: why the TLS Secret is no good (cert-manager's reasons)
    SECRET_MISSING = "DoesNotExist"
    SECRET_DATA_MISSING = "MissingData"
    INVALID_KEY_PAIR = "InvalidKeyPair"
    INVALID_CERTIFICATE = "InvalidCertificate"
    SECRET_MISMATCH = "SecretMismatch"
    INCORRECT_ISSUER = "IncorrectIssuer"
    EXPIRED = "Expired"
    # Issuer Ready
    ACCOUNT_REGISTERED = "ACMEAccountRegistered"
    ACCOUNT_REGISTRATION_FAILED = "ErrRegisterACMEAccount"
    # Certificate Ready while its issuer is missing or not Ready
    ISSUER_NOT_READY = "IssuerNotReady"


def challenge_created_message(challenge: str, dns_name: str) -> str:
    return f'Created Challenge resource "{challenge}" for domain "{dns_name}"'


def domain_verified_message(dns_name: str, challenge_type: str) -> str:
    return f'Domain "{dns_name}" verified with "{challenge_type}" validation'


@dataclass
class OrderEvent:
    seq: int
    at: str
    kind: str
    object_name: str
    type: str
    reason: str
    message: str


@dataclass
class ChallengeRef:
    url: str
    token: str
    type: ChallengeType


@dataclass
class AuthorizationProgress:
    url: str
    identifier: str
    wildcard: bool
    initial_state: str
    challenges: list[ChallengeRef] = field(default_factory=list)


@dataclass
class ChallengeProgress:
    spec: ChallengeSpec
    state: str = ChallengeState.PENDING
    processing: bool = False
    presented: bool = False
    reason: str = ""
    step: str = "scheduled"
    cleaned_up: bool = False
    """Its record or route is withdrawn: a valid one is done, and its resource may go."""

    @property
    def done(self) -> bool:
        """Valid and cleaned up: nothing left to show that the Order and its Events don't."""
        return self.state == ChallengeState.VALID and self.cleaned_up


@dataclass
class OrderProgress:
    version: int = 0
    state: str = ""
    reason: str = ""
    url: str = ""
    finalize_url: str = ""
    failure_time: str = ""
    certificate: str = ""
    step: str = "starting"
    authorizations: list[AuthorizationProgress] = field(default_factory=list)
    challenges: list[ChallengeProgress] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    step_after_events: int = 0
    """How many of ``events`` had happened when ``state`` or ``step`` last changed, so a
    reader of one snapshot places the step among the events (``acmeflow issue``)."""

    @property
    def final(self) -> bool:
        return self.state in FINAL_ORDER_STATES

    def describe(self) -> str:
        """Markdown for the Temporal UI's current details: what each part waits on."""
        lines = [f"**{self.state or 'starting'}**: {self.step}"]
        if self.url:
            lines.append(f"ACME order: {self.url}")
        for challenge in self.challenges:
            spec = challenge.spec
            lines.append(
                f"- {spec.type} for {spec.shown_name} ({spec.name}): "
                f"{challenge.step}" + (f" — {challenge.reason}" if challenge.reason else "")
            )
        if self.reason:
            lines.append(f"Reason: {self.reason}")
        return "\n".join(lines)


@dataclass
class OrderUpdate:
    """What an observer receives: which order, and its whole current progress."""

    workflow_id: str
    namespace: str
    order_name: str
    progress: OrderProgress
    resource_uid: str = ""


@dataclass
class CertificateStatus:
    """Everything the bridge writes to the Certificate's status, plus its events."""

    version: int = 0
    ready: str = ConditionStatus.UNKNOWN
    ready_reason: str = ConditionReason.PENDING
    ready_message: str = "Certificate is being prepared"
    issuing: bool = False
    issuing_reason: str = ""
    issuing_message: str = ""
    not_before: str = ""
    not_after: str = ""
    renewal_time: str = ""
    renewal_rule: str = ""
    """What set ``renewal_time`` (ARI window, renewBefore or 2/3 of the lifetime)."""
    revision: int = 0
    last_failure_time: str = ""
    failed_issuance_attempts: int = 0
    next_private_key_secret_name: str = ""
    observed_generation: int = 0
    events: list[OrderEvent] = field(default_factory=list)


@dataclass
class CertificateUpdate:
    namespace: str
    name: str
    uid: str
    status: CertificateStatus


@dataclass
class IssuerStatus:
    version: int = 0
    ready: str = ConditionStatus.UNKNOWN
    reason: str = ConditionReason.PENDING
    message: str = "Registering the ACME account"
    account_uri: str = ""
    email: str = ""
    observed_generation: int = 0
    events: list[OrderEvent] = field(default_factory=list)
    """Events about the issuer (none so far): every snapshot a workflow publishes has them."""


@dataclass
class IssuerUpdate:
    kind: str
    namespace: str
    name: str
    uid: str
    status: IssuerStatus
