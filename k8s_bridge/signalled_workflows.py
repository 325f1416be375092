"""Start-or-update for long-lived resource workflows (Certificates, Issuers).

Signal-with-start delivers the resource's current spec and issuer: it starts the
workflow if none runs, else signals the running one. The bridge remembers what it last
delivered per resource and skips identical repeats, so a resync costs nothing; after a
restart it delivers once more, which the workflow ignores when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from acmeflow.workflows.resource_ids import UID_MEMO


class SignalledWorkflows:
    def __init__(self, client: Client, *, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._delivered: dict[str, str] = {}

    async def deliver(
        self, workflow: Any, workflow_id: str, uid: str, value: Any, *, summary: str
    ) -> bool:
        """Start or signal ``workflow`` with ``value``; False when it already had it."""
        fingerprint = hashlib.sha256(
            json.dumps(asdict(value), sort_keys=True, default=str).encode()
        ).hexdigest()
        if self._delivered.get(workflow_id) == fingerprint:
            return False
        await self._client.start_workflow(
            workflow,
            value,
            id=workflow_id,
            task_queue=self._task_queue,
            start_signal="update",
            start_signal_args=[value],
            memo={UID_MEMO: uid},
            static_summary=summary,
        )
        self._delivered[workflow_id] = fingerprint
        return True

    async def signal(self, workflow_id: str, signal: Any, arg: Any) -> bool:
        """Signal the running workflow ``workflow_id``; False when none runs (none to wake)."""
        try:
            await self._client.get_workflow_handle(workflow_id).signal(signal, arg)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    def forget(self, workflow_id: str) -> None:
        self._delivered.pop(workflow_id, None)
