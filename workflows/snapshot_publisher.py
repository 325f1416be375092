"""A workflow's snapshot for its observer (the bridge), and the policy while it is away.

Each change bumps the snapshot's ``version``; one delivery is in flight at a time and the
newest snapshot goes next, so a slow observer sees fewer snapshots, the newest last.
While the observer is away:

- a delivery attempt gives up after ``DELIVERY_ATTEMPT``; the newest snapshot follows
  after a pause doubling up to ``MAX_REDELIVERY_PAUSE``, for as long as the run lasts;
- ``flush()`` (Challenges before presenting, each Issuer status, the end of a run) waits
  for at most two attempts, and not at all once the observer is known to be away, so
  issuance never waits on the observer for more than minutes;
- a run that ends undelivered loses nothing: a Certificate carries its status and
  undelivered events into its next run; a closed Order workflow answers its ``progress``
  query with its final snapshot, where the bridge must read it when it finds the
  workflow closed and the Order not final.

The bound is the activity's schedule-to-close timeout, not a timer: while the observer
answers, a run schedules exactly the commands it did before there was a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Final, Generic, Protocol, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import EventReason, EventType, ObjectKind, OrderEvent
from acmeflow.workflows.retry_policies import DELIVERY

DELIVERY_ATTEMPT: Final = timedelta(minutes=2)
DELIVERY_START_TO_CLOSE: Final = timedelta(seconds=10)
"""One mirror write takes well under a second; a bridge killed mid-write is retried on the
replica that takes over its Lease after this long."""
MAX_REDELIVERY_PAUSE: Final = timedelta(hours=1)


class Snapshot(Protocol):
    version: int
    events: list[OrderEvent]


S = TypeVar("S", bound=Snapshot)


class SnapshotPublisher(Generic[S]):
    """Delivers copies of ``snapshot`` through ``activity`` on the task queue ``to``.

    With no task queue there is no observer: changes are counted and nothing is sent.
    """

    def __init__(self, snapshot: S, activity: ActivityName, *, to: str) -> None:
        self._snapshot = snapshot
        self._activity = activity
        self._task_queue = to
        self._envelope: Callable[[S], object] = lambda snapshot: snapshot  # until start()
        self._delivered = 0
        self._delivered_events = 0
        self._abandoned = 0
        self._away = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self, envelope: Callable[[S], object]) -> None:
        """Deliver from now on, each snapshot wrapped by ``envelope`` (who it is about)."""
        self._envelope = envelope
        if self._task_queue:
            self._task = asyncio.create_task(self._deliver_changes())

    def changed(self) -> None:
        """Something the observer shows changed: it gets a new snapshot."""
        self._snapshot.version += 1

    def event(
        self,
        *,
        kind: ObjectKind,
        name: str,
        type: EventType,
        reason: EventReason,
        message: str,
    ) -> None:
        """Append an Event; its sequence number and workflow time make its name unique."""
        events = self._snapshot.events
        events.append(
            OrderEvent(
                seq=events[-1].seq + 1 if events else 0,
                at=workflow.now().isoformat(),
                kind=kind,
                object_name=name,
                type=type,
                reason=reason,
                message=message,
            )
        )
        self.changed()

    @property
    def undelivered_events(self) -> list[OrderEvent]:
        """Events no delivered snapshot carried yet: what a next run must carry on."""
        return self._snapshot.events[self._delivered_events :]

    async def flush(self) -> None:
        """Wait until the observer has the current snapshot, or an attempt was abandoned."""
        if self._task is None or self._away or not self._behind():
            return
        abandoned = self._abandoned
        await workflow.wait_condition(lambda: not self._behind() or self._abandoned > abandoned)

    async def stop(self) -> None:
        """Deliver what is left (one attempt after an abandoned one at most), then end."""
        self._closing = True
        if self._task is not None:
            await self._task

    def _behind(self) -> bool:
        return self._snapshot.version > self._delivered

    async def _deliver_changes(self) -> None:
        pause = DELIVERY_ATTEMPT
        while True:
            await workflow.wait_condition(lambda: self._behind() or self._closing)
            if not self._behind():
                return
            if await self._attempt():
                pause = DELIVERY_ATTEMPT
                continue
            if self._closing:
                return
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._closing, timeout=pause)
            pause = min(pause * 2, MAX_REDELIVERY_PAUSE)

    async def _attempt(self) -> bool:
        version, events = self._snapshot.version, len(self._snapshot.events)
        try:
            await workflow.execute_activity(
                self._activity,
                self._envelope(copy.deepcopy(self._snapshot)),
                task_queue=self._task_queue,
                start_to_close_timeout=DELIVERY_START_TO_CLOSE,
                schedule_to_close_timeout=DELIVERY_ATTEMPT,
                retry_policy=DELIVERY,
                summary=f"{self._activity} v{version}",
            )
        except ActivityError as error:
            workflow.logger.warning("%s v%d not delivered: %s", self._activity, version, error)
            self._abandoned += 1
            self._away = True
            return False
        self._delivered, self._delivered_events, self._away = version, events, False
        return True
