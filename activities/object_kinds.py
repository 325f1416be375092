"""One kind of Kubernetes object as acmeflow writes it: create or converge, read, delete.

Built-in kinds go through the ``kubernetes`` client's typed API with its models (``V1Service``,
``V1Ingress``); Gateway API kinds through ``CustomObjectsApi`` with acmeflow's models
(``acmeflow.activities.gateway_api``). Either way a body is a typed model, a change is a
merge patch of the whole body, and a read gives back the stored object's metadata.

Objects acmeflow owns carry a label (``Placement.owned_by``): an object of the same name
without it is never patched or deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubernetes import client

from acmeflow.activities.errors import bad_request, still_waiting
from acmeflow.activities.kubernetes_api import (
    KUBERNETES_ERRORS,
    MERGE_PATCH,
    Permission,
    api_failure,
    call_api_or_none,
    server_message,
    status_of,
)
from acmeflow.crds.models import CrdModel, ObjectMeta

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 5
"""Create/read/patch rounds before an object that keeps changing is retried later."""


class _Api(Protocol):
    """A kind's calls, shaped like the typed API's ``*_namespaced_<kind>`` methods."""

    def create(self, namespace: str, body: Any, **kwargs: Any) -> object: ...
    def read(self, name: str, namespace: str, **kwargs: Any) -> object: ...
    def patch(self, name: str, namespace: str, body: Any, **kwargs: Any) -> object: ...
    def delete(self, name: str, namespace: str, **kwargs: Any) -> object: ...


class _TypedApi:
    """A built-in kind on its typed API: ``create_namespaced_service`` and the rest."""

    def __init__(self, api: object, suffix: str) -> None:
        self.create = getattr(api, f"create_namespaced_{suffix}")
        self.read = getattr(api, f"read_namespaced_{suffix}")
        self.patch = getattr(api, f"patch_namespaced_{suffix}")
        self.delete = getattr(api, f"delete_namespaced_{suffix}")


class _CustomApi:
    """A custom kind on ``CustomObjectsApi``; bodies are acmeflow's pydantic models."""

    def __init__(self, custom: client.CustomObjectsApi, group: str, version: str, plural: str):
        self._custom = custom
        self._where = (group, version)
        self._plural = plural

    def _call(self, verb: str, namespace: str, *args: Any, **kwargs: Any) -> object:
        method = getattr(self._custom, f"{verb}_namespaced_custom_object")
        return method(*self._where, namespace, self._plural, *args, **kwargs)

    def create(self, namespace: str, body: CrdModel, **kwargs: Any) -> object:
        return self._call("create", namespace, body.to_api(), **kwargs)

    def read(self, name: str, namespace: str, **kwargs: Any) -> object:
        return self._call("get", namespace, name, **kwargs)

    def patch(self, name: str, namespace: str, body: CrdModel, **kwargs: Any) -> object:
        return self._call("patch", namespace, name, body.to_api(), **kwargs)

    def delete(self, name: str, namespace: str, **kwargs: Any) -> object:
        return self._call("delete", namespace, name, **kwargs)


@dataclass(frozen=True)
class Placement:
    """Where an object goes, and the label that marks it as acmeflow's."""

    namespace: str
    name: str
    owned_by: tuple[str, str]


@dataclass(frozen=True)
class ObjectKind:
    """Create-or-converge and guarded delete for one kind of object."""

    kind: str
    resource: str
    group: str
    api: _Api
    api_client: client.ApiClient
    request_timeout: tuple[float, float]

    @classmethod
    def builtin(
        cls,
        api_client: client.ApiClient,
        api: object,
        suffix: str,
        *,
        kind: str,
        resource: str,
        group: str,
        request_timeout: tuple[float, float],
    ) -> ObjectKind:
        """A built-in kind on a typed API (``CoreV1Api`` and ``suffix="service"``)."""
        return cls(kind, resource, group, _TypedApi(api, suffix), api_client, request_timeout)

    @classmethod
    def custom(
        cls,
        api_client: client.ApiClient,
        group: str,
        version: str,
        resource: str,
        kind: str,
        *,
        request_timeout: tuple[float, float],
    ) -> ObjectKind:
        """A custom kind (a CRD's plural ``resource``) on ``CustomObjectsApi``."""
        api = _CustomApi(client.CustomObjectsApi(api_client), group, version, resource)
        return cls(kind, resource, group, api, api_client, request_timeout)

    def permission(self, verb: str, namespace: str) -> Permission:
        return Permission(verb=verb, resource=self.resource, namespace=namespace, group=self.group)

    def read(self, namespace: str, name: str, action: str) -> ObjectMeta | None:
        """The stored object's metadata; None when it is not there."""
        stored = call_api_or_none(
            lambda: self.api.read(name, namespace, _request_timeout=self.request_timeout),
            none_on=(404,),
            action=action,
            permission=self.permission("get", namespace),
        )
        if stored is None:
            return None
        wire = self.api_client.sanitize_for_serialization(stored)
        return ObjectMeta.model_validate(wire.get("metadata") or {})

    def ensure(self, body: object, placement: Placement, action: str) -> None:
        """Create ``body``; if it exists and is acmeflow's, merge-patch it to match."""
        namespace, name = placement.namespace, placement.name
        label, value = placement.owned_by
        for _ in range(MAX_ATTEMPTS):
            if self._create(body, namespace, name, action):
                return
            existing = self.read(namespace, name, action)
            if existing is None:
                continue
            if (existing.labels or {}).get(label) != value:
                raise bad_request(
                    f"{action}: {self.kind} {namespace}/{name} already exists and acmeflow did "
                    f"not create it (no label {label}={value}); rename or delete it"
                )
            patched = call_api_or_none(
                lambda: self.api.patch(
                    name,
                    namespace,
                    body,
                    _content_type=MERGE_PATCH,
                    _request_timeout=self.request_timeout,
                ),
                none_on=(404,),
                action=action,
                permission=self.permission("patch", namespace),
            )
            if patched is not None:
                return
        raise still_waiting(f"{action}: {self.kind} {namespace}/{name} kept changing; retrying")

    def _create(self, body: object, namespace: str, name: str, action: str) -> bool:
        """Create ``body``; False when an object of its name is there already."""
        try:
            self.api.create(namespace, body, _request_timeout=self.request_timeout)
        except KUBERNETES_ERRORS as error:
            if status_of(error) == 404:
                raise bad_request(
                    f"{action}: cannot create {self.kind} {namespace}/{name}: "
                    f"{server_message(error)} (does this cluster serve {self.kind} "
                    f"from {self.group or 'core/v1'}, and does namespace {namespace} exist?)"
                ) from error
            if status_of(error) != 409:
                raise api_failure(
                    error, action=action, permission=self.permission("create", namespace)
                ) from error
            return False
        return True

    def remove(self, placement: Placement, action: str) -> None:
        """Delete acmeflow's object, precondition on its uid; one not marked as ours stays."""
        namespace, name = placement.namespace, placement.name
        label, value = placement.owned_by
        for _ in range(MAX_ATTEMPTS):
            existing = self.read(namespace, name, action)
            if existing is None:
                return
            if (existing.labels or {}).get(label) != value:
                log.warning(
                    "%s: leaving %s %s/%s alone: acmeflow did not create it",
                    action,
                    self.kind,
                    namespace,
                    name,
                )
                return
            options = client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid=existing.uid),
                propagation_policy="Background",
            )
            try:
                self.api.delete(
                    name, namespace, body=options, _request_timeout=self.request_timeout
                )
                return
            except KUBERNETES_ERRORS as error:
                if status_of(error) == 404:
                    return
                if status_of(error) != 409:
                    raise api_failure(
                        error, action=action, permission=self.permission("delete", namespace)
                    ) from error
        raise still_waiting(f"{action}: {self.kind} {namespace}/{name} kept changing; retrying")
