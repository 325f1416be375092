"""Fixtures and watches for the status and history tests (test_status, test_history_limits)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client, watch

from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client


@pytest.fixture(scope="module")
def refusing_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A CA that validates HTTP-01 on a port where nothing answers: the worker's self-check
    (against the stack's responder) passes, the CA's validation fails, the Challenge is
    invalid with the CA's reason."""
    options = PebbleOptions(name="pebble-refusing")
    process, endpoints = start_extra_pebble(stack, options, http01_port=free_port())
    try:
        yield endpoints
    finally:
        stop_pid_file(process.pid_path)


@dataclass
class ResourceWatch:
    """Every change the API server stored to acmeflow objects of one kind in a namespace
    (one object with ``name``) while the watch ran, in order: a state held for a moment (an
    issuance of three seconds, a Challenge created and deleted again) is seen, unlike by
    polling."""

    stack: StackInfo
    namespace: str
    plural: str
    name: str = ""
    _seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _errors: list[BaseException] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watch: watch.Watch = field(default_factory=watch.Watch)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def changes(self) -> list[tuple[str, dict[str, Any]]]:
        """(ADDED | MODIFIED | DELETED, the object) of each change seen so far."""
        with self._lock:
            assert not self._errors, f"the {self.plural} watch failed: {self._errors}"
            return copy.deepcopy(self._seen)

    def statuses(self) -> list[dict[str, Any]]:
        """Each non-empty status stored, oldest first."""
        return [obj["status"] for _, obj in self.changes() if obj.get("status")]

    def __enter__(self) -> ResourceWatch:
        api = client.CustomObjectsApi(kubernetes_api_client(self.stack.kubeconfig))
        listing: dict[str, Any] = api.list_namespaced_custom_object(
            "acmeflow.io", "v1alpha1", self.namespace, self.plural
        )
        version = listing["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, args=(api, version), daemon=True)
        self._thread.start()
        return self

    def _run(self, api: client.CustomObjectsApi, version: str) -> None:
        selector = {"field_selector": f"metadata.name={self.name}"} if self.name else {}
        try:
            for event in self._watch.stream(
                api.list_namespaced_custom_object,
                "acmeflow.io",
                "v1alpha1",
                self.namespace,
                self.plural,
                resource_version=version,
                **selector,
            ):
                with self._lock:
                    self._seen.append((str(event["type"]), event["object"]))
        except Exception as error:  # noqa: BLE001 - changes() reports it (unless stopped)
            if not self._stopping.is_set():
                with self._lock:
                    self._errors.append(error)

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._watch.stop()
        if self._thread is not None:
            self._thread.join(10)


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition of ``type_`` in a status; {} when it has none."""
    found = [c for c in status.get("conditions", []) if c["type"] == type_]
    return dict(found[0]) if found else {}
