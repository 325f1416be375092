"""An OrderWorkflow obtains real certificates from Pebble through BIND9 and the responder."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import build_worker
from acmeflow.workflows.order import OrderWorkflow
from tests.orders.order_harness import (
    assert_certificate,
    dns01_solver,
    http01_solver,
    issuer,
    leftover_tokens,
    prepare,
    start,
    txt_values,
    worker_config,
)


async def test_http01_certificate_for_two_names(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    names = ["test1.example.com", "test2.example.com"]
    prepared = prepare(names, issuer(stack, tmp_path, solvers=[http01_solver()]))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        result = await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    assert result.state == "valid"
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    assert [c.spec.type for c in progress.challenges] == ["HTTP-01", "HTTP-01"]
    assert [(e.reason, e.message) for e in progress.events if e.kind == "Order"] == [
        (
            "Created",
            f'Created Challenge resource "{prepared.order.order_name}-0" '
            'for domain "test1.example.com"',
        ),
        (
            "Created",
            f'Created Challenge resource "{prepared.order.order_name}-1" '
            'for domain "test2.example.com"',
        ),
        ("OrderValid", "Order completed successfully"),
    ]
    assert leftover_tokens(stack, progress) == []


async def test_dns01_certificate_through_bind(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    names = ["test3.example.com"]
    prepared = prepare(names, issuer(stack, tmp_path, solvers=[dns01_solver(stack)]))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        result = await (await start(temporal_client, prepared, task_queue)).result()
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    assert txt_values(stack, dns01_record_name("test3.example.com")) == []


async def test_wildcard_and_apex_share_the_challenge_name(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    names = ["*.example.com", "example.com"]
    solvers = [http01_solver(), dns01_solver(stack)]
    prepared = prepare(names, issuer(stack, tmp_path, solvers=solvers))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        result = await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    by_wildcard = {c.spec.wildcard: c.spec.type for c in progress.challenges}
    # The CA offers only DNS-01 for the wildcard; the apex prefers the first solver.
    assert by_wildcard == {True: "DNS-01", False: "HTTP-01"}
    assert txt_values(stack, dns01_record_name("example.com")) == []


async def test_wildcard_and_apex_both_by_dns01(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    names = ["*.example.com", "example.com"]
    prepared = prepare(names, issuer(stack, tmp_path, solvers=[dns01_solver(stack)]))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        result = await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    assert sorted(c.spec.type for c in progress.challenges) == ["DNS-01", "DNS-01"]
    assert len({c.spec.key for c in progress.challenges}) == 2
    assert txt_values(stack, dns01_record_name("example.com")) == []
