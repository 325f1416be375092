"""``acmeflow solver --kubernetes`` against the real kube-apiserver.

The solver runs as a real process; Challenges are created and deleted with kubectl. To
interrupt its watch honestly, the solver reaches the API server through a TCP proxy that
the test can cut. The 410 Gone path is shown on the real server by starting a cache from
a resourceVersion the server no longer has; the rest of the list/watch loop is covered as
a unit in ``tests/solver/test_challenge_cache.py``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from acmeflow.activities.http01 import DirectoryStore
from acmeflow.contracts.states import ChallengeType
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from acmeflow.solver.challenge_cache import ChallengeCache, KubernetesChallengeFeed, Obj
from tests.k8s.challenge_resources import create_challenge, http01_spec
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace
from tests.solver.solver_process import Reply, running_solver

pytestmark = pytest.mark.stack
HANG_GUARD_S = 60.0
"""Ends a wait that would never end; how fast the solver follows belongs in a benchmark."""


class TcpProxy:
    """Forwards a local port to the API server; ``cut()`` drops every connection and
    refuses new ones until ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets |= {client, upstream}
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for end in sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    return kubectl


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "solver-k8s") as name:
        yield name


@pytest.fixture
def proxy(stack: StackInfo) -> Iterator[TcpProxy]:
    server = urlsplit(stack.kube_server)
    proxy = TcpProxy((server.hostname or "127.0.0.1", server.port or 443))
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_kubeconfig(stack: StackInfo, proxy: TcpProxy, tmp_path: Path) -> Path:
    """The stack's kubeconfig with the server replaced by the proxy (TLS passes through)."""
    kubeconfig: dict[str, Any] = yaml.safe_load(stack.kubeconfig.read_text())
    for cluster in kubeconfig["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_serves_challenges_as_they_are_created_and_stops_when_they_are_deleted(
    stack: StackInfo, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    early = unique("early")
    create_challenge(kubectl, early, namespace, token=f"tok-{early}", dns_name="early.example.com")
    store = DirectoryStore(tmp_path / "tokens")
    args = (
        "--kubernetes",
        "--kubeconfig",
        str(stack.kubeconfig),
        "--store-dir",
        str(store.directory),
    )
    with running_solver(*args, log_path=tmp_path / "solver.log") as solver:
        # A Challenge that existed before the solver started comes with the first list.
        assert solver.token(f"tok-{early}", "early.example.com") == Reply(
            200, f"tok-{early}.thumbprint"
        )

        # Not served before its Challenge exists; served once it does, from the watch.
        name = unique("chal")
        token = f"tok-{name}"
        assert solver.token(token, "solve.example.com").status == 404
        create_challenge(kubectl, name, namespace, token=token, dns_name="solve.example.com")
        reply = solver.wait_for(token, "solve.example.com", 200, timeout_s=HANG_GUARD_S)
        assert reply.body == f"{token}.thumbprint"

        # The key is served only for the Challenge's own name; Host case and port do not matter.
        assert solver.token(token, "SOLVE.example.com:80").status == 200
        assert solver.token(token, "other.example.com").status == 404
        assert solver.token(token, "").status == 404
        assert solver.token("never-issued", "solve.example.com").status == 404

        # DNS-01 Challenges are not HTTP-01 tokens.
        dns = unique("dns")
        create_challenge(
            kubectl, dns, namespace, token=f"tok-{dns}", dns_name="dns.example.com",
            challenge_type=ChallengeType.DNS01,
        )  # fmt: skip
        create_challenge(
            kubectl, unique("marker"), namespace, token="tok-marker", dns_name="m.example.com"
        )
        solver.wait_for("tok-marker", "m.example.com", 200)  # events arrive in order
        assert solver.token(f"tok-{dns}", "dns.example.com").status == 404

        # With a store directory as well, both sources answer.
        store.publish(http01_spec("file", "", token="tok-file", dns_name="file.example.com"))
        assert solver.token("tok-file", "file.example.com") == Reply(200, "tok-file.thumbprint")

        kubectl("delete", "challenge", name, "-n", namespace)
        solver.wait_for(token, "solve.example.com", 404, timeout_s=HANG_GUARD_S)

        assert solver.terminate() == 0


def test_namespace_flag_limits_what_is_served(
    stack: StackInfo, kubectl: Kubectl, tmp_path: Path
) -> None:
    with (
        temporary_namespace(kubectl, "solver-mine") as mine,
        temporary_namespace(kubectl, "solver-other") as other,
    ):
        args = ("--kubernetes", "--kubeconfig", str(stack.kubeconfig), "--namespace", mine)
        with running_solver(*args, log_path=tmp_path / "solver.log") as solver:
            create_challenge(kubectl, "theirs", other, token="tok-theirs", dns_name="t.example.com")
            create_challenge(kubectl, "ours", mine, token="tok-ours", dns_name="o.example.com")
            solver.wait_for("tok-ours", "o.example.com", 200)
            assert solver.token("tok-theirs", "t.example.com").status == 404


def test_keeps_answering_through_an_api_outage_and_catches_up_after_it(
    kubectl: Kubectl,
    namespace: str,
    proxy: TcpProxy,
    proxied_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    args = ("--kubernetes", "--kubeconfig", str(proxied_kubeconfig))
    with running_solver(*args, log_path=tmp_path / "solver.log") as solver:
        before, during = unique("before"), unique("during")
        create_challenge(
            kubectl, before, namespace, token=f"tok-{before}", dns_name="b.example.com"
        )
        solver.wait_for(f"tok-{before}", "b.example.com", 200)

        proxy.cut()  # the watch connection drops; reconnecting is refused
        kubectl("delete", "challenge", before, "-n", namespace)
        create_challenge(
            kubectl, during, namespace, token=f"tok-{during}", dns_name="d.example.com"
        )
        time.sleep(2)
        # What the solver knew is still served while the API server is out of reach.
        assert solver.token(f"tok-{before}", "b.example.com").status == 200
        assert solver.token(f"tok-{during}", "d.example.com").status == 404
        assert solver.get("/readyz").status == 200

        proxy.restore()
        solver.wait_for(f"tok-{during}", "d.example.com", 200, timeout_s=HANG_GUARD_S)
        # The fresh list replaced the cache: the Challenge deleted meanwhile is gone.
        solver.wait_for(f"tok-{before}", "b.example.com", 404, timeout_s=HANG_GUARD_S)
        log = solver.log()
        assert "listing again in" in log, log
        assert solver.terminate() == 0


def test_not_ready_until_the_first_list_then_ready(
    kubectl: Kubectl,
    namespace: str,
    proxy: TcpProxy,
    proxied_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    create_challenge(kubectl, "waiting", namespace, token="tok-waiting", dns_name="w.example.com")
    proxy.cut()
    args = ("--kubernetes", "--kubeconfig", str(proxied_kubeconfig))
    with running_solver(*args, log_path=tmp_path / "solver.log", wait_for="/healthz") as solver:
        time.sleep(1)
        assert solver.get("/readyz") == Reply(503, "loading")
        assert solver.get("/healthz") == Reply(200, "ok")
        proxy.restore()
        deadline = time.monotonic() + HANG_GUARD_S
        while solver.get("/readyz").status != 200:
            assert time.monotonic() < deadline, solver.log()
            time.sleep(0.1)
        assert solver.token("tok-waiting", "w.example.com").status == 200


class StaleFirstList(KubernetesChallengeFeed):
    """The real feed, except that the first list claims resourceVersion 1, long compacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first = True

    def list(self) -> tuple[list[Obj], str]:
        items, version = super().list()
        if self.first:
            self.first = False
            return [], "1"
        return items, version


def test_an_expired_resource_version_on_the_real_server_leads_to_a_new_list(
    stack: StackInfo, kubectl: Kubectl, namespace: str
) -> None:
    create_challenge(kubectl, "listed", namespace, token="tok-listed", dns_name="l.example.com")
    feed = StaleFirstList(kubernetes_api_client(stack.kubeconfig), namespace=namespace)
    cache = ChallengeCache(feed, initial_backoff_s=0.05)
    cache.start()
    try:
        assert cache.wait_ready(HANG_GUARD_S)
        deadline = time.monotonic() + HANG_GUARD_S
        while cache.key_for("tok-listed", "l.example.com") is None:
            assert time.monotonic() < deadline, "the 410 did not lead to a new list"
            time.sleep(0.05)
        assert cache.lists == 2
        assert cache.key_for("tok-listed", "l.example.com") == "tok-listed.thumbprint"
    finally:
        cache.stop()
