"""One activity call as a value: which activity, what it is for, how it retries.

Workflows schedule activities by name (``ActivityName``), never by importing the code that
runs them; ``returns`` decodes the result into its contract type. A step's description is
written once and serves twice: as the step text in the Temporal UI's current details and
as the activity's summary in the history.

A step's attempt (start-to-close) timeout is how long Temporal waits before it retries an
attempt whose worker died, so it is short: ``ATTEMPT`` fits one protocol call, a poll or a
solver step, whose every network timeout is shorter still (the ACME client's HTTP timeout,
DNS queries, Kubernetes requests). A step that legitimately runs longer heartbeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Final, Generic, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.states import ChallengeType

T = TypeVar("T")
NOTHING: Final = type(None)
"""``returns`` of an activity that returns nothing."""
ATTEMPT: Final = timedelta(seconds=10)
"""One attempt of a single call: a worker's death is noticed, and the step retried, then."""


@dataclass(frozen=True)
class Step(Generic[T]):
    activity: ActivityName
    description: str
    """What the step does, as a person reads it: ``finalizing with the CSR``."""
    retry: RetryPolicy
    returns: type[T]
    subject: str = ""
    """What the step acts on when its description leaves it out (``HTTP-01 for a.example``)."""
    timeout: timedelta | None = None
    """How long the step may take over all attempts (schedule-to-close)."""
    attempt_timeout: timedelta = ATTEMPT
    """One attempt (start-to-close); longer only with a ``heartbeat`` that notices a death."""
    heartbeat: timedelta | None = None

    @property
    def summary(self) -> str:
        return f"{self.subject}: {self.description}" if self.subject else self.description


async def execute(step: Step[T], arg: object, *, timeout: timedelta | None = None) -> T:
    """Run the step's activity; ``timeout`` stands in for a step that has none of its own."""
    result: T = await workflow.execute_activity(
        step.activity,
        arg,
        start_to_close_timeout=step.attempt_timeout,
        schedule_to_close_timeout=step.timeout or timeout,
        heartbeat_timeout=step.heartbeat,
        retry_policy=step.retry,
        summary=step.summary,
        result_type=step.returns,
    )
    return result


@dataclass(frozen=True)
class SolverActivities:
    """The three activities that solve one type of challenge."""

    present: ActivityName
    self_check: ActivityName
    clean_up: ActivityName


SOLVER_ACTIVITIES: Final[Mapping[ChallengeType, SolverActivities]] = MappingProxyType(
    {
        ChallengeType.HTTP01: SolverActivities(
            present=ActivityName.PRESENT_HTTP01,
            self_check=ActivityName.SELF_CHECK_HTTP01,
            clean_up=ActivityName.CLEAN_UP_HTTP01,
        ),
        ChallengeType.DNS01: SolverActivities(
            present=ActivityName.PRESENT_DNS01,
            self_check=ActivityName.SELF_CHECK_DNS01,
            clean_up=ActivityName.CLEAN_UP_DNS01,
        ),
    }
)
