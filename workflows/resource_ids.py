"""Workflow ids derived from Kubernetes resources: readable, stable, one per resource.

A repeat, a restart or a second bridge computes the same id, so starting twice is
harmless. The resource's UID goes into the workflow memo under ``UID_MEMO`` so a
workflow left by a deleted namesake is told apart from the current resource's.
"""

from __future__ import annotations

UID_MEMO = "resourceUID"
PREFIXES = {
    "Order": "order",
    "Certificate": "certificate",
    "Issuer": "issuer",
    "ClusterIssuer": "clusterissuer",
}
_KINDS = {prefix: kind for kind, prefix in PREFIXES.items()}


def workflow_id(kind: str, namespace: str, name: str) -> str:
    """``order/<ns>/<name>``, ``certificate/<ns>/<name>``, ``clusterissuer/<name>`` ..."""
    prefix = PREFIXES[kind]
    return f"{prefix}/{name}" if kind == "ClusterIssuer" else f"{prefix}/{namespace}/{name}"


def order_workflow_id(namespace: str, name: str) -> str:
    return workflow_id("Order", namespace, name)


def resource_of(workflow_id_: str) -> tuple[str, str] | None:
    """(kind, informer key) of a resource's workflow id; None for other workflows."""
    prefix, _, rest = workflow_id_.partition("/")
    kind = _KINDS.get(prefix)
    if kind is None or not rest:
        return None
    parts = rest.split("/")
    if len(parts) != (1 if kind == "ClusterIssuer" else 2):
        return None
    return kind, rest
