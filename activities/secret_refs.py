"""Secrets by reference: the only form in which a secret may enter a workflow.

A ``SecretRef`` names a file on the worker or a key of a Kubernetes Secret; activities
resolve it at the moment they need the value and keep the value in memory only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from acmeflow.activities.errors import bad_request
from acmeflow.contracts.secrets import SecretRef


class SecretBackend(Protocol):
    def read(self, ref: SecretRef) -> bytes | None:
        """The stored value, or None when the secret (or key) does not exist."""

    def create(self, ref: SecretRef, value: bytes) -> bytes:
        """Store ``value`` unless something is there already; return what is stored."""


class FileSecrets:
    """Secrets kept as files readable only by the worker's user."""

    def read(self, ref: SecretRef) -> bytes | None:
        path = Path(ref.path)
        return path.read_bytes() if path.exists() else None

    def create(self, ref: SecretRef, value: bytes) -> bytes:
        path = Path(ref.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(value)
        return value


class SecretStore:
    """Routes each reference to the backend that holds it."""

    def __init__(
        self, files: SecretBackend | None = None, kubernetes: SecretBackend | None = None
    ) -> None:
        self._files = files or FileSecrets()
        self._kubernetes = kubernetes

    def _backend(self, ref: SecretRef) -> SecretBackend:
        if not ref.in_kubernetes:
            return self._files
        if self._kubernetes is None:
            raise bad_request(f"{ref.describe()}: this worker has no Kubernetes access configured")
        return self._kubernetes

    def read(self, ref: SecretRef) -> bytes | None:
        return self._backend(ref).read(ref)

    def require(self, ref: SecretRef, purpose: str) -> bytes:
        value = self.read(ref)
        if value is None:
            raise bad_request(f"{purpose}: {ref.describe()} does not exist")
        return value

    def create(self, ref: SecretRef, value: bytes) -> bytes:
        return self._backend(ref).create(ref, value)
