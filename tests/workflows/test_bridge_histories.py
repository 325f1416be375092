"""Histories with a bridge, recorded now by today's code, replay (tests/orders replays the
recorded ones, made by the code before the reshaping)."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from acmeflow.worker.sandbox import workflow_runner
from acmeflow.workflows.certificate import CertificateWorkflow
from acmeflow.workflows.issuer_account import IssuerAccountWorkflow
from acmeflow.workflows.order import OrderWorkflow
from tests.workflows.record_histories import HISTORIES, record


async def test_fresh_histories_with_a_bridge_replay(test_server: None, tmp_path: Path) -> None:
    recorded = await record(tmp_path)
    replayer = Replayer(
        workflows=[OrderWorkflow, CertificateWorkflow, IssuerAccountWorkflow],
        workflow_runner=workflow_runner(),
    )
    for path in recorded:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, path.name
    assert {p.name for p in recorded} <= {p.name for p in HISTORIES.glob("*.json")}
