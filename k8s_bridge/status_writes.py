"""Status is written through one function, as a merge patch, and only when it changed."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from acmeflow.k8s_bridge.kube_api import KubeApi


def status_changes(current: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``desired`` that differ from ``current`` (None clears a field)."""
    current = current or {}
    return {key: value for key, value in desired.items() if current.get(key) != value}


def write_status(
    api: KubeApi,
    *,
    plural: str,
    namespace: str,
    name: str,
    current: dict[str, Any] | None,
    desired: dict[str, Any],
) -> bool:
    """Patch the status subresource if anything changed; False when unchanged or gone."""
    changes = status_changes(current, desired)
    if not changes:
        return False
    try:
        api.patch_status(plural, namespace, name, {"status": changes})
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
