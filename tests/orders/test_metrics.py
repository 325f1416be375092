"""One ``acmeflow worker --metrics-bind`` process, a known set of orders, its ``/metrics``.

Each worker process has its own registry, so after two HTTP-01 orders, one DNS-01 order,
one name the CA refuses and one order cancelled while its CA is unreachable, the counts on
this worker's endpoint are exact. Querying the finished workflows makes the worker replay
their histories; the counts must not move.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import CancelledError

from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.order import CANCELLED_REASON, OrderTimeouts, OrderWorkflow
from tests.orders.durability_workers import (
    WorkerProcess,
    eventually,
    result_within,
    start_worker,
)
from tests.orders.order_harness import dns01_solver, issuer, prepare, start
from tests.prometheus_text import Sample, names, scrape, total

ORDERS_TIMEOUT_S = 120.0
UNAVAILABLE = "AcmeUnavailable"
TASKS = "temporal_workflow_task_execution_latency_count"


def _name(label: str) -> str:
    return f"metrics-{label}-{uuid.uuid4().hex[:8]}.example.com"


async def _scrape_until(
    worker: WorkerProcess, bind: str, what: str, ready: Callable[[list[Sample]], bool]
) -> list[Sample]:
    """The worker's samples once ``ready`` holds for them."""

    async def probe() -> list[Sample] | None:
        samples = await asyncio.to_thread(scrape, bind)
        return samples if samples is not None and ready(samples) else None

    return await eventually(probe, what, timeout=30, workers=(worker,))


async def test_worker_metrics_count_the_orders_it_ran(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    bind = f"127.0.0.1:{free_port()}"
    orders = [
        prepare([_name("a"), _name("b")], issuer(stack, tmp_path)),
        prepare([_name("c")], issuer(stack, tmp_path)),
        prepare([_name("d")], issuer(stack, tmp_path, solvers=[dns01_solver(stack)])),
        prepare(["blocked.test"], issuer(stack, tmp_path)),
        prepare(
            [_name("e")],
            issuer(stack, tmp_path, server=f"https://127.0.0.1:{free_port()}/dir"),
            timeouts=OrderTimeouts(acme_call_s=600),
        ),
    ]
    worker = start_worker(
        "metrics-worker", stack, task_queue, tmp_path, extra_args=["--metrics-bind", bind]
    )
    try:
        await _scrape_until(worker, bind, f"/metrics on {bind}", lambda _: True)
        handles = [await start(temporal_client, order, task_queue) for order in orders]
        for handle in handles[:3]:
            assert (await result_within(handle, ORDERS_TIMEOUT_S, (worker,))).state == "valid"
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handles[3].result(), ORDERS_TIMEOUT_S)
        await _scrape_until(
            worker,
            bind,
            "the unreachable CA counted",
            lambda s: total(s, "acmeflow_acme_errors_total", problem=UNAVAILABLE) > 0,
        )
        await handles[4].cancel()
        with pytest.raises(WorkflowFailureError) as cancelled:
            await asyncio.wait_for(handles[4].result(), ORDERS_TIMEOUT_S)
        assert isinstance(cancelled.value.cause, CancelledError)
        samples = await _scrape_until(
            worker,
            bind,
            "five completed orders, none left in the workflow cache",
            lambda s: (
                total(s, "acmeflow_orders_completed_total") >= 5
                and total(s, "temporal_sticky_cache_size") == 0
            ),
        )
        # Closed workflows have left the cache (above): a query replays the whole history,
        # one workflow task each, on this worker.
        endings = [(await h.query(OrderWorkflow.progress)).reason for h in handles]
        replayed = await _scrape_until(
            worker,
            bind,
            "the queries' workflow tasks",
            lambda s: total(s, TASKS) >= total(samples, TASKS) + len(handles),
        )
    finally:
        worker.stop()

    assert total(samples, "acmeflow_orders_completed_total", state="valid") == 3
    # The refused name, and the order cancelled in the middle of an activity.
    assert total(samples, "acmeflow_orders_completed_total", state="errored") == 2
    assert endings[4] == CANCELLED_REASON
    assert total(samples, "acmeflow_orders_completed_total") == 5
    assert total(samples, "acmeflow_order_duration_seconds_count") == 5
    assert total(samples, "acmeflow_order_duration_seconds_sum") > 0
    assert total(samples, "acmeflow_order_duration_seconds_bucket", le="3600") == 5
    assert total(samples, "acmeflow_challenge_duration_seconds_count", type="HTTP-01") == 3
    assert total(samples, "acmeflow_challenge_duration_seconds_count", type="DNS-01") == 1
    assert total(samples, "acmeflow_acme_errors_total", problem="rejectedIdentifier") >= 1
    assert total(samples, "acmeflow_acme_errors_total", problem=UNAVAILABLE) >= 1
    assert total(samples, "acmeflow_rate_limit_wait_seconds_total") == 0
    # The Temporal SDK's own metrics share the endpoint.
    assert total(samples, "temporal_workflow_completed_total", workflow_type="OrderWorkflow") == 3
    assert total(samples, "temporal_workflow_failed_total", workflow_type="OrderWorkflow") == 1
    assert total(samples, "temporal_workflow_canceled_total", workflow_type="OrderWorkflow") == 1
    assert "temporal_activity_execution_latency_count" in names(samples)

    for metric in (
        "acmeflow_orders_completed_total",
        "acmeflow_order_duration_seconds_count",
        "acmeflow_challenge_duration_seconds_count",
    ):
        assert total(replayed, metric) == total(samples, metric), f"{metric} moved on replay"
