"""One Order, level-triggered: start its workflow, or say in its status why it cannot.

Nothing here depends on what happened before: the same Order reconciled twice starts
no second workflow (the id derives from the Order) and writes no unchanged status.
Orders a Certificate created are started by that Certificate's workflow (as its child)
and only mirrored here. A workflow that closed while its final snapshot went undelivered
(the bridge was away) still answers its progress query: the Order converges to that
snapshot through the same mirror as live progress, whoever started the workflow.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from acmeflow.contracts.progress import (
    EventReason,
    EventType,
    ObjectKind,
    OrderEvent,
    OrderProgress,
    OrderUpdate,
)
from acmeflow.contracts.states import FINAL_ORDER_STATES, OrderState
from acmeflow.crds.models import Certificate, Order, OrderStatus
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.issuer_lookup import IssuerLookup
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.order_input import order_input
from acmeflow.k8s_bridge.order_mirror import KubernetesOrderObserver
from acmeflow.k8s_bridge.order_workflows import OrderWorkflows, WorkflowState, ended_reason
from acmeflow.k8s_bridge.status_writes import write_status
from acmeflow.k8s_bridge.timestamps import now
from acmeflow.workflows.resource_ids import order_workflow_id

log = logging.getLogger(__name__)
NAMESAKE_RETRY_S = 2.0


def controlled_by_certificate(order: Order) -> bool:
    return any(
        o.kind == Certificate.KIND and o.controller for o in order.metadata.owner_references or []
    )


class OrderReconciler:
    def __init__(
        self,
        *,
        api: KubeApi,
        config: BridgeConfig,
        workflows: OrderWorkflows,
        orders: Informer,
        issuers: IssuerLookup,
        events: EventRecorder,
        mirror: KubernetesOrderObserver,
    ) -> None:
        self._api = api
        self._config = config
        self._workflows = workflows
        self._orders = orders
        self._issuers = issuers
        self._events = events
        self._mirror = mirror

    async def reconcile(self, key: str) -> float | None:
        """Converge one Order; return a delay to look again, or None."""
        obj = self._orders.get(key)
        if obj is None:
            return None
        order = Order.model_validate(obj)
        if order.metadata.deletion_timestamp or (
            order.status is not None and order.status.state in FINAL_ORDER_STATES
        ):
            return None
        state = await self._workflow_state(order)
        if state is None or state.running:
            return None
        if state.status is None:
            return NAMESAKE_RETRY_S
        if state.final is not None:
            await asyncio.to_thread(self._mirror.publish, self._update(order, state.final))
        else:
            await self._fail(order, state)
        return None

    async def _workflow_state(self, order: Order) -> WorkflowState | None:
        """The Order's workflow, started here unless a Certificate's workflow starts it;
        None if there is none to look at (yet)."""
        namespace, name = order.metadata.namespace or "", order.metadata.name
        if controlled_by_certificate(order):
            workflow_id = order_workflow_id(namespace, name)
            return await self._workflows.observe(workflow_id, order.metadata.uid or "")
        issuer, problem = self._issuers.config_for(namespace, order.spec.issuer_ref)
        if issuer is None:
            await self._write(order, OrderStatus(reason=problem))
            return None
        return await self._workflows.ensure(
            order_input(order, issuer, observer_task_queue=self._config.bridge_task_queue)
        )

    @staticmethod
    def _update(order: Order, progress: OrderProgress) -> OrderUpdate:
        """The final snapshot as the workflow would have delivered it."""
        namespace, name = order.metadata.namespace or "", order.metadata.name
        return OrderUpdate(
            workflow_id=order_workflow_id(namespace, name),
            namespace=namespace,
            order_name=name,
            progress=progress,
            resource_uid=order.metadata.uid or "",
        )

    async def _fail(self, order: Order, state: WorkflowState) -> None:
        """The workflow ended without a final state: say so on the Order and in an Event."""
        namespace, name = order.metadata.namespace or "", order.metadata.name
        reason = ended_reason(order_workflow_id(namespace, name), state.status, state.detail)
        failed = now()
        await self._write(
            order, OrderStatus(state=OrderState.ERRORED, reason=reason, failure_time=failed)
        )
        involved = InvolvedObject(
            kind=Order.KIND, namespace=namespace, name=name, uid=order.metadata.uid or ""
        )
        event = OrderEvent(
            seq=0,
            at=failed.isoformat(),
            kind=ObjectKind.ORDER,
            object_name=name,
            type=EventType.WARNING,
            reason=EventReason.ORDER_FAILED,
            message=reason,
        )
        await asyncio.to_thread(self._events.record, involved, event)

    async def _write(self, order: Order, desired: OrderStatus) -> None:
        await asyncio.to_thread(
            partial(
                write_status,
                self._api,
                plural=Order.PLURAL,
                metadata=order.metadata,
                current=order.status,
                desired=desired,
            )
        )
