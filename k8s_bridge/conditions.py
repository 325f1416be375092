"""Status conditions (metav1.Condition) written so that unchanged ones do not churn."""

from __future__ import annotations

from typing import TypeVar

from acmeflow.contracts.progress import ConditionStatus
from acmeflow.crds.models import CertificateStatus, Condition, IssuerStatus
from acmeflow.k8s_bridge.timestamps import now

WithConditions = TypeVar("WithConditions", bound=CertificateStatus | IssuerStatus)

READY = "Ready"
ISSUING = "Issuing"


def condition(
    current: list[Condition] | None,
    *,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
) -> Condition:
    """A condition that keeps its lastTransitionTime while its status stays the same."""
    previous = next((c for c in current or [] if c.type == type_), None)
    since = previous.last_transition_time if previous and previous.status == status else None
    return Condition(
        type=type_,
        status=status,
        reason=reason or type_,
        message=message,
        last_transition_time=since or now(),
        observed_generation=generation,
    )


def set_conditions(current: list[Condition] | None, *updates: Condition) -> list[Condition]:
    """``current`` with ``updates`` replacing the conditions of the same type, in order."""
    by_type = {c.type: c for c in current or []}
    for update in updates:
        by_type[update.type] = update
    return list(by_type.values())


def not_ready(
    status: WithConditions, *, reason: str, message: str, generation: int
) -> WithConditions:
    """The conditions of ``status`` with Ready False saying why; nothing else is set."""
    ready = condition(
        status.conditions,
        type_=READY,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        generation=generation,
    )
    return type(status)(conditions=set_conditions(status.conditions, ready))
