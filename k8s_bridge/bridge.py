"""Wiring of the bridge: informers feed a work queue that reconcilers drain; a Temporal
worker (the progress mirrors) writes workflow progress back; a sweep finds workflows whose
resource is gone.

The queue holds one key per resource, ``(kind, informer key)``, so a resource is
reconciled by one reconciler at a time. What the key stands for is read when it is
processed (level-triggered): the informer's current object, and the UIDs of deleted
incarnations whose workflows still have to be cancelled. A watch on acmeflow's TLS Secrets
(by label, ``tls_secrets``) queues the Certificate whose Secret a user changed or deleted.
In external-issuer mode cert-manager's CertificateRequests are watched too
(``certificate_requests``); a change to an Order one of them owns queues that request.
With several replicas only the Lease holder reconciles and mirrors (``leader_election``).
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

from acmeflow.crds.cert_manager import CertificateRequest
from acmeflow.crds.models import GROUP, VERSION, Certificate, ClusterIssuer, Issuer, Order
from acmeflow.k8s_bridge.certificate_reconciler import CertificateReconciler, IssuerReconciler
from acmeflow.k8s_bridge.certificate_requests import (
    CertificateRequestReconciler,
    certificate_request_informer,
    requesting,
)
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.event_recorder import EventRecorder
from acmeflow.k8s_bridge.informer import Informer, Obj, OnChange
from acmeflow.k8s_bridge.issuer_lookup import IssuerLookup
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.leader_election import Leadership, SoleReplica
from acmeflow.k8s_bridge.order_mirror import KubernetesOrderObserver
from acmeflow.k8s_bridge.order_reconciler import OrderReconciler
from acmeflow.k8s_bridge.order_workflows import OrderWorkflows
from acmeflow.k8s_bridge.resource_mirrors import ResourceMirrors
from acmeflow.k8s_bridge.resource_workflows import cancel_if_owned, running_resource_workflows
from acmeflow.k8s_bridge.signalled_workflows import SignalledWorkflows
from acmeflow.k8s_bridge.tls_secrets import (
    TLS_SECRET,
    TlsSecretReconciler,
    certificate_of,
    tls_secret_informer,
    touched,
)
from acmeflow.k8s_bridge.work_queue import ExponentialBackoff, WorkQueue, reconcile_forever
from acmeflow.plumbing.activity_methods import activity_methods
from acmeflow.plumbing.order_observer import ObserverActivities
from acmeflow.workflows.resource_ids import workflow_id

log = logging.getLogger(__name__)
SYNC_TIMEOUT_S = 60.0
Key = tuple[str, str]
"""(kind, informer key) of one resource."""


class Bridge:
    def __init__(self, config: BridgeConfig, api: KubeApi, client: Client) -> None:
        self._config = config
        self._api = api
        self._client = client
        self._queue: WorkQueue[Key] = WorkQueue(
            ExponentialBackoff(first_s=config.retry_first_s, max_s=config.retry_max_s)
        )
        self._gone: dict[Key, set[str]] = {}
        """UIDs of deleted incarnations of a key whose workflows are still to be cancelled."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events = EventRecorder(api)
        self.informers = {
            Order.KIND: self._informer(Order.PLURAL, self._order_changed),
            Certificate.KIND: self._informer(Certificate.PLURAL, self._changed(Certificate.KIND)),
            Issuer.KIND: self._informer(Issuer.PLURAL, self._issuer_changed(Issuer.KIND)),
            ClusterIssuer.KIND: self._informer(
                ClusterIssuer.PLURAL, self._issuer_changed(ClusterIssuer.KIND)
            ),
            TLS_SECRET: tls_secret_informer(
                api.core, self._tls_secret_changed, resync_s=config.resync_s
            ),
        }
        if config.external_issuer:
            self.informers[CertificateRequest.KIND] = certificate_request_informer(
                api, self._request_changed, resync_s=config.resync_s
            )
        self._issuers = IssuerLookup(
            self.informers[Issuer.KIND],
            self.informers[ClusterIssuer.KIND],
            cluster_resource_namespace=config.cluster_resource_namespace,
        )
        self._order_mirror = KubernetesOrderObserver(api, self._events, self.informers[Order.KIND])
        signalled = SignalledWorkflows(client, task_queue=config.worker_task_queue)
        self._signalled = signalled
        self._orders = OrderReconciler(
            api=api,
            config=config,
            workflows=OrderWorkflows(client, task_queue=config.worker_task_queue),
            orders=self.informers[Order.KIND],
            issuers=self._issuers,
            events=self._events,
            mirror=self._order_mirror,
        )
        self._certificates = CertificateReconciler(
            api=api,
            config=config,
            certificates=self.informers[Certificate.KIND],
            issuers=self._issuers,
            workflows=signalled,
            events=self._events,
        )
        self._tls_secrets = TlsSecretReconciler(
            certificates=self.informers[Certificate.KIND], workflows=signalled
        )
        self._requests = (
            CertificateRequestReconciler(
                api=api,
                requests=self.informers[CertificateRequest.KIND],
                orders=self.informers[Order.KIND],
                events=self._events,
            )
            if config.external_issuer
            else None
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

    def _submit(self, key: Key, gone_uid: str = "") -> None:
        """From an informer's thread: queue ``key`` on the bridge's event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._enqueue, key, gone_uid)

    def _enqueue(self, key: Key, gone_uid: str = "") -> None:
        if gone_uid:
            self._gone.setdefault(key, set()).add(gone_uid)
        self._queue.add(key)

    def _changed(self, kind: str) -> OnChange:
        def on_change(key: str, old: Obj | None, new: Obj | None) -> None:
            gone_uid = ""
            if new is None and old is not None:
                gone_uid = str(old.get("metadata", {}).get("uid") or "")
            self._submit((kind, key), gone_uid)

        return on_change

    def _order_changed(self, key: str, old: Obj | None, new: Obj | None) -> None:
        """An Order's change; one a CertificateRequest controls requeues that request too."""
        self._changed(Order.KIND)(key, old, new)
        if self._config.external_issuer:
            request = requesting(new or old or {})
            if request is not None:
                self._submit((CertificateRequest.KIND, request))

    def _request_changed(self, key: str, old: Obj | None, new: Obj | None) -> None:
        """Nothing to cancel when a request goes: its Order is collected, which cancels."""
        if new is not None:
            self._submit((CertificateRequest.KIND, key))

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
                    self._submit((users, user))

        return on_change

    def _tls_secret_changed(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if touched(old, new):
            certificate = certificate_of(new or old or {}, self.informers[Certificate.KIND])
            if certificate is not None:
                self._submit((TLS_SECRET, certificate))

    async def run(self, stop: asyncio.Event, leadership: Leadership | None = None) -> None:
        """Informers always (a standby keeps its cache warm); reconcilers, the sweep and the
        progress mirrors only while ``leadership`` leads, handed over once they stopped."""
        leadership = leadership or SoleReplica()
        self._loop = asyncio.get_running_loop()
        for informer in self.informers.values():
            threading.Thread(target=informer.run, name=informer.name, daemon=True).start()
        try:
            for informer in self.informers.values():
                if not await asyncio.to_thread(informer.wait_synced, SYNC_TIMEOUT_S):
                    raise RuntimeError(
                        f"could not list {informer.name}; is the CRD installed, "
                        "and may the bridge list and watch them?"
                    )
            if not await leadership.acquire(stop):
                return
            await self._lead(stop, leadership)
        finally:
            for informer in self.informers.values():
                informer.stop()
        await leadership.release()

    async def _lead(self, stop: asyncio.Event, leadership: Leadership) -> None:
        mirrors = [
            ObserverActivities(self._order_mirror),
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
            tasks = [
                asyncio.create_task(reconcile_forever(self._queue, self._process))
                for _ in range(self._config.reconcilers)
            ]
            tasks.append(asyncio.create_task(self._sweep()))
            try:
                await leadership.lead(stop)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _reconciler(self, kind: str) -> Callable[[str], Awaitable[float | None]]:
        if kind == Order.KIND:
            return self._orders.reconcile
        if kind == Certificate.KIND:
            return self._certificates.reconcile
        if kind == TLS_SECRET:
            return self._tls_secrets.reconcile
        if kind == CertificateRequest.KIND and self._requests is not None:
            return self._requests.reconcile
        return partial(self._issuer_accounts.reconcile, kind)

    async def _process(self, item: Key) -> float | None:
        """Cancel the workflows of deleted incarnations, then reconcile what exists now."""
        kind, key = item
        gone = self._gone.get(item, set())
        if gone:
            namespace, _, name = key.rpartition("/")
            wid = workflow_id(kind, namespace, name)
            self._signalled.forget(wid)
            for uid in sorted(gone):
                await cancel_if_owned(self._client, wid, uid)
                gone.discard(uid)
            if not gone:
                self._gone.pop(item, None)
        return await self._reconciler(kind)(key)

    async def _sweep(self) -> None:
        """Cancel running workflows whose resource is gone (deleted while we were down)."""
        while True:
            try:
                for _, kind, key, uid in await running_resource_workflows(self._client):
                    obj = self.informers[kind].get(key)
                    if obj is None or obj["metadata"].get("uid") != uid:
                        self._enqueue((kind, key), uid)
            except Exception:
                log.exception("sweeping resource workflows failed")
            await asyncio.sleep(self._config.resync_s)
