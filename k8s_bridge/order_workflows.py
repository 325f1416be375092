"""Order workflows seen from the bridge: start once per Order, notice ends, cancel.

The workflow id derives from the Order (``order/<namespace>/<name>``) and the Order's
UID is kept in the workflow's memo, so starting again is harmless and a workflow left
by a deleted namesake is told apart from the current Order's. A closed workflow still
answers its ``progress`` query, so a final snapshot the bridge never received (it was
away when the run ended) is read back from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from acmeflow.contracts.progress import OrderProgress
from acmeflow.k8s_bridge.resource_workflows import cancel_if_owned
from acmeflow.workflows.order import OrderInput, OrderResult, OrderWorkflow
from acmeflow.workflows.resource_ids import UID_MEMO, order_workflow_id

log = logging.getLogger(__name__)
QUERY_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class WorkflowState:
    """What the bridge learned about an Order's workflow."""

    running: bool
    status: WorkflowExecutionStatus | None = None
    detail: str = ""
    final: OrderProgress | None = None
    """The closed workflow's final snapshot, if it reached a final state."""


def ended_reason(workflow_id: str, status: WorkflowExecutionStatus | None, detail: str) -> str:
    """Why an Order whose workflow ended without reporting a final state failed."""
    how = {
        WorkflowExecutionStatus.TERMINATED: "was terminated from Temporal",
        WorkflowExecutionStatus.CANCELED: "was cancelled from Temporal",
        WorkflowExecutionStatus.TIMED_OUT: "timed out",
        WorkflowExecutionStatus.FAILED: "failed",
    }.get(status or WorkflowExecutionStatus.FAILED, "ended")
    return f"Order workflow {workflow_id} {how}" + (f": {detail}" if detail else "")


class OrderWorkflows:
    def __init__(self, client: Client, *, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._confirmed: set[str] = set()

    async def _memo_uid(self, handle: WorkflowHandle[OrderWorkflow, OrderResult]) -> str:
        description = await handle.describe()
        memo = await description.memo()
        return str(memo.get(UID_MEMO, ""))

    async def _start(
        self, order: OrderInput, reuse: WorkflowIDReusePolicy
    ) -> WorkflowHandle[OrderWorkflow, OrderResult]:
        names = [
            n
            for n in [order.names.common_name, *order.names.dns_names, *order.names.ip_addresses]
            if n
        ]
        return await self._client.start_workflow(
            OrderWorkflow.run,
            order,
            id=order_workflow_id(order.namespace, order.order_name),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
            memo={UID_MEMO: order.resource_uid},
            static_summary=f"ACME order for {', '.join(dict.fromkeys(names))}",
            static_details=(
                f"Order {order.namespace}/{order.order_name} (uid "
                f"{order.resource_uid})\n\nIssuer: {order.issuer.name}\n\n"
                f"ACME server: {order.issuer.server}"
            ),
        )

    async def ensure(self, order: OrderInput) -> WorkflowState:
        """Start the Order's workflow unless it exists; report if it already ended."""
        uid = order.resource_uid
        workflow_id = order_workflow_id(order.namespace, order.order_name)
        try:
            handle = await self._start(order, WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            state = await self.observe(workflow_id, uid)
            if state is None:
                log.info("%s belonged to an earlier Order of that name; starting anew", workflow_id)
                await self._start(order, WorkflowIDReusePolicy.ALLOW_DUPLICATE)
                self._confirmed.add(uid)
                return WorkflowState(running=True)
            return state
        if uid not in self._confirmed:
            if await self._memo_uid(handle) != uid:
                if await cancel_if_owned(self._client, workflow_id, ""):
                    log.info("%s ran for a deleted namesake; cancelled it", workflow_id)
                return WorkflowState(running=False)
            self._confirmed.add(uid)
        return WorkflowState(running=True)

    async def observe(self, workflow_id: str, uid: str) -> WorkflowState | None:
        """The Order's workflow without starting it; None if none exists for this UID."""
        handle = self._client.get_workflow_handle_for(OrderWorkflow.run, workflow_id)
        try:
            description = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if str((await description.memo()).get(UID_MEMO, "")) != uid:
            return None
        if description.status == WorkflowExecutionStatus.RUNNING:
            return WorkflowState(running=True)
        return WorkflowState(
            running=False,
            status=description.status,
            detail=await self._end_detail(handle),
            final=await self._final_progress(handle),
        )

    async def _final_progress(
        self, handle: WorkflowHandle[OrderWorkflow, OrderResult]
    ) -> OrderProgress | None:
        """The closed run's snapshot if final. A worker replays the run to answer; if
        none is polling, the RPCError propagates and the Order is looked at again later."""
        try:
            progress = await handle.query(OrderWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowQueryFailedError as error:
            log.warning("%s cannot tell its progress: %s", handle.id, error)
            return None
        return progress if progress.final else None

    async def _end_detail(self, handle: WorkflowHandle[OrderWorkflow, OrderResult]) -> str:
        """The reason an operator gave when terminating, if that is how it ended."""
        close = WorkflowHistoryEventFilterType.CLOSE_EVENT
        async for event in handle.fetch_history_events(event_filter_type=close):
            if event.HasField("workflow_execution_terminated_event_attributes"):
                return str(event.workflow_execution_terminated_event_attributes.reason)
        return ""
