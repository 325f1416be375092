"""``--max-cached-workflows`` bounds the worker's memory without costing correctness.

A worker allowed two cached workflows runs six orders at once: its ``/metrics`` never
shows more than two in the cache, it evicts (so the cap took effect), and every order
still ends valid because evicted workflows are rebuilt from their histories.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import Client

from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from tests.orders.durability_workers import result_within, start_worker
from tests.orders.order_harness import issuer, prepare, start
from tests.prometheus_text import scrape, total

CACHE_CAP = 2
ORDERS = 6
ORDERS_TIMEOUT_S = 180.0
SCRAPE_EVERY_S = 0.1


async def test_capped_cache_evicts_and_still_issues(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    bind = f"127.0.0.1:{free_port()}"
    worker = start_worker(
        "capped-worker",
        stack,
        task_queue,
        tmp_path,
        extra_args=["--metrics-bind", bind, "--max-cached-workflows", str(CACHE_CAP)],
    )
    cache_sizes: list[float] = []
    finished = asyncio.Event()

    async def watch_cache() -> None:
        while not finished.is_set():
            samples = await asyncio.to_thread(scrape, bind)
            if samples is not None:
                cache_sizes.append(total(samples, "temporal_sticky_cache_size"))
            await asyncio.sleep(SCRAPE_EVERY_S)

    watcher = asyncio.create_task(watch_cache())
    try:
        orders = [
            prepare([f"cache-{uuid.uuid4().hex[:8]}.example.com"], issuer(stack, tmp_path))
            for _ in range(ORDERS)
        ]
        handles = [await start(temporal_client, order, task_queue) for order in orders]
        results = [await result_within(h, ORDERS_TIMEOUT_S, (worker,)) for h in handles]
        finished.set()
        await watcher
        samples = await asyncio.to_thread(scrape, bind)
    finally:
        finished.set()
        worker.stop()

    assert [r.state for r in results] == ["valid"] * ORDERS
    assert cache_sizes, "the worker's /metrics never answered"
    assert max(cache_sizes) <= CACHE_CAP
    assert samples is not None
    assert total(samples, "temporal_sticky_cache_total_forced_eviction_total") > 0
