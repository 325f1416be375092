"""acmeflow against a real Temporal cluster: four temporal-server processes over PostgreSQL.

Run with ``ACMEFLOW_TEST_TEMPORAL=cluster`` (``make test`` does, after the main suite);
the session stack then starts the cluster in place of the dev server. Orders in flight
survive their history service being SIGKILLed and one of two workers dying, each with
exactly one ACME order at the CA.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle

from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.postgres import PostgresEndpoints, data_dir_for
from acmeflow.devstack.processes import ServerProcess, pid_alive, stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.devstack.temporal_cluster import HISTORY_SHARDS, SERVICES, temporal_cluster
from acmeflow.devstack.temporal_server import temporal_cli
from acmeflow.devstack.tls import create_ca
from acmeflow.workflows.order import OrderResult, OrderWorkflow
from acmeflow.workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES
from tests.orders.durability_proxy import AcmeProxy
from tests.orders.durability_workers import WorkerGroup, WorkerProcess, eventually, result_within
from tests.orders.order_harness import (
    PreparedOrder,
    assert_certificate,
    issuer,
    prepare,
    start,
)

pytestmark = pytest.mark.stack

ORDERS = 12


@dataclass(frozen=True)
class InFlight:
    names: list[str]
    prepared: PreparedOrder
    handle: WorkflowHandle[OrderWorkflow, OrderResult]


@pytest.fixture
def strict_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A Pebble that rejects no nonce, so every new-order POST the proxy sees is meant."""
    process, endpoints = start_extra_pebble(
        stack, PebbleOptions(name="pebble-cluster", nonce_reject_percent=0)
    )
    yield endpoints
    stop_pid_file(process.pid_path)


def _service(stack: StackInfo, name: str) -> ServerProcess:
    """The session cluster's process for ``name``, as the stack started it."""
    postgres = PostgresEndpoints(stack.ports.postgres, data_dir_for(stack.state_dir))
    cluster = temporal_cluster(
        stack.state_dir, stack.ports.cluster(), postgres, depends_on=_nothing()
    )
    return next(s for s in cluster.services if s.name == f"temporal-{name}")


def _nothing() -> ServerProcess:
    return ServerProcess(name="none", argv=[], state_dir=Path("/"), healthy=lambda: True)


def _pid(process: ServerProcess) -> int:
    return int(process.pid_path.read_text().strip())


async def test_the_cluster_is_four_processes_with_sql_visibility(stack: StackInfo) -> None:
    assert stack.temporal_mode == "cluster"
    pids = {name: _pid(_service(stack, name)) for name in SERVICES}
    assert len(set(pids.values())) == len(SERVICES), pids
    assert all(pid_alive(pid) for pid in pids.values()), pids
    described = json.loads(
        subprocess.run(
            [
                temporal_cli(),
                "operator",
                "cluster",
                "describe",
                "--address",
                stack.temporal_address,
                "-o",
                "json",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert described["historyShardCount"] == HISTORY_SHARDS
    assert "postgres" in described["persistenceStore"]
    assert "postgres" in described["visibilityStore"]
    client = await Client.connect(stack.temporal_address)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert set(SEARCH_ATTRIBUTE_TYPES) <= set(listed.custom_attributes)


async def _in_flight(
    stack: StackInfo, proxy: AcmeProxy, task_queue: str, tmp_path: Path
) -> tuple[Client, list[InFlight]]:
    client = await Client.connect(stack.temporal_address)
    config = issuer(stack, tmp_path, server=proxy.directory_url)
    orders = []
    for _ in range(ORDERS):
        names = [f"cluster-{uuid.uuid4().hex[:8]}.example.com"]
        prepared = prepare(names, config)
        orders.append(InFlight(names, prepared, await start(client, prepared, task_queue)))
    return client, orders


async def _some_orders_created(proxy: AcmeProxy) -> int | None:
    created = len(proxy.orders_created)
    return created if created >= ORDERS // 3 else None


async def _all_issued(
    orders: list[InFlight],
    proxy: AcmeProxy,
    stack: StackInfo,
    roots: Path,
    workers: tuple[WorkerProcess, ...],
) -> None:
    urls = []
    for order in orders:
        result = await result_within(order.handle, 240, workers)
        assert result.state == "valid", result
        assert_certificate(result.certificate, order.prepared.key, order.names, roots)
        urls.append((await order.handle.query(OrderWorkflow.progress)).url)
    assert sorted(proxy.orders_created) == sorted(urls), "one ACME order per Order, no more"
    assert len(set(urls)) == ORDERS


async def test_orders_finish_when_the_history_service_is_killed_mid_load(
    stack: StackInfo, strict_pebble: PebbleEndpoints, task_queue: str, tmp_path: Path
) -> None:
    tls_ca = create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    history = _service(stack, "history")
    with (
        AcmeProxy(strict_pebble.directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        WorkerGroup(stack, task_queue, tmp_path) as workers,
    ):
        worker = workers.start("worker")
        _, orders = await _in_flight(stack, proxy, task_queue, tmp_path)
        await eventually(
            lambda: _some_orders_created(proxy), "orders under way", timeout=60, workers=(worker,)
        )
        killed = _pid(history)
        os.kill(killed, signal.SIGKILL)
        await eventually(lambda: _dead(killed), "the history service to die", timeout=10)
        await asyncio.sleep(3)
        history.start()
        history.wait_healthy(60)
        await _all_issued(orders, proxy, stack, strict_pebble.roots_path, (worker,))
        assert worker.alive(), "the worker rides out the history service's restart"


async def _dead(pid: int) -> str | None:
    return None if pid_alive(pid) else f"pid {pid} gone"


async def test_two_workers_share_the_queue_and_one_dies_mid_load(
    stack: StackInfo, strict_pebble: PebbleEndpoints, task_queue: str, tmp_path: Path
) -> None:
    tls_ca = create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    with (
        AcmeProxy(strict_pebble.directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        WorkerGroup(stack, task_queue, tmp_path) as workers,
    ):
        first, second = workers.start("worker-a"), workers.start("worker-b")
        _, orders = await _in_flight(stack, proxy, task_queue, tmp_path)
        await eventually(
            lambda: _some_orders_created(proxy),
            "orders under way",
            timeout=60,
            workers=(first, second),
        )
        first.kill()
        await _all_issued(orders, proxy, stack, strict_pebble.roots_path, (second,))
        assert second.alive()
