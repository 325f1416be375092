"""An Order resource and its issuer, as the input of its workflow."""

from __future__ import annotations

from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.contracts.names import RequestedNames
from acmeflow.crds.models import Certificate, Order
from acmeflow.workflows.order import OrderInput


def certificate_owner(order: Order) -> str:
    for owner in order.metadata.owner_references or []:
        if owner.kind == Certificate.KIND:
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
