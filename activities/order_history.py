"""A Certificate's old Orders, pruned to its ``revisionHistoryLimit``.

cert-manager keeps a Certificate's newest CertificateRequests (by revision) and deletes
the rest; acmeflow does the same with Orders, whose Challenges go with them (the Order
owns them). Idempotent: a retry lists again and finds fewer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from kubernetes import client
from temporalio import activity

from acmeflow.activities.certificate_steps import CERTIFICATE_LABEL, REVISION_ANNOTATION
from acmeflow.activities.kubernetes_api import (
    REQUEST_TIMEOUT,
    Permission,
    call_api,
    call_api_or_none,
)
from acmeflow.activities.tls_secret_contents import certificate_label
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.order_history import PrunedOrders, PruneOrdersRequest
from acmeflow.contracts.states import FINAL_ORDER_STATES
from acmeflow.crds import models as crd

_EPOCH = datetime.min.replace(tzinfo=UTC)


def _revision(order: crd.Order) -> int:
    """The revision annotation; 0 for an Order from before it (oldest first)."""
    value = (order.metadata.annotations or {}).get(REVISION_ANNOTATION, "")
    return int(value) if value.isdigit() else 0


def _newest_first(order: crd.Order) -> tuple[int, datetime, str]:
    """By revision, then by age: the failed attempts of one revision share its number."""
    return (_revision(order), order.metadata.creation_timestamp or _EPOCH, order.metadata.name)


def orders_to_prune(
    orders: Iterable[crd.Order], *, certificate_uid: str, keep: int, current: str
) -> list[crd.Order]:
    """The Certificate's Orders beyond the newest ``keep``; never ``current``, nor one not
    final (an Order in progress is the workflow's, and a final one the story of a past one)."""
    owned = [
        order
        for order in orders
        if any(o.uid == certificate_uid for o in order.metadata.owner_references or [])
    ]
    owned.sort(key=_newest_first, reverse=True)
    return [
        order
        for order in owned[max(keep, 1) :]
        if order.metadata.name != current
        and order.status is not None
        and order.status.state in FINAL_ORDER_STATES
    ]


class OrderHistoryActivities:
    """Prunes Certificates' Orders; one instance per worker."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)

    @activity.defn(name=ActivityName.PRUNE_ORDERS)
    def prune_orders(self, request: PruneOrdersRequest) -> PrunedOrders:
        """Delete the Orders beyond the limit, each only if it is still the one listed."""
        ref = request.certificate
        where = (crd.GROUP, crd.VERSION, ref.namespace, crd.Order.PLURAL)
        listed = call_api(
            lambda: self._custom.list_namespaced_custom_object(
                *where,
                label_selector=f"{CERTIFICATE_LABEL}={certificate_label(ref.name)}",
                _request_timeout=REQUEST_TIMEOUT,
            ),
            action=f"list the Orders of Certificate {ref.name}",
            permission=Permission("list", crd.Order.PLURAL, ref.namespace, crd.GROUP),
        )
        orders = [crd.Order.model_validate(item) for item in listed.get("items", [])]
        doomed = orders_to_prune(
            orders, certificate_uid=ref.uid, keep=request.keep, current=request.current_order
        )
        for order in doomed:
            self._delete(order)
        deleted = [order.metadata.name for order in doomed]
        if deleted:
            activity.logger.info("Certificate %s: pruned Orders %s", ref.name, deleted)
        return PrunedOrders(deleted=deleted)

    def _delete(self, order: crd.Order) -> None:
        """Delete ``order`` if it is still the one listed; its Challenges follow it."""
        namespace, name = order.metadata.namespace or "", order.metadata.name
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=order.metadata.uid),
            propagation_policy="Background",
        )
        call_api_or_none(
            lambda: self._custom.delete_namespaced_custom_object(
                crd.GROUP,
                crd.VERSION,
                namespace,
                crd.Order.PLURAL,
                name,
                body=options,
                _request_timeout=REQUEST_TIMEOUT,
            ),
            none_on=(404, 409),  # gone already, or a namesake meanwhile
            action=f"delete Order {name}",
            permission=Permission("delete", crd.Order.PLURAL, namespace, crd.GROUP),
        )
