"""The order's progress: the one state object a workflow keeps, queries and publishes.

Observers (the log, ``acmeflow issue``, the Kubernetes bridge) always receive the whole
snapshot, never a delta, so a repeated or late delivery cannot leave them wrong. Events
carry a sequence number and the workflow time, so an observer can create each exactly
once and in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from acmeflow.activities.challenge_spec import ChallengeSpec

FINAL_STATES = ("valid", "invalid", "expired", "errored")

# The activity name observers register; the workflow calls it on the observer's queue.
PUBLISH_ACTIVITY = "publish_order_progress"

# Event reasons and messages; constant reasons and stable messages, as in cert-manager.
CHALLENGE_CREATED = "Created"
ORDER_VALID = "OrderValid"
CHALLENGE_STARTED = "Started"
CHALLENGE_PRESENTED = "Presented"
DOMAIN_VERIFIED = "DomainVerified"
PRESENT_ERROR = "PresentError"
CHALLENGE_FAILED = "Failed"
CLEAN_UP_ERROR = "CleanUpError"
ORDER_FAILED = "OrderFailed"


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
    type: str


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
    state: str = "pending"
    processing: bool = False
    presented: bool = False
    reason: str = ""
    step: str = "scheduled"


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

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def describe(self) -> str:
        """Markdown for the Temporal UI's current details: what each part waits on."""
        lines = [f"**{self.state or 'starting'}**: {self.step}"]
        if self.url:
            lines.append(f"ACME order: {self.url}")
        for challenge in self.challenges:
            spec = challenge.spec
            wildcard = "*." if spec.wildcard else ""
            lines.append(
                f"- {spec.type} for {wildcard}{spec.dns_name} ({spec.name}): "
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
