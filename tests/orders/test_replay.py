"""Recorded histories replay against today's workflow code: non-determinism fails CI.

``order_wildcard_apex_http01`` is a real-stack order without an observer
(record_history.py); the ``bridge_*`` ones are all three workflows publishing to a bridge,
recorded on the time-skipping server by the code before issue 11 (record_histories.py in
tests/workflows), so they stand for the workflows running when a worker is upgraded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import WORKFLOWS, build_worker
from acmeflow.worker.sandbox import workflow_runner
from tests.orders.order_harness import http01_solver, issuer, prepare, start, worker_config

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json("recorded", path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_there_is_a_recording() -> None:
    assert HISTORIES, "tests/orders/histories holds no recorded history"


async def test_a_fresh_history_replays(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    prepared = prepare(["test8.example.com"], issuer(stack, tmp_path, solvers=[http01_solver()]))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        await handle.result()
    result = await replayer().replay_workflow(await handle.fetch_history())
    assert result.replay_failure is None


async def test_the_recording_command_writes_a_replayable_history(
    stack: StackInfo, tmp_path: Path
) -> None:
    from tests.orders.record_history import record

    path = await record(stack, tmp_path)
    history = WorkflowHistory.from_json("fresh", path.read_text())
    result = await replayer().replay_workflow(history)
    assert result.replay_failure is None
    assert path.name in {p.name for p in HISTORIES}
