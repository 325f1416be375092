"""What one workflow run cost Temporal, counted from its history: tasks, events, bytes.

Every durable step is a workflow task or an activity task the server must match, persist
and hand out, and every payload is stored in the history and sent again on each replay.
``run_costs`` counts them for one run; ``payload_bytes`` says which payloads the history
bytes are (an activity's input or result, the workflow's input, a marker's details), and
``field_bytes`` which fields of a JSON payload make them large (an ``IssuerConfig``
copied into each snapshot, a certificate in each result).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

FIELD_DEPTH = 2
"""How deep into a JSON payload ``field_bytes`` names fields (``progress.challenges``)."""

COUNTED = {
    "workflow_tasks": EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    "activities_scheduled": EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    "local_activity_markers": EventType.EVENT_TYPE_MARKER_RECORDED,
    "timers": EventType.EVENT_TYPE_TIMER_STARTED,
    "signals": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    "search_attribute_upserts": EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
}
"""Counts taken by event type, by the name the figures give them."""


@dataclass
class RunCosts:
    """One run's (or, summed, many runs') counts and history bytes."""

    counts: Counter[str] = field(default_factory=Counter)
    payload_bytes: Counter[str] = field(default_factory=Counter)
    """Bytes of payloads by what they are: ``<activity> input``, ``workflow input`` ..."""
    field_bytes: Counter[str] = field(default_factory=Counter)
    """Bytes of a JSON payload's fields: ``<activity> input: progress.issuer`` ..."""
    activities: Counter[str] = field(default_factory=Counter)
    """Activities scheduled, by activity type."""
    runs: int = 0

    def add(self, other: RunCosts) -> None:
        self.counts.update(other.counts)
        self.payload_bytes.update(other.payload_bytes)
        self.field_bytes.update(other.field_bytes)
        self.activities.update(other.activities)
        self.runs += other.runs

    def per_run(self, counter: Counter[str]) -> dict[str, float]:
        return {key: value / max(1, self.runs) for key, value in counter.items()}


def _payloads_size(payloads: Payloads) -> int:
    return sum(p.ByteSize() for p in payloads.payloads)


def _json_fields(value: Any, prefix: str, depth: int) -> Counter[str]:
    """Serialized size of each field of a JSON object, down to ``depth`` levels."""
    sizes: Counter[str] = Counter()
    if not isinstance(value, dict) or depth == 0:
        return sizes
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        sizes[path] += len(json.dumps(item, separators=(",", ":")))
        sizes.update(_json_fields(item, path, depth - 1))
    return sizes


def field_sizes(label: str, payloads: Payloads) -> Counter[str]:
    """``field_bytes`` of each JSON-object payload among ``payloads``, under ``label``."""
    sizes: Counter[str] = Counter()
    for payload in payloads.payloads:
        try:
            value = json.loads(payload.data)
        except ValueError:
            continue
        for path, size in _json_fields(value, "", FIELD_DEPTH).items():
            sizes[f"{label}: {path}"] += size
    return sizes


def _payloads_of(event: HistoryEvent, activity_types: dict[int, str]) -> tuple[str, Payloads]:
    """What an event's payloads are and the payloads; an empty label for none."""
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        return "workflow input", event.workflow_execution_started_event_attributes.input
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return "workflow result", event.workflow_execution_completed_event_attributes.result
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        attributes = event.activity_task_scheduled_event_attributes
        activity_types[event.event_id] = attributes.activity_type.name
        return f"{attributes.activity_type.name} input", attributes.input
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        completed = event.activity_task_completed_event_attributes
        name = activity_types.get(completed.scheduled_event_id, "?")
        return f"{name} result", completed.result
    if kind == EventType.EVENT_TYPE_MARKER_RECORDED:
        marker = event.marker_recorded_event_attributes
        details = Payloads()
        for _, values in sorted(marker.details.items()):
            details.payloads.extend(values.payloads)
        return f"marker {marker.marker_name}", details
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        signal = event.workflow_execution_signaled_event_attributes
        return f"signal {signal.signal_name}", signal.input
    return "", Payloads()


def run_costs(history: WorkflowHistory) -> RunCosts:
    """The counts and history bytes of one run."""
    return events_costs(history.events)


def events_costs(events: Sequence[HistoryEvent]) -> RunCosts:
    costs = RunCosts(runs=1)
    # Every count is shown, a zero too (no timers, no local activities yet).
    costs.counts.update(dict.fromkeys(["history_events", "history_bytes", *COUNTED], 0))
    costs.counts["activity_attempts"] = 0
    counted = {kind: name for name, kind in COUNTED.items()}
    activity_types: dict[int, str] = {}
    for event in events:
        size = event.ByteSize()
        costs.counts["history_events"] += 1
        costs.counts["history_bytes"] += size
        if event.event_type in counted:
            costs.counts[counted[event.event_type]] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            # Temporal records only the last attempt's start, numbered.
            costs.counts["activity_attempts"] += max(
                1, event.activity_task_started_event_attributes.attempt
            )
        label, payloads = _payloads_of(event, activity_types)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            costs.activities[activity_types[event.event_id]] += 1
        carried = _payloads_size(payloads) if label else 0
        if carried:
            costs.payload_bytes[label] += carried
            costs.field_bytes.update(field_sizes(label, payloads))
        event_name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
        costs.payload_bytes[f"event envelopes: {event_name}"] += size - carried
    return costs


def total_costs(histories: Sequence[WorkflowHistory]) -> RunCosts:
    total = RunCosts()
    for history in histories:
        total.add(run_costs(history))
    return total
