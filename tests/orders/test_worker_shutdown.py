"""A worker stopped in the middle of an order lets go of it cleanly; the next one finishes.

When a worker shuts down, Python closes the coroutines of the runs it held. Clean-up code
that tried to start an activity then (a ``finally``) raised inside the SDK, where another
workflow's loop could be running; it must wait for the worker that resumes the run.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import build_worker
from acmeflow.workflows.order import OrderWorkflow
from tests.orders.order_harness import issuer, leftover_tokens, prepare, start, worker_config

PRESENTED_TIMEOUT_S = 60.0


async def test_shutdown_mid_challenge_raises_nothing_and_the_next_worker_cleans_up(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    prepared = prepare([f"shutdown-{uuid.uuid4().hex[:8]}.example.com"], issuer(stack, tmp_path))
    # Nothing listens on this port: the self-check keeps failing, the token stays presented.
    stuck = worker_config(stack, task_queue, self_check_http01_port=free_port())
    async with build_worker(temporal_client, stuck):
        handle = await start(temporal_client, prepared, task_queue)
        async with asyncio.timeout(PRESENTED_TIMEOUT_S):
            while True:
                progress = await handle.query(OrderWorkflow.progress)
                if progress.challenges and progress.challenges[0].presented:
                    break
                await asyncio.sleep(0.2)
    gc.collect()
    assert [str(u.object) for u in unraisable] == []

    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        result = await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    assert result.state == "valid"
    assert leftover_tokens(stack, progress) == []
