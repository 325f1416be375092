"""Secrets by reference, kept in core/v1 Secrets: the worker's ``SecretBackend`` in a cluster.

``read`` returns the base64-decoded ``data[key]``, or None when the Secret or the key is
missing. ``create`` stores a value only where nothing is stored yet and returns what is
stored, so two workers generating an account key at once end up using the same one:

- no Secret: create it (type Opaque, label ``acmeflow.io/managed=true``); if another
  writer created it first (409 AlreadyExists), read again;
- a Secret without the key (one the user created, or another key acmeflow added): add the
  key with a merge patch carrying the ``resourceVersion`` that was read, so the API server
  refuses it (409 Conflict) if anything changed in between; then read again.

The worker needs ``get``, ``create`` and ``patch`` on ``secrets`` in the namespaces its
issuers name; a 403 is reported as such (see ``acmeflow.activities.kubernetes_api``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import Final

from kubernetes import client
from temporalio.exceptions import ApplicationError

from acmeflow.activities.errors import bad_request
from acmeflow.activities.kubernetes_api import (
    KUBERNETES_UNAVAILABLE,
    MERGE_PATCH,
    REQUEST_TIMEOUT,
    Permission,
    call_api_or_none,
    managed_secret,
)
from acmeflow.contracts.secrets import SecretRef

MAX_ATTEMPTS: Final = 5
"""Reads and writes before ``create`` gives up on a Secret that keeps changing."""


class KubernetesSecrets:
    """A ``SecretBackend`` over the Secrets of the cluster ``api_client`` talks to."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self._core = client.CoreV1Api(api_client)
        self._timeout = request_timeout

    def read(self, ref: SecretRef) -> bytes | None:
        secret = self._get(_checked(ref))
        return None if secret is None else _decoded(secret, ref)

    def read_all(self, ref: SecretRef) -> dict[str, bytes] | None:
        """Every key of the Secret ``ref`` names (its ``key`` unused), or None when it is
        missing: a solver whose every option is a key of one Secret (dns-lexicon's)."""
        if not (ref.namespace and ref.name):
            raise bad_request(f"{ref.describe()}: a whole Secret needs a namespace and a name")
        secret = self._get(ref)
        if secret is None:
            return None
        return {key: _decoded(secret, replace(ref, key=key)) or b"" for key in secret.data or {}}

    def create(self, ref: SecretRef, value: bytes) -> bytes:
        _checked(ref)
        for _ in range(MAX_ATTEMPTS):
            secret = self._get(ref)
            if secret is None:
                if self._create_secret(ref, value):
                    return value
                continue
            stored = _decoded(secret, ref)
            if stored is not None:
                return stored
            if self._add_key(ref, secret, value):
                return value
        raise ApplicationError(
            f"storing {ref.describe()}: the Secret kept changing while acmeflow wrote it",
            type=KUBERNETES_UNAVAILABLE,
        )

    def _get(self, ref: SecretRef) -> client.V1Secret | None:
        return call_api_or_none(
            lambda: self._core.read_namespaced_secret(
                ref.name, ref.namespace, _request_timeout=self._timeout
            ),
            none_on=(404,),
            action=f"reading {ref.describe()}",
            permission=_permission("get", ref),
        )

    def _create_secret(self, ref: SecretRef, value: bytes) -> bool:
        """Create the Secret holding ``value``; False when another writer was first."""
        secret = managed_secret(
            name=ref.name, namespace=ref.namespace, data={ref.key: _encoded(value)}
        )
        created = call_api_or_none(
            lambda: self._core.create_namespaced_secret(
                ref.namespace, secret, _request_timeout=self._timeout
            ),
            none_on=(409,),
            action=f"creating {ref.describe()}",
            permission=_permission("create", ref),
        )
        return created is not None

    def _add_key(self, ref: SecretRef, secret: client.V1Secret, value: bytes) -> bool:
        """Add the key to the Secret as read; False when it changed or vanished since."""
        patch = client.V1Secret(
            metadata=client.V1ObjectMeta(resource_version=secret.metadata.resource_version),
            data={ref.key: _encoded(value)},
        )
        patched = call_api_or_none(
            lambda: self._core.patch_namespaced_secret(
                ref.name,
                ref.namespace,
                patch,
                _content_type=MERGE_PATCH,
                _request_timeout=self._timeout,
            ),
            none_on=(404, 409),
            action=f"adding {ref.describe()}",
            permission=_permission("patch", ref),
        )
        return patched is not None


def _checked(ref: SecretRef) -> SecretRef:
    if not (ref.namespace and ref.name and ref.key):
        raise bad_request(
            f"{ref.describe()}: a Kubernetes secret reference needs a namespace, a name and a key"
        )
    return ref


def _permission(verb: str, ref: SecretRef) -> Permission:
    return Permission(verb=verb, resource="secrets", namespace=ref.namespace)


def _encoded(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _decoded(secret: client.V1Secret, ref: SecretRef) -> bytes | None:
    encoded = (secret.data or {}).get(ref.key)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise bad_request(f"{ref.describe()} is not valid base64: {error}") from error
