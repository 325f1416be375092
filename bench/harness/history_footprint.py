"""What the workflows of a namespace wrote to Temporal during given windows of time.

Every execution of the namespace (each run of a continue-as-new chain is one) is listed
and its history fetched; each event is counted in the window its ``event_time`` falls in,
by workflow type: events, bytes (the serialized event, as the server stores and
returns it) and Temporal Cloud actions as the events show them (docs.temporal.io
"Temporal Cloud Actions": a workflow start, each activity attempt, a timer, a signal, a
search attribute upsert, local activities run in one workflow task as one). A run that
started before a window and goes on in it counts only its events inside the window.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from harness.histories import HISTORY_FETCHES, event_s

ACTION_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow started",
    EventType.EVENT_TYPE_TIMER_STARTED: "timer started",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signal",
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search attributes upserted",
}
"""Events that are one action each; activity attempts and local activities are counted
apart (an attempt number, a batch per workflow task)."""


@dataclass(frozen=True)
class Window:
    name: str
    start: float
    end: float


@dataclass
class Footprint:
    """One window's writes, by workflow type."""

    runs_started: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    """By kind of action, every workflow type together."""
    activities: Counter[str] = field(default_factory=Counter)
    """Activities scheduled, by activity type."""

    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def total_actions(self) -> int:
        return sum(self.actions.values())


def _actions(events: Sequence[HistoryEvent]) -> Counter[str]:
    counted: Counter[str] = Counter()
    local_batch = False
    for event in events:
        kind = event.event_type
        if kind in ACTION_EVENTS:
            counted[ACTION_EVENTS[kind]] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            counted["activity attempt"] += max(
                1, event.activity_task_started_event_attributes.attempt
            )
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            name = event.marker_recorded_event_attributes.marker_name
            if name == "core_local_activity" and not local_batch:
                counted["local activities (one per workflow task)"] += 1
                local_batch = True
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            local_batch = False
    return counted


def _note(footprint: Footprint, workflow_type: str, events: Sequence[HistoryEvent]) -> None:
    if not events:
        return
    if events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        footprint.runs_started[workflow_type] += 1
    footprint.events[workflow_type] += len(events)
    footprint.bytes[workflow_type] += sum(e.ByteSize() for e in events)
    footprint.actions.update(_actions(events))
    footprint.activities.update(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


async def footprints(
    address: str, namespace: str, windows: Sequence[Window]
) -> dict[str, Footprint]:
    """Each window's footprint, from every execution of ``namespace`` that overlaps one."""
    temporal = await Client.connect(address, namespace=namespace)
    first = min(w.start for w in windows)
    executions = [
        (e.id, e.run_id, e.workflow_type)
        async for e in temporal.list_workflows()
        if e.close_time is None or e.close_time.timestamp() >= first
    ]
    limit = asyncio.Semaphore(HISTORY_FETCHES)

    async def events_of(workflow_id: str, run_id: str) -> list[HistoryEvent]:
        async with limit:
            history = await temporal.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            return list(history.events)

    histories = await asyncio.gather(*(events_of(i, r) for i, r, _ in executions))
    found = {w.name: Footprint() for w in windows}
    for (_, _, workflow_type), events in zip(executions, histories, strict=True):
        for window in windows:
            inside = [e for e in events if window.start <= event_s(e) < window.end]
            _note(found[window.name], workflow_type, inside)
    return found
