"""Mirror an Order workflow's progress into Kubernetes: Challenges, status, Events.

This is the bridge's implementation of the workflow's observer interface. It receives
whole snapshots and converges Kubernetes to them, so a repeated or late snapshot is
harmless; it never talks to the CA.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from acmeflow.contracts.progress import ChallengeProgress, OrderProgress, OrderUpdate
from acmeflow.contracts.states import ChallengeType
from acmeflow.crds.models import GROUP, VERSION, Challenge, Order
from acmeflow.k8s_bridge.challenge_resources import (
    challenge_body,
    challenge_status,
)
from acmeflow.k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.status_writes import write_status

log = logging.getLogger(__name__)


def order_status(progress: OrderProgress) -> dict[str, Any]:
    """The Order's status as the reference system shows it, from the workflow's progress."""
    return {
        "url": progress.url or None,
        "finalizeURL": progress.finalize_url or None,
        "authorizations": [
            {
                "url": a.url,
                "identifier": a.identifier,
                "wildcard": a.wildcard,
                "initialState": a.initial_state or None,
                "challenges": [
                    {
                        "url": c.url,
                        "token": c.token,
                        "type": ChallengeType(c.type).acme_name,
                    }
                    for c in a.challenges
                ],
            }
            for a in progress.authorizations
        ]
        or None,
        "certificate": progress.certificate or None,
        "state": progress.state or None,
        "reason": progress.reason,
        "failureTime": progress.failure_time or None,
    }


def _same_challenge(
    existing: dict[str, Any], progress: ChallengeProgress, order: dict[str, Any]
) -> bool:
    """The resource shows this run's challenge of this Order (same ACME URL and owner)."""
    owners = existing["metadata"].get("ownerReferences") or []
    return existing.get("spec", {}).get("url") == progress.spec.url and any(
        o.get("uid") == order["metadata"]["uid"] for o in owners
    )


class KubernetesOrderObserver:
    """Converges an Order's Challenges, status and Events to a workflow snapshot."""

    def __init__(self, api: KubeApi, events: EventRecorder, orders: Informer | None = None) -> None:
        self._api = api
        self._events = events
        self._orders = orders

    def _order(self, update: OrderUpdate) -> dict[str, Any]:
        """The Order from the bridge's watch cache, else (missing, other UID) from the API."""
        if self._orders is not None:
            cached = self._orders.get(f"{update.namespace}/{update.order_name}")
            if cached is not None and cached["metadata"].get("uid") == update.resource_uid:
                return cached
        return self._api.get(Order.PLURAL, update.namespace, update.order_name)

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
        metadata: dict[str, Any] = order["metadata"]
        if update.resource_uid and metadata.get("uid") != update.resource_uid:
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
            namespace=update.namespace,
            name=update.order_name,
            current=order.get("status"),
            desired=order_status(update.progress),
        )
        for progress in update.progress.challenges:
            existing = challenges.get(progress.spec.name)
            if existing is not None:
                write_status(
                    self._api,
                    plural=Challenge.PLURAL,
                    namespace=update.namespace,
                    name=progress.spec.name,
                    current=existing.get("status"),
                    desired=challenge_status(progress),
                )
        self._record_events(update, str(metadata["uid"]), challenges)

    def _ensure_challenges(
        self, update: OrderUpdate, order: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Every challenge of the snapshot exists as a resource owned by the Order."""
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
            if current is not None and _same_challenge(current, progress, order):
                continue
            if current is not None and not self._remove_stale(current):
                continue
            body = challenge_body(
                progress,
                order_name=update.order_name,
                order_uid=order["metadata"]["uid"],
                issuer_ref=order["spec"]["issuerRef"],
            )
            try:
                existing[progress.spec.name] = self._api.create(
                    Challenge.PLURAL, update.namespace, body
                )
            except ApiException as error:
                if error.status != 409:
                    raise
                existing[progress.spec.name] = self._api.get(
                    Challenge.PLURAL, update.namespace, progress.spec.name
                )
        return existing

    def _challenge(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._api.get(Challenge.PLURAL, namespace, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _remove_stale(self, challenge: dict[str, Any]) -> bool:
        """Delete a Challenge left by an earlier run (a reset workflow, a deleted namesake
        Order): its spec is immutable and names the old token. False if not allowed."""
        metadata = challenge["metadata"]
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=metadata["uid"]))
        try:
            self._api.custom.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                metadata["namespace"],
                Challenge.PLURAL,
                metadata["name"],
                body=options,
            )
        except ApiException as error:
            if error.status == 403:
                log.warning(
                    "Challenge %s/%s is from an earlier run but the bridge may not delete it; "
                    "grant it delete on challenges",
                    metadata["namespace"],
                    metadata["name"],
                )
                return False
            if error.status not in (404, 409):  # gone already, or replaced meanwhile
                raise
        log.info(
            "replacing Challenge %s/%s of an earlier run", metadata["namespace"], metadata["name"]
        )
        return True

    def _record_events(
        self, update: OrderUpdate, order_uid: str, challenges: dict[str, dict[str, Any]]
    ) -> None:
        for event in update.progress.events:
            if event.kind == Order.KIND:
                uid = order_uid
            else:
                challenge = challenges.get(event.object_name)
                if challenge is None:
                    continue
                uid = challenge["metadata"]["uid"]
            involved = InvolvedObject(
                kind=event.kind, namespace=update.namespace, name=event.object_name, uid=uid
            )
            self._events.record(involved, event)
