"""Fixtures for bridge tests: CRDs, a bridge process, an order worker, a namespace."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import config as kube_config
from temporalio.client import Client

from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import build_worker
from acmeflow.worker.kubernetes import kubernetes_services
from tests.bridge.bridge_harness import BridgeProcess, issuer_manifest, tsig_secret, unique
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace
from tests.orders.order_harness import worker_config


@pytest.fixture(scope="session")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    return kubectl


@pytest.fixture(scope="module")
def queues() -> tuple[str, str]:
    return unique("orders"), unique("bridge")


@pytest.fixture(scope="module")
def bridge(
    stack: StackInfo,
    kubectl: Kubectl,
    queues: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BridgeProcess]:
    log = tmp_path_factory.mktemp("bridge") / "bridge.log"
    process = BridgeProcess(stack, queues[0], queues[1], log)
    process.start()
    yield process
    process.stop()
    print(f"bridge log ({log}):\n{process.log()[-4000:]}")


class WorkerThread:
    """An order worker on its own event loop, so synchronous tests can block freely."""

    def __init__(self, stack: StackInfo, task_queue: str, **overrides: object) -> None:
        self._stack = stack
        self._task_queue = task_queue
        self._overrides = overrides
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as error:  # noqa: BLE001 -- raised again in the test thread
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        client = await Client.connect(self._stack.temporal_address)
        api_client = kube_config.new_client_from_config(config_file=str(self._stack.kubeconfig))
        config = worker_config(self._stack, self._task_queue, **self._overrides)
        # Secrets and Certificate steps in the cluster; HTTP-01 tokens in the stack's store.
        services = kubernetes_services(config, api_client)
        async with build_worker(client, config, kubernetes=services):
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> WorkerThread:
        self._thread.start()
        assert self._ready.wait(30), "order worker did not start"
        if self._error is not None:
            raise AssertionError("order worker failed to start") from self._error
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self._error is not None:
            raise AssertionError("order worker failed while the tests ran") from self._error


@pytest.fixture(scope="module")
def order_worker(
    stack: StackInfo, queues: tuple[str, str], request: pytest.FixtureRequest
) -> Iterator[None]:
    """A test module may set ``WORKER_OVERRIDES`` (WorkerConfig fields) for its worker."""
    overrides = getattr(request.module, "WORKER_OVERRIDES", {})
    with WorkerThread(stack, queues[0], **overrides):
        yield


@pytest.fixture
def namespace(stack: StackInfo, kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "bridge") as name:
        kubectl.create(tsig_secret(stack, name))
        kubectl.create(issuer_manifest(stack, name))
        yield name


@pytest.fixture
def artifacts() -> Path:
    path = Path(__file__).resolve().parents[2] / "artifacts"
    path.mkdir(exist_ok=True)
    return path
