"""Status is written through one function: a merge patch of what changed, on the status
subresource, and only when something did.

The desired status is a model (``acmeflow.crds.models``) of the fields this writer owns: a
field it sets to None is cleared, a field it leaves unset is left alone. The patch
compares wire forms of the status the bridge read (parsed by the same model) and the one it
wants, so an unchanged status costs no API call. A 404 means the object is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from acmeflow.crds.models import API_VERSION, CrdModel, ObjectMeta
from acmeflow.k8s_bridge.kube_api import KubeApi

Status = TypeVar("Status", bound=CrdModel)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def merge_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that makes ``desired``'s keys true of ``current``.

    Objects are compared key by key; lists and scalars as wholes (a merge patch replaces
    a list). None in ``desired`` deletes the key. Empty when nothing would change.
    """
    patch: dict[str, Any] = {}
    for key, want in desired.items():
        have = current.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            if nested := merge_patch(have, want):
                patch[key] = nested
        elif isinstance(want, list):
            if (listed := _without_none(want)) != have:
                patch[key] = listed
        elif want != have:
            patch[key] = want
    return patch


def status_patch(current: Status | None, desired: Status) -> dict[str, Any]:
    """The merge patch from ``current`` to the fields ``desired`` sets."""
    have = current.to_api() if current is not None else {}
    return merge_patch(have, desired.model_dump(mode="json", by_alias=True, exclude_unset=True))


def write_status(
    api: KubeApi,
    *,
    plural: str,
    metadata: ObjectMeta,
    current: Status | None,
    desired: Status,
    api_version: str = API_VERSION,
    guarded: bool = False,
) -> bool:
    """Patch the status subresource if anything changed; False when unchanged or gone.

    ``guarded`` sends the resourceVersion read, so the API server refuses the patch (409)
    if another writer changed the object since: for a status whose lists other
    controllers write too (an approver's conditions beside ours).
    """
    patch = status_patch(current, desired)
    if not patch:
        return False
    body: dict[str, Any] = {"status": patch}
    if guarded:
        body["metadata"] = {"resourceVersion": metadata.resource_version}
    try:
        api.patch_status(
            plural, metadata.namespace or "", metadata.name, body, api_version=api_version
        )
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
