"""What a Certificate's workflow did, read from its history (every run, oldest first), and
what its resource went through, read from a Kubernetes watch (every status it stored)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from acmeflow.contracts.activities import ActivityName
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client

SECRET_CHANGED = "secret_changed"


def certificate_events(stack: StackInfo, namespace: str, name: str) -> list[HistoryEvent]:
    """Every event of every run of the Certificate's workflow, oldest run first."""

    async def events() -> list[HistoryEvent]:
        temporal = await Client.connect(stack.temporal_address)
        workflow_id = f"certificate/{namespace}/{name}"
        runs = [r async for r in temporal.list_workflows(f"WorkflowId = '{workflow_id}'")]
        found: list[HistoryEvent] = []
        for run in sorted(runs, key=lambda r: r.start_time):
            handle = temporal.get_workflow_handle(workflow_id, run_id=run.run_id)
            found += (await handle.fetch_history()).events
        return found

    return asyncio.run(events())


@dataclass(frozen=True)
class SinceSignal:
    """What the workflow did after the last ``secret_changed`` signal it received."""

    signals: int
    looked: bool
    """The Secret was inspected after the signal."""
    asleep: bool
    """After that look, a timer started: the workflow waits (for the renewal) again."""
    issuing: bool
    """A private key was prepared after the signal: an issuance began."""


def since_last_signal(events: list[HistoryEvent]) -> SinceSignal:
    signalled = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == SECRET_CHANGED
    ]
    after = events[signalled[-1] :] if signalled else []
    kinds = [_activity(e) or e.event_type for e in after]
    looked_at = next(
        (i for i, k in enumerate(kinds) if k == ActivityName.INSPECT_CERTIFICATE_SECRET), None
    )
    return SinceSignal(
        signals=len(signalled),
        looked=looked_at is not None,
        asleep=looked_at is not None and EventType.EVENT_TYPE_TIMER_STARTED in kinds[looked_at:],
        issuing=ActivityName.PREPARE_PRIVATE_KEY in kinds,
    )


def _activity(event: HistoryEvent) -> str:
    if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return ""
    return str(event.activity_task_scheduled_event_attributes.activity_type.name)


@dataclass
class ConditionWatch:
    """Every (type, status, reason, message) of the Certificate's conditions the API server
    stored while the watch ran: a state held for a moment is seen, unlike by polling."""

    stack: StackInfo
    namespace: str
    name: str
    seen: list[tuple[str, str, str, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _watch: watch.Watch = field(default_factory=watch.Watch)
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ConditionWatch:
        api = client.CustomObjectsApi(kubernetes_api_client(self.stack.kubeconfig))
        listing: dict[str, Any] = api.list_namespaced_custom_object(
            "acmeflow.io", "v1alpha1", self.namespace, "certificates"
        )
        version = listing["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, args=(api, version), daemon=True)
        self._thread.start()
        return self

    def _run(self, api: client.CustomObjectsApi, version: str) -> None:
        try:
            for event in self._watch.stream(
                api.list_namespaced_custom_object,
                "acmeflow.io",
                "v1alpha1",
                self.namespace,
                "certificates",
                field_selector=f"metadata.name={self.name}",
                resource_version=version,
            ):
                obj = event["object"]
                for c in obj.get("status", {}).get("conditions", []):
                    self.seen.append((c["type"], c["status"], c["reason"], c["message"]))
        except Exception as error:  # noqa: BLE001 - __exit__ reports it (unless stopped)
            if not self._stopping.is_set():
                self.errors.append(error)

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._watch.stop()
        if self._thread is not None:
            self._thread.join(10)
        assert not self.errors, f"the condition watch failed: {self.errors}"
