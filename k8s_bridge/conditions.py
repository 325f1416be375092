"""Status conditions (metav1.Condition) written so that unchanged ones do not churn."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    current: list[dict[str, Any]] | None,
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
) -> dict[str, Any]:
    """A condition that keeps its lastTransitionTime while its status stays the same."""
    previous = next((c for c in current or [] if c.get("type") == type_), None)
    since = (
        (previous or {}).get("lastTransitionTime")
        if (previous or {}).get("status") == status
        else None
    )
    return {
        "type": type_,
        "status": status,
        "reason": reason or type_,
        "message": message,
        "lastTransitionTime": since or now_rfc3339(),
        "observedGeneration": generation,
    }


def set_conditions(
    current: list[dict[str, Any]] | None, *updates: dict[str, Any]
) -> list[dict[str, Any]]:
    """``current`` with ``updates`` replacing the conditions of the same type, in order."""
    by_type = {c["type"]: c for c in current or []}
    for update in updates:
        by_type[update["type"]] = update
    return list(by_type.values())
