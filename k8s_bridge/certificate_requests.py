"""acmeflow as a cert-manager external issuer: one CertificateRequest, level-triggered.

A request whose ``issuerRef`` is ``{group: acmeflow.io, kind: Issuer | ClusterIssuer}`` is
signed through an acmeflow Order: created once, owned by the request (so deleting the
request deletes the Order, whose deletion cancels its workflow and cleans up), and named
from the request and its CSR, so a repeat or a restart finds the same Order. The Order runs
the OrderWorkflow like any other; this reconciler only copies its ending into the request.
Requests of other issuers are never written to. A request is signed only once approved,
and never again once it is Ready or has failed (cert-manager makes a new request instead).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from cryptography import x509
from kubernetes.client.exceptions import ApiException

from acmeflow.contracts.progress import EventReason, EventType, ObjectKind, OrderEvent
from acmeflow.contracts.states import OrderState
from acmeflow.crds.cert_manager import (
    CERT_MANAGER_API_VERSION,
    CERT_MANAGER_GROUP,
    CERT_MANAGER_VERSION,
    DENIED,
    REVISION_ANNOTATION,
    CertificateRequest,
    CertificateRequestStatus,
)
from acmeflow.crds.models import (
    GROUP,
    IssuerRef,
    ObjectMeta,
    Order,
    OrderSpec,
    OwnerReference,
)
from acmeflow.crds.order_requests import common_names, identifiers, order_name
from acmeflow.k8s_bridge import certificate_request_status as request_status
from acmeflow.k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from acmeflow.k8s_bridge.informer import Informer, Obj, OnChange
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.status_writes import write_status
from acmeflow.k8s_bridge.timestamps import now

log = logging.getLogger(__name__)
CONFLICT_RETRY_S = 0.5
"""Another writer changed the request between our read and our write: look again soon."""
NAMESAKE_RETRY_S = 2.0
"""An Order of the same name still belongs to a deleted request: wait for its collection."""
ISSUER_KINDS: dict[str, Literal["Issuer", "ClusterIssuer"]] = {
    "": "Issuer",
    "Issuer": "Issuer",
    "ClusterIssuer": "ClusterIssuer",
}
"""cert-manager reads an empty kind as Issuer."""
FAILED_ORDER_STATES = frozenset({OrderState.INVALID, OrderState.EXPIRED, OrderState.ERRORED})


def signed_here(obj: Obj) -> bool:
    """The request names an acmeflow Issuer or ClusterIssuer (read from the raw object,
    so a request for any other issuer is not even parsed)."""
    ref = obj.get("spec", {}).get("issuerRef") or {}
    return ref.get("group") == GROUP and ref.get("kind", "") in ISSUER_KINDS


def certificate_request_informer(api: KubeApi, on_change: OnChange, *, resync_s: float) -> Informer:
    """CertificateRequests in every namespace; the callback hears only of acmeflow's, and
    the cache keeps just the metadata of the others (csi-driver and istio-csr make many)."""

    def list_requests(**kwargs: Any) -> Any:
        return api.custom.list_cluster_custom_object(
            CERT_MANAGER_GROUP, CERT_MANAGER_VERSION, CertificateRequest.PLURAL, **kwargs
        )

    def ours_only(key: str, old: Obj | None, new: Obj | None) -> None:
        if any(o is not None and signed_here(o) for o in (old, new)):
            on_change(key, old, new)

    return Informer(
        CertificateRequest.PLURAL, list_requests, ours_only, resync_s=resync_s, keep=_kept
    )


def _kept(obj: Obj) -> Obj:
    return obj if signed_here(obj) else {"metadata": obj["metadata"]}


def requesting(order: Obj) -> str | None:
    """The informer key of the CertificateRequest that controls this Order, if one does."""
    metadata = order.get("metadata", {})
    for owner in metadata.get("ownerReferences") or []:
        if (
            owner.get("kind") == CertificateRequest.KIND
            and owner.get("apiVersion") == CERT_MANAGER_API_VERSION
            and owner.get("controller")
        ):
            return f"{metadata.get('namespace', '')}/{owner['name']}"
    return None


@dataclass(frozen=True)
class RequestedCertificate:
    """What the request's CSR asks for."""

    csr_pem: str
    dns_names: list[str]
    ip_addresses: list[str]
    common_name: str


def requested_certificate(request: str) -> RequestedCertificate:
    """``spec.request`` read as cert-manager stores it: base64 of a PEM CSR; ValueError if not."""
    try:
        csr_pem = base64.b64decode(request, validate=True).decode()
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"spec.request is not base64 of a PEM certificate signing request: {error}"
        ) from error
    dns_names, ips = identifiers(csr)
    names = set(dns_names) | set(ips)
    common_name = next((n for n in common_names(csr) if n in names), "")
    return RequestedCertificate(csr_pem, dns_names, ips, common_name)


def order_for(request: CertificateRequest, wanted: RequestedCertificate) -> Order:
    """The acmeflow Order that signs ``request``, controlled by it."""
    metadata = request.metadata
    ref = request.spec.issuer_ref
    revision = (metadata.annotations or {}).get(REVISION_ANNOTATION, "0")
    return Order(
        metadata=ObjectMeta(
            name=order_name(
                metadata.name, wanted.csr_pem, int(revision) if revision.isdigit() else 0
            ),
            namespace=metadata.namespace,
            owner_references=[
                OwnerReference(
                    api_version=CERT_MANAGER_API_VERSION,
                    kind=CertificateRequest.KIND,
                    name=metadata.name,
                    uid=metadata.uid or "",
                    controller=True,
                    block_owner_deletion=True,
                )
            ],
        ),
        spec=OrderSpec(
            request=wanted.csr_pem,
            issuer_ref=IssuerRef(name=ref.name, kind=ISSUER_KINDS[ref.kind]),
            common_name=wanted.common_name or None,
            dns_names=wanted.dns_names,
            ip_addresses=wanted.ip_addresses,
            duration=request.spec.duration or None,
        ),
    )


def owned_by(order: Order, request: CertificateRequest) -> bool:
    return any(
        o.kind == CertificateRequest.KIND and o.uid == request.metadata.uid
        for o in order.metadata.owner_references or []
    )


class CertificateRequestReconciler:
    def __init__(
        self,
        *,
        api: KubeApi,
        requests: Informer,
        orders: Informer,
        events: EventRecorder,
    ) -> None:
        self._api = api
        self._requests = requests
        self._orders = orders
        self._events = events

    async def reconcile(self, key: str) -> float | None:
        """Converge one request; return a delay to look again, or None."""
        obj = self._requests.get(key)
        if obj is None or not signed_here(obj):
            return None
        request = CertificateRequest.model_validate(obj)
        status = request.status or CertificateRequestStatus()
        if request.metadata.deletion_timestamp or request_status.finished(status):
            return None
        generation = request.metadata.generation or 0
        if request_status.holds(status, DENIED):
            return await self._write(
                request, request_status.denied(status, generation=generation, at=now())
            )
        if request_status.approval_pending(status):
            waiting = "Waiting for the CertificateRequest to be approved"
            return await self._write(
                request, request_status.pending(status, message=waiting, generation=generation)
            )
        try:
            order = await self._order(
                request, order_for(request, requested_certificate(request.spec.request))
            )
        except ValueError as error:  # pydantic's ValidationError is one too
            failure = request_status.failed(
                status,
                reason=request_status.FAILED,
                message=str(error),
                generation=generation,
                at=now(),
            )
            return await self._write(request, failure)
        if order is None:
            return NAMESAKE_RETRY_S
        return await self._write(request, self._progress(status, order, generation))

    async def _order(self, request: CertificateRequest, desired: Order) -> Order | None:
        """The request's Order, created if missing; None while a namesake still stands."""
        namespace, name = desired.metadata.namespace or "", desired.metadata.name
        obj = self._orders.get(f"{namespace}/{name}")
        if obj is None:
            obj = await asyncio.to_thread(self._create, namespace, desired)
        order = Order.model_validate(obj)
        if not owned_by(order, request):
            log.info(
                "Order %s/%s belongs to an earlier request; waiting for it to go", namespace, name
            )
            return None
        created = order.metadata.creation_timestamp or now()
        event = OrderEvent(
            seq=0,
            at=created.isoformat(),
            kind=ObjectKind.ORDER,
            object_name=name,
            type=EventType.NORMAL,
            reason=EventReason.ORDER_CREATED,
            message=f'Created Order resource "{name}"',
        )
        involved = InvolvedObject(
            kind=CertificateRequest.KIND,
            namespace=namespace,
            name=request.metadata.name,
            uid=request.metadata.uid or "",
            api_version=CERT_MANAGER_API_VERSION,
        )
        await asyncio.to_thread(self._events.record, involved, event)
        return order

    def _create(self, namespace: str, order: Order) -> Obj:
        """Create the Order, or read the one a racing reconcile created; ValueError if the
        API server refuses it (a CSR naming what no Order may hold, e.g. "My Service")."""
        try:
            return self._api.create(Order.PLURAL, namespace, order.to_api())
        except ApiException as error:
            if error.status == 422:
                raise ValueError(f"the CSR cannot become an Order: {_refusal(error)}") from error
            if error.status != 409:
                raise
        return self._api.get(Order.PLURAL, namespace, order.metadata.name)

    @staticmethod
    def _progress(
        status: CertificateRequestStatus, order: Order, generation: int
    ) -> CertificateRequestStatus:
        """The request's status for where its Order is now."""
        name = order.metadata.name
        progress = order.status
        state = progress.state if progress is not None else None
        reason = (progress.reason if progress is not None else None) or ""
        if state == OrderState.VALID and progress is not None and progress.certificate:
            return request_status.issued(
                status, chain_pem=progress.certificate, order=name, generation=generation
            )
        if state in FAILED_ORDER_STATES:
            return request_status.failed(
                status,
                reason=request_status.FAILED,
                message=f'Order "{name}" is {state}: {reason or "the CA gave no reason"}',
                generation=generation,
                at=(progress.failure_time if progress is not None else None) or now(),
            )
        message = f'Waiting on certificate issuance from Order "{name}" ({state or "pending"})'
        return request_status.pending(
            status, message=message + (f": {reason}" if reason else ""), generation=generation
        )

    async def _write(
        self, request: CertificateRequest, desired: CertificateRequestStatus
    ) -> float | None:
        write = partial(
            write_status,
            self._api,
            plural=CertificateRequest.PLURAL,
            metadata=request.metadata,
            current=request.status,
            desired=desired,
            api_version=CERT_MANAGER_API_VERSION,
            guarded=True,
        )
        try:
            await asyncio.to_thread(write)
        except ApiException as error:
            if error.status == 409:
                return CONFLICT_RETRY_S
            raise
        return None


def _refusal(error: ApiException) -> str:
    """What the API server said, without the HTTP wrapping."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
