"""Which steps the kills cut short, read from the workflow histories of a fault run.

A worker that dies mid-step never reports back; Temporal notices when the step's
heartbeat or start-to-close timeout passes and runs it again elsewhere. The history
keeps the attempt that finished, with the failure of the one before: an attempt after
a timeout is a step the kill interrupted and another worker redid. (Steps that wait by
retrying, such as self-checks, fail with an error, not a timeout, and are not counted.)
"""

from __future__ import annotations

from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

Execution = tuple[str, str]
"""(workflow id, run id)."""


async def steps_redone_after_timeout(
    temporal_address: str, executions: list[Execution]
) -> Counter[str]:
    """Activity attempts started after the previous attempt timed out, by activity type."""
    client = await Client.connect(temporal_address)
    redone: Counter[str] = Counter()
    for workflow_id, run_id in executions:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        types: dict[int, str] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                types[event.event_id] = attributes.activity_type.name
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                if started.attempt > 1 and started.last_failure.HasField("timeout_failure_info"):
                    redone[types.get(started.scheduled_event_id, "?")] += 1
    return redone
