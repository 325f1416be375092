"""Wiring of the bridge: informers feed a work queue; reconcilers and a Temporal worker
(the progress mirrors) drain it; a sweep cancels workflows whose resource is gone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from temporalio.client import Client
from temporalio.worker import Worker

from acmeflow.activities.order_observer import ObserverActivities
from acmeflow.crds.models import GROUP, VERSION, Certificate, ClusterIssuer, Issuer, Order
from acmeflow.k8s_bridge.certificate_reconciler import CertificateReconciler, IssuerReconciler
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.event_recorder import EventRecorder
from acmeflow.k8s_bridge.informer import Informer, Obj, OnChange
from acmeflow.k8s_bridge.issuer_lookup import IssuerLookup
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.order_mirror import KubernetesOrderObserver
from acmeflow.k8s_bridge.order_reconciler import OrderReconciler
from acmeflow.k8s_bridge.order_workflows import OrderWorkflows
from acmeflow.k8s_bridge.resource_mirrors import ResourceMirrors
from acmeflow.k8s_bridge.resource_workflows import cancel_if_owned, running_resource_workflows
from acmeflow.k8s_bridge.signalled_workflows import SignalledWorkflows
from acmeflow.k8s_bridge.work_queue import WorkQueue
from acmeflow.worker.build import activity_methods
from acmeflow.workflows.resource_ids import workflow_id

log = logging.getLogger(__name__)
SYNC_TIMEOUT_S = 60.0
RETRY_S = 5.0
Task = tuple[str, str, str]
"""(kind, informer key, uid): uid is set for a deleted resource, empty otherwise."""


class Bridge:
    def __init__(self, config: BridgeConfig, api: KubeApi, client: Client) -> None:
        self._config = config
        self._api = api
        self._client = client
        self._queue: WorkQueue[Task] = WorkQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events = EventRecorder(api)
        self.informers = {
            Order.KIND: self._informer(Order.PLURAL, self._changed(Order.KIND)),
            Certificate.KIND: self._informer(Certificate.PLURAL, self._changed(Certificate.KIND)),
            Issuer.KIND: self._informer(Issuer.PLURAL, self._issuer_changed(Issuer.KIND)),
            ClusterIssuer.KIND: self._informer(
                ClusterIssuer.PLURAL, self._issuer_changed(ClusterIssuer.KIND)
            ),
        }
        self._issuers = IssuerLookup(
            self.informers[Issuer.KIND],
            self.informers[ClusterIssuer.KIND],
            cluster_resource_namespace=config.cluster_resource_namespace,
        )
        signalled = SignalledWorkflows(client, task_queue=config.worker_task_queue)
        self._signalled = signalled
        self._orders = OrderReconciler(
            api=api,
            config=config,
            workflows=OrderWorkflows(client, task_queue=config.worker_task_queue),
            orders=self.informers[Order.KIND],
            issuers=self._issuers,
            events=self._events,
        )
        self._certificates = CertificateReconciler(
            api=api,
            config=config,
            certificates=self.informers[Certificate.KIND],
            issuers=self._issuers,
            workflows=signalled,
        )
        self._issuer_accounts = IssuerReconciler(
            api=api,
            config=config,
            issuers=self.informers[Issuer.KIND],
            cluster_issuers=self.informers[ClusterIssuer.KIND],
            workflows=signalled,
        )

    def _informer(self, plural: str, on_change: OnChange) -> Informer:
        lister = partial(self._api.custom.list_cluster_custom_object, GROUP, VERSION, plural)
        return Informer(plural, lister, on_change, resync_s=self._config.resync_s)

    def _submit(self, task: Task) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.add, task)

    def _changed(self, kind: str) -> OnChange:
        def on_change(key: str, old: Obj | None, new: Obj | None) -> None:
            uid = "" if new is not None else str((old or {}).get("metadata", {}).get("uid", ""))
            self._submit((kind, key, uid))

        return on_change

    def _issuer_changed(self, kind: str) -> OnChange:
        own = self._changed(kind)

        def on_change(key: str, old: Obj | None, new: Obj | None) -> None:
            own(key, old, new)
            metadata = (new or old or {}).get("metadata", {})
            for users in (Order.KIND, Certificate.KIND):
                for user in self._issuers.users_of(
                    self.informers[users],
                    kind,
                    metadata.get("namespace", ""),
                    metadata.get("name", ""),
                ):
                    self._submit((users, user, ""))

        return on_change

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        for informer in self.informers.values():
            threading.Thread(target=informer.run, name=informer.name, daemon=True).start()
        for informer in self.informers.values():
            if not await asyncio.to_thread(informer.wait_synced, SYNC_TIMEOUT_S):
                raise RuntimeError(f"could not list {informer.name}; is the CRD installed?")
        mirrors = [
            ObserverActivities(
                KubernetesOrderObserver(self._api, self._events, self.informers[Order.KIND])
            ),
            ResourceMirrors(self._api, self._events),
        ]
        mirror = Worker(
            self._client,
            task_queue=self._config.bridge_task_queue,
            activities=activity_methods(*mirrors),
            activity_executor=ThreadPoolExecutor(max_workers=self._config.mirror_threads),
            max_concurrent_activities=self._config.mirror_threads,
        )
        log.info(
            "bridge running: workflows on task queue %s, progress on %s",
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
        for informer in self.informers.values():
            informer.stop()

    def _reconciler(self, kind: str) -> Callable[[str], Awaitable[float | None]]:
        if kind == Order.KIND:
            return self._orders.reconcile
        if kind == Certificate.KIND:
            return self._certificates.reconcile
        return partial(self._issuer_accounts.reconcile, kind)

    async def _drain(self) -> None:
        while True:
            task = await self._queue.get()
            kind, key, uid = task
            try:
                if uid:
                    namespace, _, name = key.rpartition("/")
                    wid = workflow_id(kind, namespace, name)
                    self._signalled.forget(wid)
                    await cancel_if_owned(self._client, wid, uid)
                    continue
                delay = await self._reconciler(kind)(key)
            except Exception:
                log.exception("reconciling %s %s failed; retrying in %.0fs", kind, key, RETRY_S)
                delay = RETRY_S
            if delay is not None:
                self._queue.add_later(task, delay)

    async def _sweep(self) -> None:
        """Cancel running workflows whose resource is gone (deleted while we were down)."""
        while True:
            try:
                for _, kind, key, uid in await running_resource_workflows(self._client):
                    obj = self.informers[kind].get(key)
                    if obj is None or obj["metadata"].get("uid") != uid:
                        self._queue.add((kind, key, uid))
            except Exception:
                log.exception("sweeping resource workflows failed")
            await asyncio.sleep(self._config.resync_s)
