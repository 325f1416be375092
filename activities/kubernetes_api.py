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
from dataclasses import dataclass
from typing import Final

from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError
from urllib3.exceptions import HTTPError

from acmeflow.activities.errors import bad_request

KUBERNETES_UNAVAILABLE: Final = "KubernetesUnavailable"
MANAGED_LABEL: Final = "acmeflow.io/managed"
"""Label on every object acmeflow creates in the cluster."""

REQUEST_TIMEOUT: Final = (5.0, 20.0)
"""(connect, read) seconds for one API call, so a stalled API server becomes a retryable
error that says so, well before the activity's own timeout."""

KUBERNETES_ERRORS: Final = (ApiException, HTTPError, OSError)
"""What a call through the ``kubernetes`` client raises when the API server says no or is away."""


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
