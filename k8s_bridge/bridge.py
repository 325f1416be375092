"""Wiring of the bridge: informers feed a work queue; reconcilers and a Temporal worker
(the progress mirror) drain it; a sweep cancels workflows whose Order is gone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from temporalio.client import Client
from temporalio.worker import Worker

from activities.order_observer import ObserverActivities
from k8s_bridge.config import BridgeConfig
from k8s_bridge.crd_models import GROUP, VERSION, ClusterIssuer, Issuer, Order
from k8s_bridge.event_recorder import EventRecorder
from k8s_bridge.informer import Informer, Obj, OnChange
from k8s_bridge.kube_api import KubeApi
from k8s_bridge.order_mirror import KubernetesOrderObserver
from k8s_bridge.order_reconciler import OrderReconciler
from k8s_bridge.order_workflows import OrderWorkflows
from k8s_bridge.work_queue import WorkQueue

log = logging.getLogger(__name__)
SYNC_TIMEOUT_S = 60.0
Task = tuple[str, str, str]
"""(action, key, uid): ("order", "ns/name", "") or ("delete", "ns/name", uid)."""


class Bridge:
    def __init__(self, config: BridgeConfig, api: KubeApi, client: Client) -> None:
        self._config = config
        self._api = api
        self._client = client
        self._queue: WorkQueue[Task] = WorkQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events = EventRecorder(api)
        self.orders = self._informer(Order.PLURAL, self._order_changed)
        self.issuers = self._informer(Issuer.PLURAL, self._issuer_changed)
        self.cluster_issuers = self._informer(ClusterIssuer.PLURAL, self._issuer_changed)
        self._workflows = OrderWorkflows(client, task_queue=config.worker_task_queue)
        self._reconciler = OrderReconciler(
            api=api,
            config=config,
            workflows=self._workflows,
            orders=self.orders,
            issuers=self.issuers,
            cluster_issuers=self.cluster_issuers,
            events=self._events,
        )

    def _informer(self, plural: str, on_change: OnChange) -> Informer:
        lister = partial(self._api.custom.list_cluster_custom_object, GROUP, VERSION, plural)
        return Informer(plural, lister, on_change, resync_s=self._config.resync_s)

    def _submit(self, task: Task) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.add, task)

    def _order_changed(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self._submit(("delete", key, str((old or {}).get("metadata", {}).get("uid", ""))))
        else:
            self._submit(("order", key, ""))

    def _issuer_changed(self, key: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old or {}
        kind = str(obj.get("kind", "Issuer"))
        metadata = obj.get("metadata", {})
        for order_key in self._reconciler.orders_using(
            kind, metadata.get("namespace", ""), metadata.get("name", "")
        ):
            self._submit(("order", order_key, ""))

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        informers = [self.orders, self.issuers, self.cluster_issuers]
        for informer in informers:
            threading.Thread(target=informer.run, name=informer.name, daemon=True).start()
        for informer in informers:
            if not await asyncio.to_thread(informer.wait_synced, SYNC_TIMEOUT_S):
                raise RuntimeError(f"could not list {informer.name}; is the CRD installed?")
        observer = KubernetesOrderObserver(self._api, self._events)
        mirror = Worker(
            self._client,
            task_queue=self._config.bridge_task_queue,
            activities=[ObserverActivities(observer).publish_order_progress],
            activity_executor=ThreadPoolExecutor(max_workers=self._config.mirror_threads),
            max_concurrent_activities=self._config.mirror_threads,
        )
        log.info(
            "bridge running: orders on task queue %s, progress on %s",
            self._config.worker_task_queue,
            self._config.bridge_task_queue,
        )
        async with mirror:
            tasks = [asyncio.create_task(self._drain()) for _ in range(self._config.reconcilers)]
            tasks.append(asyncio.create_task(self._sweep()))
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for informer in informers:
            informer.stop()

    async def _drain(self) -> None:
        while True:
            task = await self._queue.get()
            action, key, uid = task
            try:
                if action == "delete":
                    namespace, name = key.split("/", 1)
                    await self._workflows.cancel(namespace, name, uid)
                    continue
                delay = await self._reconciler.reconcile(key)
            except Exception:
                log.exception("reconciling %s %s failed; retrying", action, key)
                delay = 5.0
            if delay is not None:
                self._queue.add_later(task, delay)

    async def _sweep(self) -> None:
        """Cancel running Order workflows whose Order is gone (deleted while we were down)."""
        while True:
            try:
                for key, uid in await self._workflows.running_orders():
                    obj = self.orders.get(key)
                    if obj is None or obj["metadata"].get("uid") != uid:
                        self._queue.add(("delete", key, uid))
            except Exception:
                log.exception("sweeping order workflows failed")
            await asyncio.sleep(self._config.resync_s)
