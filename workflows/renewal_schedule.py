"""When a Certificate renews, and which rule said so: pure and deterministic, for the workflow.

Two sources, in this order:

- the CA's ARI window (RFC 9773), when its directory offers one: a point inside it, asked
  again when the CA's Retry-After says, so a window the CA moves (a revocation, an
  incident) moves the renewal with it;
- otherwise the lifetime rule: ``renewBefore`` ahead of expiry when set, else 2/3 of the
  lifetime, moved earlier by a jitter of up to ``JITTER_SHARE`` of the lifetime, so that
  thousands of Certificates issued together do not all renew in the same minute. Never
  later: the jitter cannot push a renewal towards expiry.

An explicit ``renewBefore`` is the user's deadline: an ARI window that reaches past it
does not delay the renewal (the lifetime rule stands, and ARI is still asked, so a window
the CA pulls in ahead of it is followed).

"Random" points are drawn from a hash of the Certificate's uid and its certificate's ARI
id, not from ``workflow.random()``: every round (each ends with continue-as-new, and a
spec update or Secret event starts another) picks the same point for the same
certificate, so the renewal time does not wander from round to round.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from acmeflow.contracts.renewal_info import RenewalInfo

JITTER_SHARE: Final = 0.02
"""Most a lifetime-rule renewal moves earlier: 43h of a 90-day certificate, 1.4 min of 2h."""
ARI_PROBLEM_RECHECK: Final = timedelta(hours=1)
"""When the window could not be asked for at all (the step itself failed)."""


@dataclass(frozen=True)
class RenewalPlan:
    renew_at: datetime
    rule: str
    """What set ``renew_at``, as status and the Temporal UI show it."""
    recheck_at: datetime | None = None
    """When to ask the CA's ARI again; None when the CA offers none."""


def renewal_time(not_before: datetime, not_after: datetime, renew_before_s: float) -> datetime:
    """``renewBefore`` ahead of expiry when set and shorter than the lifetime, else at 2/3."""
    lifetime = not_after - not_before
    if _uses_renew_before(lifetime, renew_before_s):
        return not_after - timedelta(seconds=renew_before_s)
    return not_before + lifetime * 2 / 3


def renew_before_seconds(
    *, not_before: datetime, not_after: datetime, renew_before_s: float, percentage: int
) -> float:
    """``renewBeforePercentage`` counts on the lifetime the CA gave (a profile may shorten
    the one asked for); else ``renewBefore`` as written."""
    if percentage > 0:
        return (not_after - not_before).total_seconds() * percentage / 100
    return renew_before_s


def _uses_renew_before(lifetime: timedelta, renew_before_s: float) -> bool:
    return 0 < renew_before_s < lifetime.total_seconds()


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1), uniform over inputs, the same for the same ``parts``."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def duration_text(delta: timedelta) -> str:
    """``720h``, ``41m``, ``75s``: the largest whole unit, as ``renewBefore`` is written."""
    seconds = round(delta.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 600:
        return f"{round(seconds / 60)}m"
    return f"{seconds}s"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def lifetime_plan(
    *, not_before: datetime, not_after: datetime, renew_before_s: float, seed: str
) -> RenewalPlan:
    """The lifetime rule with its jitter: earlier only, never before the certificate starts."""
    lifetime = not_after - not_before
    point = renewal_time(not_before, not_after, renew_before_s)
    jitter = lifetime * JITTER_SHARE * stable_fraction(seed, "jitter")
    jitter = timedelta(seconds=round(jitter.total_seconds()))
    rule = (
        f"renewBefore {duration_text(timedelta(seconds=renew_before_s))}"
        if _uses_renew_before(lifetime, renew_before_s)
        else "2/3 of the lifetime"
    )
    return RenewalPlan(max(point - jitter, not_before), f"{rule}, jitter -{duration_text(jitter)}")


def plan_renewal(
    *,
    not_before: datetime,
    not_after: datetime,
    renew_before_s: float,
    seed: str,
    info: RenewalInfo | None,
    now: datetime,
) -> RenewalPlan:
    """The renewal time from ARI where the CA offers it, else from the lifetime rule."""
    fallback = lifetime_plan(
        not_before=not_before, not_after=not_after, renew_before_s=renew_before_s, seed=seed
    )
    if info is None or not info.offered:
        return fallback
    recheck_at = now + timedelta(seconds=max(info.retry_after_s, 1))
    retry = f"retry after {duration_text(recheck_at - now)}"
    if info.problem:
        return RenewalPlan(
            fallback.renew_at,
            f"{fallback.rule} (ARI unavailable: {info.problem}; {retry})",
            recheck_at,
        )
    start, end = datetime.fromisoformat(info.start), datetime.fromisoformat(info.end)
    window = f"ARI window {_stamp(start)} to {_stamp(end)}"
    user_deadline = renewal_time(not_before, not_after, renew_before_s)
    if _uses_renew_before(not_after - not_before, renew_before_s) and end > user_deadline:
        return RenewalPlan(
            fallback.renew_at, f"{fallback.rule} (sooner than the {window}; {retry})", recheck_at
        )
    point = start + (end - start) * stable_fraction(seed, "ari")
    point = min(point.replace(microsecond=0), not_after)
    explained = f"; {info.explanation_url}" if info.explanation_url else ""
    return RenewalPlan(point, f"{window} ({retry}{explained})", recheck_at)
