"""Mirror an Order workflow's progress into Kubernetes: Challenges, status, Events.

This is the bridge's implementation of the workflow's observer interface. It receives
whole snapshots and converges Kubernetes to them, so a repeated or late snapshot is
harmless; it never talks to the CA.

A valid Challenge whose record or route is withdrawn (``ChallengeProgress.done``) is
deleted, as cert-manager deletes a final Order's Challenges, and never created again by a
later or repeated snapshot, a bridge restart included: the Order's status, its Events and
the workflow's history keep its story. A failed Challenge stays for ``kubectl describe``
until its Order goes, which takes it along (the Order owns it).
"""

from __future__ import annotations

import logging

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from acmeflow.contracts.progress import (
    AuthorizationProgress,
    ChallengeProgress,
    ObjectKind,
    OrderProgress,
    OrderUpdate,
)
from acmeflow.contracts.states import AuthorizationStatus, ChallengeType, OrderState
from acmeflow.crds.models import (
    GROUP,
    VERSION,
    AcmeAuthorization,
    AcmeChallengeRef,
    Challenge,
    Order,
    OrderStatus,
)
from acmeflow.k8s_bridge.challenge_resources import challenge_resource, challenge_status
from acmeflow.k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.status_writes import write_status
from acmeflow.k8s_bridge.timestamps import timestamp

log = logging.getLogger(__name__)


def _authorization(authorization: AuthorizationProgress) -> AcmeAuthorization:
    return AcmeAuthorization(
        url=authorization.url,
        identifier=authorization.identifier,
        wildcard=authorization.wildcard,
        initial_state=(
            AuthorizationStatus(authorization.initial_state)
            if authorization.initial_state
            else None
        ),
        challenges=[
            AcmeChallengeRef(url=c.url, token=c.token, type=ChallengeType(c.type).acme_name)
            for c in authorization.challenges
        ],
    )


def order_status(progress: OrderProgress) -> OrderStatus:
    """The Order's status as the reference system shows it, from the workflow's progress.

    Every field is set (None clears it), so the Order shows exactly this snapshot.
    """
    return OrderStatus(
        url=progress.url or None,
        finalize_url=progress.finalize_url or None,
        authorizations=[_authorization(a) for a in progress.authorizations] or None,
        certificate=progress.certificate or None,
        state=OrderState(progress.state) if progress.state else None,
        reason=progress.reason,
        failure_time=timestamp(progress.failure_time),
    )


def _same_challenge(existing: Challenge, progress: ChallengeProgress, order: Order) -> bool:
    """The resource shows this run's challenge of this Order (same ACME URL and owner)."""
    owners = existing.metadata.owner_references or []
    return existing.spec.url == progress.spec.url and any(
        o.uid == order.metadata.uid for o in owners
    )


class KubernetesOrderObserver:
    """Converges an Order's Challenges, status and Events to a workflow snapshot."""

    def __init__(self, api: KubeApi, events: EventRecorder, orders: Informer | None = None) -> None:
        self._api = api
        self._events = events
        self._orders = orders

    def _order(self, update: OrderUpdate) -> Order:
        """The Order from the bridge's watch cache, else (missing, other UID) from the API."""
        if self._orders is not None:
            cached = self._orders.get(f"{update.namespace}/{update.order_name}")
            if cached is not None and cached["metadata"].get("uid") == update.resource_uid:
                return Order.model_validate(cached)
        return Order.model_validate(
            self._api.get(Order.PLURAL, update.namespace, update.order_name)
        )

    def publish(self, update: OrderUpdate) -> None:
        try:
            order = self._order(update)
        except ApiException as error:
            if error.status == 404:
                log.info(
                    "Order %s/%s is gone; ignoring its progress",
                    update.namespace,
                    update.order_name,
                )
                return
            raise
        if update.resource_uid and order.metadata.uid != update.resource_uid:
            log.info(
                "Order %s/%s was recreated; ignoring the old workflow's progress",
                update.namespace,
                update.order_name,
            )
            return
        challenges = self._ensure_challenges(update, order)
        write_status(
            self._api,
            plural=Order.PLURAL,
            metadata=order.metadata,
            current=order.status,
            desired=order_status(update.progress),
        )
        for progress in update.progress.challenges:
            existing = challenges.get(progress.spec.name)
            if existing is not None and not progress.done:  # a done one is deleted below
                write_status(
                    self._api,
                    plural=Challenge.PLURAL,
                    metadata=existing.metadata,
                    current=existing.status,
                    desired=challenge_status(progress),
                )
        self._record_events(update, order.metadata.uid or "", challenges)
        for progress in update.progress.challenges:
            done = challenges.get(progress.spec.name)
            if progress.done and done is not None and _same_challenge(done, progress, order):
                self._delete(done, why="valid and cleaned up")

    def _ensure_challenges(self, update: OrderUpdate, order: Order) -> dict[str, Challenge]:
        """Every challenge of the snapshot exists as a resource owned by the Order, but
        those done; a done one still there is returned, so its Events get its UID."""
        wanted = update.progress.challenges
        if not wanted:
            return {}
        # By name, not by listing: a list scans the whole namespace on every snapshot.
        existing = {
            p.spec.name: c
            for p in wanted
            if (c := self._challenge(update.namespace, p.spec.name)) is not None
        }
        for progress in wanted:
            current = existing.get(progress.spec.name)
            if progress.done or (current is not None and _same_challenge(current, progress, order)):
                continue
            if current is not None and not self._delete(current, why="from an earlier run"):
                continue
            body = challenge_resource(progress, order=order).to_api()
            try:
                created = self._api.create(Challenge.PLURAL, update.namespace, body)
            except ApiException as error:
                if error.status != 409:
                    raise
                created = self._api.get(Challenge.PLURAL, update.namespace, progress.spec.name)
            existing[progress.spec.name] = Challenge.model_validate(created)
        return existing

    def _challenge(self, namespace: str, name: str) -> Challenge | None:
        try:
            return Challenge.model_validate(self._api.get(Challenge.PLURAL, namespace, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _delete(self, challenge: Challenge, *, why: str) -> bool:
        """Delete a Challenge that is done, or left by an earlier run (a reset workflow, a
        deleted namesake Order: its spec is immutable and names the old token). False if
        the bridge may not."""
        metadata = challenge.metadata
        namespace = metadata.namespace or ""
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=metadata.uid))
        try:
            self._api.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, Challenge.PLURAL, metadata.name, body=options
            )
        except ApiException as error:
            if error.status == 403:
                log.warning(
                    "Challenge %s/%s is %s but the bridge may not delete it; "
                    "grant it delete on challenges",
                    namespace,
                    metadata.name,
                    why,
                )
                return False
            if error.status not in (404, 409):  # gone already, or replaced meanwhile
                raise
        log.info("deleted Challenge %s/%s: %s", namespace, metadata.name, why)
        return True

    def _record_events(
        self, update: OrderUpdate, order_uid: str, challenges: dict[str, Challenge]
    ) -> None:
        done = {p.spec.name for p in update.progress.challenges if p.done}
        for event in update.progress.events:
            if event.kind == ObjectKind.ORDER:
                uid = order_uid
            elif (challenge := challenges.get(event.object_name)) is not None:
                uid = challenge.metadata.uid or ""
            elif event.object_name in done:
                uid = ""  # deleted (or never seen) for being done: the Event still tells it
            else:
                continue
            involved = InvolvedObject(
                kind=event.kind, namespace=update.namespace, name=event.object_name, uid=uid
            )
            self._events.record(involved, event)
