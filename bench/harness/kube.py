"""Kubernetes for the benchmarks: clients, a namespace per run, creating and watching objects.

A run's namespace holds an Issuer on the stack's Pebble (HTTP-01 through an Ingress to
the stack's solver, as ``deploy/examples/issuer.yaml``). Objects are created from a
thread pool, one kubernetes client connection per thread; a ``ResourceWatch`` opened
before the first create notes when each object first shows each state.
"""

from __future__ import annotations

import base64
import contextlib
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from harness.acmeflow_api import StackInfo, crds
from harness.figures import NAN

CREATE_THREADS = 16
"""Objects created at once (one kubernetes client connection each)."""
WATCH_TIMEOUT_S = 60
ISSUER = "pebble"


@dataclass(frozen=True)
class Kube:
    api_client: client.ApiClient
    core: client.CoreV1Api
    custom: client.CustomObjectsApi


def kube_clients(stack: StackInfo, *, connections: int = CREATE_THREADS + 4) -> Kube:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(stack.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    api_client = client.ApiClient(configuration)
    return Kube(
        api_client=api_client,
        core=client.CoreV1Api(api_client),
        custom=client.CustomObjectsApi(api_client),
    )


def metadata(namespace: str, name: str) -> crds.ObjectMeta:
    return crds.ObjectMeta(name=name, namespace=namespace)


def issuer_ref() -> crds.IssuerRef:
    """The run's Issuer, as an Order or Certificate names it."""
    return crds.IssuerRef(name=ISSUER, kind="Issuer")


def issuer(stack: StackInfo, namespace: str) -> crds.Issuer:
    """deploy/examples/issuer.yaml, filled in for the stack's Pebble."""
    acme = crds.AcmeIssuerSpec(
        server=stack.acme_directory_url,
        ca_bundle=base64.b64encode(stack.acme_ca_bundle.read_bytes()).decode(),
        email="ops@example.com",
        private_key_secret_ref=crds.AccountKeySecretRef(name="pebble-account"),
        solvers=[crds.AcmeSolver(http01=crds.Http01Solver(ingress=crds.IngressSolver()))],
    )
    return crds.Issuer(metadata=metadata(namespace, ISSUER), spec=crds.IssuerSpec(acme=acme))


def group_version(resource: type[crds.KubeResource]) -> tuple[str, str]:
    """The API group and version a kind is served under, from its ``apiVersion`` default.

    acmeflow's kinds are ``acmeflow.io/v1alpha1``; a model of another project's kind (the
    cert-manager benchmark's) sets its own.
    """
    group, version = str(resource.model_fields["api_version"].default).split("/")
    return group, version


def read_object(kube: Kube, resource: type[crds.KubeResource], namespace: str, name: str) -> Any:
    return kube.custom.get_namespaced_custom_object(
        *group_version(resource), namespace, resource.PLURAL, name
    )


def create_object(kube: Kube, obj: crds.KubeResource) -> None:
    kube.custom.create_namespaced_custom_object(
        *group_version(type(obj)), obj.metadata.namespace, obj.PLURAL, obj.to_api()
    )


def create_namespace(kube: Kube, stack: StackInfo, namespace: str) -> None:
    """The namespace, with the Issuer ``pebble`` in it."""
    kube.core.create_namespace({"metadata": {"name": namespace}})
    create_object(kube, issuer(stack, namespace))


def delete_namespace(kube: Kube, namespace: str, *, timeout_s: float) -> bool:
    """Delete it and wait until it is gone; False if it is still there after the timeout."""
    with contextlib.suppress(ApiException):
        kube.core.delete_namespace(namespace)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            kube.core.read_namespace(namespace)
        except ApiException as error:
            if error.status == 404:
                return True
        time.sleep(1.0)
    return False


@contextlib.contextmanager
def run_namespace(
    kube: Kube, stack: StackInfo, namespace: str, *, gone_timeout_s: float
) -> Iterator[None]:
    """A fresh namespace with the Issuer, deleted after (the bridge cleans up as it goes)."""
    try:
        create_namespace(kube, stack, namespace)
        yield
    finally:
        deleted = time.monotonic()
        gone = delete_namespace(kube, namespace, timeout_s=gone_timeout_s)
        print(
            f"namespace {namespace} {'deleted' if gone else 'still terminating'} after "
            f"{time.monotonic() - deleted:.0f}s",
            flush=True,
        )


# -- creating --------------------------------------------------------------------------


@dataclass
class Created:
    """One object's create call: sent and acknowledged (epoch seconds), or why it failed."""

    name: str
    sent_at: float = NAN
    created_at: float = NAN
    error: str = ""


def create_timed(kube: Kube, obj: crds.KubeResource) -> Created:
    created = Created(obj.metadata.name, sent_at=time.time())
    try:
        create_object(kube, obj)
    except (ApiException, HTTPError) as error:
        created.error = f"{type(error).__name__}: {error}"
        return created
    created.created_at = time.time()
    return created


def create_all(kube: Kube, objects: list[crds.KubeResource]) -> dict[str, Created]:
    """Create them as fast as ``CREATE_THREADS`` connections allow, each call timed."""
    with ThreadPoolExecutor(max_workers=CREATE_THREADS) as pool:
        done = pool.map(lambda obj: create_timed(kube, obj), objects)
        return {c.name: c for c in done}


# -- watching --------------------------------------------------------------------------


@dataclass
class Seen:
    """What the watch showed of one object: each state when it first appeared."""

    state: str = ""
    message: str = ""
    states: list[tuple[str, float]] = field(default_factory=list)
    succeeded_at: float = NAN
    """When the object first showed the state a run waits for (valid, Ready)."""
    listed: bool = False
    """A state was seen in a list after a broken watch, so its time is not exact."""


StateOf = Callable[[dict[str, Any]], tuple[str, str]]
"""(state, message) of an object as the API server sent it; an empty state shows none yet."""


@dataclass(frozen=True)
class Watched:
    """Which objects a watch follows and how it reads them."""

    resource: type[crds.KubeResource]
    state_of: StateOf
    final_states: frozenset[str]
    succeeded: str
    """The final state that means success (``valid``, ``Ready``)."""


class ListThenWatch(ABC):
    """A list, then a watch from its resource version, in a thread; a broken watch lists again.

    ``_relist(listed=True)`` marks what that list shows first as seen at the list's time.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        version = self._relist(listed=False)
        thread = threading.Thread(target=self._run, args=(version,), name="watch", daemon=True)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    @abstractmethod
    def _relist(self, *, listed: bool) -> str:
        """Note every object listed now; the list's resource version."""

    @abstractmethod
    def _stream(self, version: str) -> str:
        """Watch from ``version`` (set ``self._watch``) until it ends; the last version seen."""

    def _run(self, version: str) -> None:
        while not self._stop.is_set():
            try:
                version = self._stream(version)
            except (ApiException, HTTPError, OSError) as error:
                if self._stop.is_set():
                    return  # the connection closed under a stopped watch
                self.errors.append(f"{type(error).__name__}: {error}")
                if self._stop.wait(0.5):
                    return
                version = self._relist(listed=True)


class ResourceWatch(ListThenWatch):
    """Follows the objects ``names`` of one namespace from a list taken before any is created.

    A list, then a watch from its resource version; when the watch breaks, a new list
    (its states marked ``listed``: their times are not exact) and a new watch. Objects
    of other names (a warm-up Certificate) are not noted.
    """

    def __init__(self, kube: Kube, namespace: str, watched: Watched, names: frozenset[str]) -> None:
        super().__init__()
        self._custom = kube.custom
        self._namespace = namespace
        self._watched = watched
        self._names = names
        self._expected = len(names)
        self._lock = threading.Lock()
        self._seen: dict[str, Seen] = defaultdict(Seen)
        self.all_final = threading.Event()

    def _list(self, **kwargs: Any) -> Any:
        return self._custom.list_namespaced_custom_object(
            *group_version(self._watched.resource),
            self._namespace,
            self._watched.resource.PLURAL,
            **kwargs,
        )

    def expect(self, count: int) -> None:
        """Refused creates never show up; ``all_final`` waits for this many instead."""
        self._expected = count

    def snapshot(self) -> dict[str, Seen]:
        with self._lock:
            return dict(self._seen)

    def _relist(self, *, listed: bool) -> str:
        listing = self._list()
        now = time.time()
        for obj in listing.get("items", []):
            self._note(obj, now, listed=listed)
        return str(listing["metadata"]["resourceVersion"])

    def _stream(self, version: str) -> str:
        self._watch = watch.Watch()
        for event in self._watch.stream(
            self._list,
            resource_version=version,
            timeout_seconds=WATCH_TIMEOUT_S,
            allow_watch_bookmarks=True,
        ):
            now = time.time()
            obj = event["object"]
            version = str(obj["metadata"]["resourceVersion"])
            if event["type"] in ("ADDED", "MODIFIED"):
                self._note(obj, now, listed=False)
            if self._stop.is_set():
                break
        return version

    def _note(self, obj: dict[str, Any], now: float, *, listed: bool) -> None:
        name = obj["metadata"]["name"]
        if name not in self._names:
            return
        state, message = self._watched.state_of(obj)
        with self._lock:
            seen = self._seen[name]
            seen.message = message
            if state and state != seen.state:
                seen.state = state
                seen.states.append((state, now))
                seen.listed = seen.listed or listed
                if state == self._watched.succeeded and math.isnan(seen.succeeded_at):
                    seen.succeeded_at = now
            final = sum(1 for s in self._seen.values() if s.state in self._watched.final_states)
        if final >= self._expected:
            self.all_final.set()
