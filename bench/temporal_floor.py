"""What Temporal alone costs on this machine: N workflows of K no-op activities, at once.

The floor under ``bench/orders.py``: an ``OrderWorkflow`` for one name runs about twelve
activities one after another, so on the same machine and dev server no design with that
many durable steps issues faster than these empty workflows complete, whatever the steps
do. For each K it prints completions per second and the CPU milliseconds per workflow
of this process (client and worker, with the same sandbox as ``acmeflow worker``) and
of the Temporal dev server. The last line is one JSON object.

    .venv/bin/python bench/temporal_floor.py [--workflows 200] [--steps 0 4 12]
                                             [--state-dir DIR]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():  # the sandbox re-imports this module
    from harness.acmeflow_api import StackInfo, workflow_runner
    from harness.processes import cpu_sample
    from harness.stack import (
        acmeflow_stack,
        argument_parser,
        print_json_line,
        stack_pids,
        stop_on_sigterm,
    )

CONCURRENT_ACTIVITIES = 200
"""As ``acmeflow worker``'s default, so both benchmarks poll alike."""


@activity.defn
def empty_step(n: int) -> int:
    return n + 1


@workflow.defn
class EmptySteps:
    @workflow.run
    async def run(self, steps: int) -> int:
        done = 0
        for _ in range(steps):
            done = await workflow.execute_activity(
                empty_step, done, start_to_close_timeout=timedelta(seconds=30)
            )
        return done


async def measure(client: Client, temporal_pid: int, workflows: int, steps: int) -> dict[str, Any]:
    queue = f"floor-{uuid.uuid4().hex[:6]}"
    watched = {"this process": os.getpid(), "temporal": temporal_pid}
    async with Worker(
        client,
        task_queue=queue,
        workflows=[EmptySteps],
        activities=[empty_step],
        activity_executor=ThreadPoolExecutor(max_workers=CONCURRENT_ACTIVITIES),
        max_concurrent_activities=CONCURRENT_ACTIVITIES,
        workflow_runner=workflow_runner(),
    ):
        before, started = cpu_sample(watched), time.monotonic()
        handles = [
            await client.start_workflow(EmptySteps.run, steps, id=f"{queue}-{i}", task_queue=queue)
            for i in range(workflows)
        ]
        results = await asyncio.gather(*(h.result() for h in handles))
        after, elapsed = cpu_sample(watched), time.monotonic() - started
    assert results == [steps] * workflows
    cpu_ms = {
        name: 1000 * (after.by_process[name] - before.by_process[name]) / workflows
        for name in watched
    }
    return {
        "steps": steps,
        "per_s": round(workflows / elapsed, 2),
        "worker_cpu_ms": round(cpu_ms["this process"], 1),
        "temporal_cpu_ms": round(cpu_ms["temporal"], 1),
    }


async def benchmark(stack: StackInfo, workflows: int, steps: list[int]) -> list[dict[str, Any]]:
    client = await Client.connect(stack.temporal_address, namespace=stack.temporal_namespace)
    temporal_pid = stack_pids(stack)["temporal"]
    figures = []
    for k in steps:
        row = await measure(client, temporal_pid, workflows, k)
        print(
            f"{workflows} workflows of {k:2d} empty activities at once: {row['per_s']:6.1f}/s; "
            f"CPU per workflow: worker+client {row['worker_cpu_ms']:.0f} ms, "
            f"Temporal {row['temporal_cpu_ms']:.0f} ms",
            flush=True,
        )
        figures.append(row)
    return figures


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--workflows", type=int, default=200, help="workflows at once")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 4, 12])
    args = parser.parse_args()
    stop_on_sigterm()
    with acmeflow_stack(args.state_dir, with_acmeflow=False) as stack:
        figures = asyncio.run(benchmark(stack, args.workflows, args.steps))
    print_json_line({"workflows": args.workflows, "floor": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
