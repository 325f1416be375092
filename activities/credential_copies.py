"""Copies of the credentials a challenge's clean-up needs, kept in acmeflow's own namespace.

A DNS-01 record is presented with a credential from the user's namespace (the TSIG Secret
of an RFC 2136 solver). If that namespace is deleted while the record is up, for instance
while the worker is down, the cancelled order would have nothing left to sign its delete
with, and the record would stay in the zone for good. So:

- presenting copies the credential into a Secret in acmeflow's namespace *before* the
  record goes out: a kill between the two leaves a copy without a record (the retried
  step or the clean-up removes it), never a record without a copy;
- clean-up uses the user's Secret while it exists, else the copy, and deletes the copy
  once the record is gone. A copy left behind therefore marks a record that may still be
  in the zone, with what it takes to remove it;
- the copy is named from the workflow id and the challenge (``CopyOwner.name``), so the
  clean-up step of the same challenge finds it on any worker with nothing in history but
  the challenge spec; the value never passes through Temporal.

The worker needs ``get``, ``create``, ``patch`` and ``delete`` on ``secrets`` in its own
namespace (deploy/base/worker-rbac.yaml, Role ``acmeflow-worker``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final, Protocol

from kubernetes import client

from acmeflow.activities.errors import bad_request
from acmeflow.activities.kubernetes_api import (
    MERGE_PATCH,
    REQUEST_TIMEOUT,
    Permission,
    call_api_or_none,
    managed_secret,
)

COPY_LABEL: Final = "acmeflow.io/clean-up-copy"
"""Label (value ``"true"``) on every copy, so an operator can list them."""
COPY_KEY: Final = "credential"
ANNOTATION_PREFIX: Final = "acmeflow.io/"


@dataclass(frozen=True)
class CopyOwner:
    """One challenge of one workflow: the step that presents and the one that cleans up."""

    workflow_id: str
    challenge: str
    """``<namespace>/<name>`` of the Challenge."""

    @property
    def name(self) -> str:
        """The copy's Secret name, the same on every worker and attempt."""
        digest = hashlib.sha256(f"{self.workflow_id}\n{self.challenge}".encode()).hexdigest()
        return f"acmeflow-clean-up-{digest[:40]}"


class CredentialCopies(Protocol):
    def keep(self, owner: CopyOwner, value: bytes, *, about: dict[str, str]) -> None:
        """Store ``value`` as ``owner``'s copy (replacing an older value); ``about`` says, in
        annotations, what it is for (never a secret)."""

    def read(self, owner: CopyOwner) -> bytes | None:
        """The copy's value, or None when there is none."""

    def discard(self, owner: CopyOwner) -> None:
        """Delete the copy; nothing when it is already gone."""


class KubernetesCredentialCopies:
    """``CredentialCopies`` as Secrets in ``namespace``, acmeflow's own."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self._timeout = request_timeout

    def keep(self, owner: CopyOwner, value: bytes, *, about: dict[str, str]) -> None:
        name = owner.name
        data = {COPY_KEY: base64.b64encode(value).decode("ascii")}
        described = {"workflow-id": owner.workflow_id, "challenge": owner.challenge, **about}
        annotations = {ANNOTATION_PREFIX + key: text for key, text in described.items()}
        secret = managed_secret(
            name=name, namespace=self.namespace, data=data, annotations=annotations
        )
        secret.metadata.labels[COPY_LABEL] = "true"
        created = call_api_or_none(
            lambda: self._core.create_namespaced_secret(
                self.namespace, secret, _request_timeout=self._timeout
            ),
            none_on=(404, 409),
            action=f"keeping a clean-up copy as Secret {self.namespace}/{name}",
            permission=self._permission("create"),
        )
        if created is not None:
            return
        # 409: a retried step wrote it before (keep the newest value); 404: no namespace.
        patched = call_api_or_none(
            lambda: self._core.patch_namespaced_secret(
                name,
                self.namespace,
                {"data": data},
                _content_type=MERGE_PATCH,
                _request_timeout=self._timeout,
            ),
            none_on=(404,),
            action=f"updating the clean-up copy Secret {self.namespace}/{name}",
            permission=self._permission("patch"),
        )
        if patched is None:
            raise bad_request(
                f"keeping a clean-up copy: namespace {self.namespace} does not exist; "
                "create it or point the worker's --own-namespace at acmeflow's namespace"
            )

    def read(self, owner: CopyOwner) -> bytes | None:
        name = owner.name
        secret = call_api_or_none(
            lambda: self._core.read_namespaced_secret(
                name, self.namespace, _request_timeout=self._timeout
            ),
            none_on=(404,),
            action=f"reading the clean-up copy Secret {self.namespace}/{name}",
            permission=self._permission("get"),
        )
        encoded = (secret.data or {}).get(COPY_KEY) if secret is not None else None
        return None if encoded is None else base64.b64decode(encoded)

    def discard(self, owner: CopyOwner) -> None:
        name = owner.name
        call_api_or_none(
            lambda: self._core.delete_namespaced_secret(
                name, self.namespace, _request_timeout=self._timeout
            ),
            none_on=(404,),
            action=f"deleting the clean-up copy Secret {self.namespace}/{name}",
            permission=self._permission("delete"),
        )

    def _permission(self, verb: str) -> Permission:
        return Permission(verb=verb, resource="secrets", namespace=self.namespace)
