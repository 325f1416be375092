"""One Order, level-triggered: start its workflow, or say in its status why it cannot.

Nothing here depends on what happened before: the same Order reconciled twice starts
no second workflow (the id derives from the Order) and writes no unchanged status.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import ValidationError

from activities.issuer_config import IssuerConfig
from k8s_bridge.config import BridgeConfig
from k8s_bridge.crd_models import ClusterIssuer, Issuer, Order
from k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from k8s_bridge.informer import Informer
from k8s_bridge.issuer_translation import InvalidIssuerError, issuer_config
from k8s_bridge.kube_api import KubeApi
from k8s_bridge.order_input import order_input, order_workflow_id
from k8s_bridge.order_workflows import OrderWorkflows, ended_reason
from k8s_bridge.status_writes import write_status
from workflows.order_progress import FINAL_STATES, ORDER_FAILED, OrderEvent

log = logging.getLogger(__name__)
NAMESAKE_RETRY_S = 2.0


class OrderReconciler:
    def __init__(
        self,
        *,
        api: KubeApi,
        config: BridgeConfig,
        workflows: OrderWorkflows,
        orders: Informer,
        issuers: Informer,
        cluster_issuers: Informer,
        events: EventRecorder,
    ) -> None:
        self._api = api
        self._config = config
        self._workflows = workflows
        self._orders = orders
        self._issuers = issuers
        self._cluster_issuers = cluster_issuers
        self._events = events

    def issuer_for(self, order: Order) -> tuple[IssuerConfig | None, str]:
        """The issuer's configuration, or a sentence saying why there is none yet."""
        ref = order.spec.issuer_ref
        namespace = order.metadata.namespace or ""
        model: type[Issuer] | type[ClusterIssuer]
        if ref.kind == "ClusterIssuer":
            obj, model, shown = self._cluster_issuers.get(ref.name), ClusterIssuer, ref.name
        else:
            obj, model = self._issuers.get(f"{namespace}/{ref.name}"), Issuer
            shown = f"{namespace}/{ref.name}"
        if obj is None:
            return None, (
                f'Waiting for {ref.kind} "{shown}" to exist; the Order starts as soon as it does'
            )
        try:
            return issuer_config(
                model.model_validate(obj),
                cluster_resource_namespace=self._config.cluster_resource_namespace,
            ), ""
        except (InvalidIssuerError, ValidationError) as error:
            return None, f"{ref.kind} {shown} cannot be used: {error}"

    async def reconcile(self, key: str) -> float | None:
        """Converge one Order; return a delay to look again, or None."""
        obj = self._orders.get(key)
        if obj is None:
            return None
        order = Order.model_validate(obj)
        status = obj.get("status") or {}
        if order.metadata.deletion_timestamp or status.get("state") in FINAL_STATES:
            return None
        issuer, problem = self.issuer_for(order)
        if issuer is None:
            await self._write(order, status, {"reason": problem})
            return None
        state = await self._workflows.ensure(
            order_input(order, issuer, observer_task_queue=self._config.bridge_task_queue)
        )
        if state.running:
            return None
        if state.status is None:
            return NAMESAKE_RETRY_S
        namespace, name = order.metadata.namespace or "", order.metadata.name
        reason = ended_reason(order_workflow_id(namespace, name), state.status, state.detail)
        now = datetime.now(UTC)
        await self._write(
            order,
            status,
            {
                "state": "errored",
                "reason": reason,
                "failureTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        involved = InvolvedObject(
            kind=Order.KIND, namespace=namespace, name=name, uid=order.metadata.uid or ""
        )
        event = OrderEvent(
            seq=0,
            at=now.isoformat(),
            kind=Order.KIND,
            object_name=name,
            type="Warning",
            reason=ORDER_FAILED,
            message=reason,
        )
        await asyncio.to_thread(self._events.record, involved, event)
        return None

    async def _write(self, order: Order, current: dict[str, Any], desired: dict[str, Any]) -> None:
        await asyncio.to_thread(
            partial(
                write_status,
                self._api,
                plural=Order.PLURAL,
                namespace=order.metadata.namespace or "",
                name=order.metadata.name,
                current=current,
                desired=desired,
            )
        )

    def orders_using(self, kind: str, namespace: str, name: str) -> list[str]:
        """Keys of the Orders that name this issuer."""
        keys = []
        for obj in self._orders.items():
            ref = obj.get("spec", {}).get("issuerRef", {})
            if ref.get("name") != name or ref.get("kind", "Issuer") != kind:
                continue
            if kind == "Issuer" and obj["metadata"].get("namespace") != namespace:
                continue
            keys.append(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")
        return keys
