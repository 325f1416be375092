"""Secrets by reference: the only form in which a secret may enter a workflow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretRef:
    """A file path, or a key of a Kubernetes Secret (``namespace``/``name``/``key``).

    Activities resolve it at the moment they need the value and keep the value in memory only.
    """

    path: str = ""
    namespace: str = ""
    name: str = ""
    key: str = ""

    @property
    def in_kubernetes(self) -> bool:
        return not self.path

    def describe(self) -> str:
        if self.path:
            return f"file {self.path}"
        return f'key "{self.key}" of Secret {self.namespace}/{self.name}'
