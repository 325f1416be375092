"""SIGKILL the Temporal server in the middle of an order: after a restart on the same
SQLite file the same workflow completes, with one ACME order and nothing left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from acmeflow.devstack.processes import ServerProcess, free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo
from acmeflow.devstack.temporal_server import temporal_process
from acmeflow.devstack.tls import KeyPair, create_ca
from acmeflow.workflows.order import OrderWorkflow
from tests.orders.durability_proxy import AcmeProxy
from tests.orders.durability_workers import WorkerGroup, eventually, result_within
from tests.orders.order_harness import (
    assert_certificate,
    issuer,
    leftover_tokens,
    prepare,
    start,
)


class PrivateTemporal:
    """A Temporal dev server of the test's own, on fixed ports, so it can die and return."""

    def __init__(self, state_dir: Path) -> None:
        ports = {
            "port": free_port(),
            "ui_port": free_port(),
            "metrics_port": free_port(),
            "http_port": free_port(),
        }
        self.address = f"127.0.0.1:{ports['port']}"
        self._make = lambda: temporal_process(state_dir, **ports)
        self.process: ServerProcess = self._make()

    def start(self) -> None:
        self.process = self._make()
        self.process.start()
        self.process.wait_healthy(60)

    def kill(self) -> None:
        assert self.process.popen is not None
        self.process.popen.kill()
        self.process.popen.wait(10)

    def stop(self) -> None:
        stop_pid_file(self.process.pid_path)


@pytest.fixture
def private_temporal(tmp_path: Path) -> Iterator[PrivateTemporal]:
    temporal = PrivateTemporal(tmp_path / "temporal")
    temporal.start()
    yield temporal
    temporal.stop()


async def test_temporal_killed_while_finalizing(
    stack: StackInfo, private_temporal: PrivateTemporal, task_queue: str, tmp_path: Path
) -> None:
    tls_ca: KeyPair = create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    own_stack = stack.model_copy(update={"temporal_address": private_temporal.address})
    names = ["temporal-restart.example.com"]
    with (
        AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        WorkerGroup(own_stack, task_queue, tmp_path) as workers,
    ):
        proxy.hold("POST", "/finalize-order/")
        worker = workers.start("worker")
        client = await Client.connect(private_temporal.address)
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        handle = await start(client, prepared, task_queue)
        await eventually(
            lambda: _held(proxy), "the finalize request to be held", timeout=60, workers=(worker,)
        )
        private_temporal.kill()
        proxy.stop_holding()
        for held in proxy.held:
            held.deliver()
        private_temporal.start()
        client = await Client.connect(private_temporal.address)
        handle = client.get_workflow_handle_for(OrderWorkflow.run, prepared.workflow_id)
        result = await result_within(handle, 150, (worker,))
        progress = await handle.query(OrderWorkflow.progress)
        assert worker.alive, "the worker must ride out Temporal's restart"
    assert result.state == "valid"
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    assert proxy.orders_created == [progress.url]
    assert len(proxy.posts_to("/finalize-order/")) == 1
    assert leftover_tokens(stack, progress) == []


async def _held(proxy: AcmeProxy) -> bool:
    return bool(proxy.held)
