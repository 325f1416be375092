"""An Order resource and its issuer, as the input of its workflow."""

from __future__ import annotations

from activities.csr import RequestedNames
from activities.issuer_config import IssuerConfig
from k8s_bridge.crd_models import Order
from workflows.order import OrderInput

WORKFLOW_ID_PREFIX = "order"


def order_workflow_id(namespace: str, name: str) -> str:
    """Readable and stable: a repeat, a restart or another bridge finds the same workflow."""
    return f"{WORKFLOW_ID_PREFIX}/{namespace}/{name}"


def order_key_of(workflow_id: str) -> str | None:
    """``namespace/name`` of a Kubernetes Order's workflow id, None for other workflows."""
    parts = workflow_id.split("/")
    if len(parts) != 3 or parts[0] != WORKFLOW_ID_PREFIX:
        return None
    return f"{parts[1]}/{parts[2]}"


def certificate_owner(order: Order) -> str:
    for owner in order.metadata.owner_references or []:
        if owner.kind == "Certificate":
            return owner.name
    return ""


def order_input(order: Order, issuer: IssuerConfig, *, observer_task_queue: str) -> OrderInput:
    spec = order.spec
    return OrderInput(
        order_name=order.metadata.name,
        namespace=order.metadata.namespace or "",
        issuer=issuer,
        request=spec.request,
        names=RequestedNames(
            common_name=spec.common_name or "",
            dns_names=list(spec.dns_names),
            ip_addresses=list(spec.ip_addresses),
        ),
        certificate_name=certificate_owner(order),
        labels=dict(order.metadata.labels or {}),
        observer_task_queue=observer_task_queue,
        resource_uid=order.metadata.uid or "",
    )
