"""SIGKILL the Temporal server in the middle of an order: after a restart on the same
SQLite file the same workflow run completes, with one ACME order and nothing left behind.

The kill point is the finalize request, held in the proxy: the worker has sent it, the CA
has not seen it. Temporal dies, then the CA finalizes while Temporal is down, so the
worker's report of the step has no server to go to.

The test's Pebble rejects no nonce, so every finalize POST the proxy counts is one the
worker meant to send. (On the stack's Pebble, which rejects 5% of nonces, the acme
client's retry of a badNonce finalize counted as a second finalize now and then.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from temporalio.client import Client

from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import ServerProcess, free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.devstack.temporal_server import temporal_process
from acmeflow.devstack.tls import KeyPair, create_ca
from acmeflow.workflows.order import OrderWorkflow
from tests.orders.durability_proxy import AcmeProxy, Exchange, HeldRequest
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


FINALIZE = "/finalize-order/"
"""Pebble's finalize URLs are /finalize-order/<order id>."""


@pytest.fixture
def private_temporal(tmp_path: Path) -> Iterator[PrivateTemporal]:
    temporal = PrivateTemporal(tmp_path / "temporal")
    temporal.start()
    yield temporal
    temporal.stop()


@pytest.fixture
def strict_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A Pebble that rejects no nonce, so a second finalize POST can only be a retry."""
    process, endpoints = start_extra_pebble(
        stack, PebbleOptions(name="pebble-temporal-restart", nonce_reject_percent=0)
    )
    yield endpoints
    stop_pid_file(process.pid_path)


async def test_temporal_killed_while_finalizing(
    stack: StackInfo,
    private_temporal: PrivateTemporal,
    strict_pebble: PebbleEndpoints,
    task_queue: str,
    tmp_path: Path,
) -> None:
    tls_ca: KeyPair = create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    own_stack = stack.model_copy(update={"temporal_address": private_temporal.address})
    names = [f"temporal-restart-{uuid.uuid4().hex[:8]}.example.com"]
    with (
        AcmeProxy(strict_pebble.directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        WorkerGroup(own_stack, task_queue, tmp_path) as workers,
    ):
        proxy.hold("POST", FINALIZE)
        worker = workers.start("worker")
        client = await Client.connect(private_temporal.address)
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        handle = await start(client, prepared, task_queue)
        run_id = handle.result_run_id
        held = await eventually(
            lambda: _held_finalize(proxy),
            "the finalize request to be held",
            timeout=60,
            workers=(worker,),
        )
        # At once: the worker's HTTP client waits for its answer only so long.
        private_temporal.kill()
        assert any(r is held for r in proxy.held), "Temporal must die while finalize is held"
        assert proxy.posts_to(FINALIZE) == [], "the CA must not have seen finalize yet"
        proxy.stop_holding()
        held.deliver()
        await eventually(
            lambda: _finalized(proxy),
            "the CA to answer the finalize request while Temporal is down",
            timeout=30,
            workers=(worker,),
        )

        private_temporal.start()
        client = await Client.connect(private_temporal.address)
        handle = client.get_workflow_handle_for(OrderWorkflow.run, prepared.workflow_id)
        result = await result_within(handle, 150, (worker,))
        progress = await handle.query(OrderWorkflow.progress)
        finished_run = (await handle.describe()).run_id
        assert worker.alive(), "the worker must ride out Temporal's restart"
    assert finished_run == run_id, "the run started before the kill must be the one that ends"
    assert held.path == urlsplit(progress.finalize_url).path, "the held request was this order's"
    assert result.state == "valid"
    assert_certificate(result.certificate, prepared.key, names, strict_pebble.roots_path)
    assert proxy.orders_created == [progress.url]
    assert [e.status for e in proxy.posts_to(FINALIZE)] == [200], "finalized exactly once"
    assert leftover_tokens(stack, progress) == []


async def _held_finalize(proxy: AcmeProxy) -> HeldRequest | None:
    """The finalize POST parked in the proxy, once the worker has sent it."""
    return next((r for r in proxy.held if r.method == "POST" and r.path.startswith(FINALIZE)), None)


async def _finalized(proxy: AcmeProxy) -> Exchange | None:
    """The CA's successful answer to finalize, once it gave one."""
    return next((e for e in proxy.posts_to(FINALIZE) if e.status == 200), None)
