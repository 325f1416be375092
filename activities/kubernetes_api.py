"""What a failed Kubernetes API call means to an activity.

Activities that write to the cluster (Secrets, HTTP-01 routes) translate failures here, so
the workflow sees the same taxonomy as for ACME (``acmeflow.activities.errors``)::

    404 Not Found, 409 Conflict   the caller decides (absent object, lost race)
    403 Forbidden                 BadRequest, non-retryable: names the missing RBAC rule
                                  (or says the namespace is being deleted)
    400 Bad Request, 422 Invalid  BadRequest, non-retryable: the object we sent is wrong
    anything else                 KubernetesUnavailable, retryable: 5xx, 429, 401 (a token
                                  being rotated), timeouts, refused connections
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError
from urllib3.exceptions import HTTPError

from acmeflow.activities.errors import bad_request
from acmeflow.crds.models import OwnerReference

KUBERNETES_UNAVAILABLE: Final = "KubernetesUnavailable"
MANAGED_LABEL: Final = "acmeflow.io/managed"
"""Label on every object acmeflow creates in the cluster."""

MERGE_PATCH: Final = "application/merge-patch+json"
"""RFC 7386 merge patch: maps merge, lists and scalars are replaced; a resourceVersion in it
is a precondition."""

OPAQUE_SECRET_TYPE: Final = "Opaque"

REQUEST_TIMEOUT: Final = (3.0, 6.0)
"""(connect, read) seconds for one API call, so a stalled API server becomes a retryable
error that says so, well before the activity's own timeout (10 s for an Order's steps)."""

KUBERNETES_ERRORS: Final = (ApiException, HTTPError, OSError)
"""What a call through the ``kubernetes`` client raises when the API server says no or is away."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Permission:
    """The RBAC rule a call needs, to name it when the API server says 403."""

    verb: str
    resource: str
    namespace: str
    group: str = ""

    def describe(self) -> str:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        return f'verb "{self.verb}" on "{resource}" in namespace "{self.namespace}"'


def core_owner_reference(owner: OwnerReference) -> client.V1OwnerReference:
    """An owner reference as the ``kubernetes`` client's models take it."""
    return client.V1OwnerReference.model_validate(owner.model_dump())


def managed_secret(
    *,
    name: str,
    namespace: str,
    data: dict[str, str],
    secret_type: str = OPAQUE_SECRET_TYPE,
    annotations: dict[str, str] | None = None,
    owner: client.V1OwnerReference | None = None,
) -> client.V1Secret:
    """A Secret acmeflow creates: labelled as managed, owned by ``owner`` if given."""
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        type=secret_type,
        metadata=client.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={MANAGED_LABEL: "true"},
            annotations=annotations,
            owner_references=[owner] if owner else None,
        ),
        data=data,
    )


def status_of(error: BaseException) -> int | None:
    """The HTTP status of a failed API call; None when the server was not reached."""
    status = getattr(error, "status", None) if isinstance(error, ApiException) else None
    return status if isinstance(status, int) else None


def server_message(error: BaseException) -> str:
    """The API server's own words (``Status.message``), else the exception text."""
    if isinstance(error, ApiException):
        try:
            message = json.loads(error.body or "").get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message or error.reason or f"HTTP {error.status}")
    return str(error) or type(error).__name__


def api_failure(error: BaseException, *, action: str, permission: Permission) -> ApplicationError:
    """The taxonomy's error for a failed call made while doing ``action``."""
    status = status_of(error)
    said = server_message(error)
    if status == 403 and "being terminated" in said:
        return bad_request(f"{action}: the namespace is being deleted ({said})")
    if status == 403:
        return bad_request(
            f"{action}: forbidden; grant the worker's service account the RBAC "
            f"{permission.describe()} (the API server said: {said})"
        )
    if status in (400, 422):
        return bad_request(f"{action}: the API server refused the object: {said}")
    if status is None:
        said = f"Kubernetes API unreachable: {said}"
    return ApplicationError(f"{action}: {said}", type=KUBERNETES_UNAVAILABLE)


def call_api(call: Callable[[], _T], *, action: str, permission: Permission) -> _T:
    """One API call made while doing ``action``; a failure comes out in the taxonomy."""
    try:
        return call()
    except KUBERNETES_ERRORS as error:
        raise api_failure(error, action=action, permission=permission) from error


def call_api_or_none(
    call: Callable[[], _T], *, none_on: Collection[int], action: str, permission: Permission
) -> _T | None:
    """Like ``call_api``, but None when the server answers a status of ``none_on``.

    404 means the object is gone (read, patch, delete); 409 that it is already there (create)
    or changed since it was read (a resourceVersion precondition).
    """
    try:
        return call()
    except KUBERNETES_ERRORS as error:
        if status_of(error) in none_on:
            return None
        raise api_failure(error, action=action, permission=permission) from error
