"""Record an OrderWorkflow history for the replay test: ``python -m tests.orders.record_history``.

Run it against a running dev stack when a deliberate, versioned change to the workflow
makes the old recording obsolete; the replay test then guards the new shape.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client

from acmeflow.devstack.stack import StackInfo, default_state_dir
from acmeflow.worker.build import build_worker
from tests.orders.order_harness import (
    dns01_solver,
    http01_solver,
    issuer,
    prepare,
    start,
    worker_config,
)

HISTORIES = Path(__file__).parent / "histories"


async def record(stack: StackInfo, directory: Path = HISTORIES) -> Path:
    client = await Client.connect(stack.temporal_address)
    task_queue = f"record-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(
            ["*.example.com", "example.com", "test1.example.com"],
            issuer(stack, Path(tmp), solvers=[http01_solver(), dns01_solver(stack)]),
        )
        async with build_worker(client, worker_config(stack, task_queue)):
            handle = await start(client, prepared, task_queue)
            await handle.result()
        history = await handle.fetch_history()
    target = directory / "order_wildcard_apex_http01.json"
    target.write_text(history.to_json())
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, default=default_state_dir())
    path = asyncio.run(record(StackInfo.load(parser.parse_args().state_dir)))
    print(f"recorded {path}")
