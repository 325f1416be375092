"""Where a workflow's time went, read from its Temporal history after the run.

Temporal stamps every history event with the server's clock, on this machine the same
clock the benchmarks read, at millisecond resolution. ``walk`` pairs each activity's
completion with its scheduling and start; ``history_breakdown`` sums a run's intervals by
kind; ``order_times`` picks the moments of an ``OrderWorkflow`` that the figures use.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

from harness.acmeflow_api import ActivityName, StackInfo
from harness.figures import NAN

HISTORY_FETCHES = 16
"""Workflow histories fetched from Temporal at once, after the run."""
MAX_RUNS = 8
"""Runs of one workflow followed back through continue-as-new."""
WORKFLOW_RUN = "workflow run, first to last event"

T = TypeVar("T")


def event_s(event: HistoryEvent) -> float:
    return float(event.event_time.ToNanoseconds()) / 1e9


# -- walking a history -----------------------------------------------------------------


@dataclass(frozen=True)
class ActivityRun:
    """One activity that completed: its name, its moments, and its scheduling attributes."""

    name: str
    scheduled: float
    started: float
    completed: float
    scheduled_attributes: Any
    """``ActivityTaskScheduledEventAttributes``: the input it was given."""

    def json_input(self) -> dict[str, Any]:
        """The first argument, a JSON object (a progress snapshot); empty if it is not one."""
        try:
            value = json.loads(self.scheduled_attributes.input.payloads[0].data)
        except (IndexError, TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Step:
    """One history event: its time, its kind (the attributes' field name), its attributes."""

    event: HistoryEvent
    at: float
    kind: str
    attributes: Any
    completed: ActivityRun | None = None
    """The activity this event completed, on an ``ActivityTaskCompleted``."""


def walk(history: WorkflowHistory) -> Iterator[Step]:
    """The events of one run in order, each activity completion paired with its start."""
    scheduled: dict[int, tuple[str, float, Any]] = {}
    started: dict[int, float] = {}
    for event in history.events:
        at, kind = event_s(event), event.WhichOneof("attributes") or ""
        attributes: Any = getattr(event, kind) if kind else None
        completed = None
        if kind == "activity_task_scheduled_event_attributes":
            scheduled[event.event_id] = (attributes.activity_type.name, at, attributes)
        elif kind == "activity_task_started_event_attributes":
            started[attributes.scheduled_event_id] = at
        elif kind == "activity_task_completed_event_attributes":
            origin = attributes.scheduled_event_id
            name, scheduled_at, inputs = scheduled[origin]
            completed = ActivityRun(name, scheduled_at, started.get(origin, NAN), at, inputs)
        yield Step(event, at, kind, attributes, completed)


# -- where a run's time goes -----------------------------------------------------------

_WAITS = {
    "workflow_task_started_event_attributes": "workflow task: queued",
    "timer_fired_event_attributes": "workflow timers",
}
_RUNS = {
    "workflow_task_completed_event_attributes": "workflow task: run + respond",
    "workflow_task_failed_event_attributes": "workflow task: failed",
    "workflow_task_timed_out_event_attributes": "workflow task: timed out (e.g. sticky queue)",
}
_ACTIVITY_ENDS = (
    "activity_task_completed_event_attributes",
    "activity_task_failed_event_attributes",
    "activity_task_timed_out_event_attributes",
)


def history_breakdown(history: WorkflowHistory) -> dict[str, float]:
    """Seconds of one workflow run by kind of interval between its history events.

    An activity retried after a failure shows as ``activity: retried`` from its
    scheduling to the start of the attempt that ended it (Temporal records only that one).
    """
    at: dict[int, float] = {}
    activity_names: dict[int, str] = {}
    spent: dict[str, float] = defaultdict(float)
    for step in walk(history):
        now, kind, attributes = step.at, step.kind, step.attributes
        at[step.event.event_id] = now
        if kind == "activity_task_scheduled_event_attributes":
            activity_names[step.event.event_id] = attributes.activity_type.name
        elif kind == "activity_task_started_event_attributes":
            label = "activity: queued" if attributes.attempt <= 1 else "activity: retried"
            spent[label] += now - at[attributes.scheduled_event_id]
        elif kind in _ACTIVITY_ENDS:
            name = activity_names[attributes.scheduled_event_id]
            origin = attributes.started_event_id or attributes.scheduled_event_id
            spent[f"activity {name}"] += now - at.get(origin, now)
        elif kind in _WAITS:
            origin = getattr(attributes, "scheduled_event_id", 0) or attributes.started_event_id
            spent[_WAITS[kind]] += now - at.get(origin, now)
        elif kind in _RUNS:
            # A task that timed out waiting for its sticky worker never started.
            origin = attributes.started_event_id or attributes.scheduled_event_id
            spent[_RUNS[kind]] += now - at.get(origin, now)
    events = history.events
    total = event_s(events[-1]) - at[events[0].event_id]
    spent["other (between events)"] = total - sum(spent.values())
    spent[WORKFLOW_RUN] = total
    return dict(spent)


# -- an OrderWorkflow's moments --------------------------------------------------------


@dataclass(frozen=True)
class Publish:
    """One progress snapshot published to the bridge's task queue: its three moments."""

    scheduled: float
    started: float
    completed: float


@dataclass(frozen=True)
class OrderPublish(Publish):
    """One ``publish_order_progress`` activity and the snapshot it carried."""

    state: str
    mirrored: str
    """The snapshot without the fields the bridge does not write (``version``, ``step``)."""

    @classmethod
    def of(cls, run: ActivityRun) -> OrderPublish:
        """The publish of ``run``, whose input is a JSON ``OrderUpdate``."""
        progress = dict(run.json_input().get("progress") or {})
        shown = {k: v for k, v in progress.items() if k not in ("version", "step")}
        shown["challenges"] = [
            {k: v for k, v in c.items() if k != "step"} for c in progress.get("challenges", [])
        ]
        mirrored = json.dumps(shown, sort_keys=True)
        state = str(progress.get("state", ""))
        return cls(run.scheduled, run.started, run.completed, state, mirrored)


@dataclass
class OrderTimes:
    """Epoch seconds of the moments of one OrderWorkflow that the figures use, and counts."""

    started: float
    breakdown: dict[str, float]
    events: int
    authorizations_read: float = NAN
    """The last ``describe_authorization`` before the first challenge was presented."""
    presenting: float = NAN
    """The first ``present_*`` scheduled: after ``_flush`` saw the Challenges created."""
    download_completed: float = NAN
    decided: float = NAN
    """The workflow task that followed ``download_certificate``: it decided ``valid``."""
    workflow_tasks: int = 0
    publish_woken_tasks: int = 0
    """Workflow tasks that nothing but a completed ``publish_order_progress`` woke."""
    activities: Counter[str] = field(default_factory=Counter)
    publishes: list[OrderPublish] = field(default_factory=list)

    @property
    def final_publish(self) -> OrderPublish | None:
        return next((p for p in self.publishes if p.state == "valid"), None)

    @property
    def idle_publishes(self) -> int:
        """Publishes that carried nothing new for Kubernetes (only ``version``/``step``)."""
        shown = [p.mirrored for p in self.publishes]
        return sum(1 for before, now in itertools.pairwise(shown) if before == now)


_NOT_WAKING = {
    "activity_task_scheduled_event_attributes",
    "activity_task_started_event_attributes",
    "workflow_task_scheduled_event_attributes",
    "workflow_task_started_event_attributes",
    "workflow_task_completed_event_attributes",
    "upsert_workflow_search_attributes_event_attributes",
    "marker_recorded_event_attributes",
}
"""Events that do not by themselves make Temporal schedule a workflow task."""
_PUBLISHED = "publish_order_progress completed"


def order_times(history: WorkflowHistory) -> OrderTimes:
    events = history.events
    times = OrderTimes(event_s(events[0]), history_breakdown(history), len(events))
    woken_by: set[str] = set()
    for step in walk(history):
        now, kind, attributes = step.at, step.kind, step.attributes
        if kind not in _NOT_WAKING:
            woken_by.add(kind)
        if kind == "activity_task_scheduled_event_attributes":
            name = attributes.activity_type.name
            times.activities[name] += 1
            if name.startswith("present_") and math.isnan(times.presenting):
                times.presenting = now
        elif step.completed is not None:
            name = step.completed.name
            if name == ActivityName.DOWNLOAD_CERTIFICATE:
                times.download_completed = now
            elif name == ActivityName.DESCRIBE_AUTHORIZATION and math.isnan(times.presenting):
                times.authorizations_read = now
            elif name == ActivityName.PUBLISH_ORDER_PROGRESS:
                times.publishes.append(OrderPublish.of(step.completed))
                woken_by = (woken_by - {kind}) | {_PUBLISHED}
        elif kind == "workflow_task_scheduled_event_attributes":
            times.workflow_tasks += 1
            times.publish_woken_tasks += woken_by == {_PUBLISHED}
            woken_by = set()
        elif kind == "workflow_task_completed_event_attributes" and math.isnan(times.decided):
            times.decided = NAN if math.isnan(times.download_completed) else now
    return times


# -- fetching --------------------------------------------------------------------------


async def runs_of(temporal: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of the workflow, oldest first, following continue-as-new back."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    for _ in range(MAX_RUNS):
        history = await temporal.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        first = history.events[0].workflow_execution_started_event_attributes
        run_id = first.continued_execution_run_id or None
        if run_id is None:
            break
    return histories[::-1]


async def fetch_each(
    stack: StackInfo, names: list[str], times: Callable[[Client, str], Awaitable[T]]
) -> dict[str, T]:
    """``times(temporal, name)`` for every name, a few at once; a name that fails is left out."""
    temporal = await Client.connect(stack.temporal_address, namespace=stack.temporal_namespace)
    limit = asyncio.Semaphore(HISTORY_FETCHES)

    async def one(name: str) -> tuple[str, T | None]:
        async with limit:
            try:
                return name, await times(temporal, name)
            except Exception as error:  # noqa: BLE001 - a missing history is a figure too
                print(f"  no history for {name}: {error}", flush=True)
                return name, None

    found = await asyncio.gather(*(one(n) for n in names))
    return {name: result for name, result in found if result is not None}
