"""Times as Kubernetes keeps them: UTC, to the second, for conditions and Events."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def timestamp(text: str) -> datetime | None:
    """A workflow's ISO 8601 time (UTC when it names no zone); None for an empty one."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
