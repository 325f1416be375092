"""Record histories of the three workflows *with* a bridge, for the replay test.

``python -m tests.workflows.record_histories`` runs them on the time-skipping test server
against the doubles and writes ``tests/orders/histories/bridge_*.json``. The real-stack
recording (tests/orders/record_history.py) has no observer; these cover the publishing
paths: snapshots before presenting and at the end, continue-as-new, the Issuer's retry.
The files in the repository were recorded by the code before issue 11 reshaped the
workflows (commit d7b70c8), so their replay shows that today's code continues the
workflows running now. Re-record only for a deliberate, ``workflow.patched``-guarded
change of command sequence, and keep the old files beside the new ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from acmeflow.workflows.certificate import (
    CertificateWorkflow,
)
from acmeflow.workflows.issuer_account import IssuerAccountInput, IssuerAccountWorkflow
from acmeflow.workflows.order import OrderWorkflow
from tests.workflows.doubles import (
    FakeBridge,
    FakeCa,
    FakeRegistrar,
    Fakes,
    certificate_input,
    eventually,
    fake_issuer,
    order_input,
    start_test_server,
    workers,
)

HISTORIES = Path(__file__).parent.parent / "orders" / "histories"


async def record(directory: Path = HISTORIES) -> list[Path]:
    """Each scenario on a server of its own: what one leaves running stalls the next's clock."""
    written = []
    for name, scenario in SCENARIOS.items():
        env = await start_test_server()
        try:
            history_json = await scenario(env)
        finally:
            await env.shutdown()
        target = directory / f"{name}.json"
        target.write_text(history_json)
        written.append(target)
    return written


async def _order(env: WorkflowEnvironment) -> str:
    async with Fakes().running(env, "record-order") as running:
        handle = await running.start(
            OrderWorkflow.run,
            order_input(running.observer_queue),
            id="order/default/www-1234",
        )
        await handle.result()
        return await _history(handle)


async def _certificate(env: WorkflowEnvironment, *, refused: set[str]) -> str:
    fakes = Fakes(ca=FakeCa(refused_names=refused))
    async with fakes.running(env, f"record-certificate-{len(refused)}") as running:
        handle = await running.start(
            CertificateWorkflow.run,
            certificate_input(running.observer_queue),
            id=f"certificate/default/web-{len(refused)}",
        )
        first_run = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)

        async def continued() -> bool:
            return (await first_run.describe()).status != WorkflowExecutionStatus.RUNNING

        await eventually(continued, "the first round to continue as new")
        return await _history(first_run)


async def _issuer(env: WorkflowEnvironment) -> str:
    registrar, bridge = FakeRegistrar(answers_after=2), FakeBridge()
    async with workers(env, "record-issuer", registrar.activities(), bridge) as running:
        value = IssuerAccountInput(
            kind="Issuer",
            namespace="default",
            name="letsencrypt",
            uid="uid-issuer",
            generation=1,
            issuer=fake_issuer(),
            observer_task_queue=running.observer_queue,
        )
        handle = await running.start(
            IssuerAccountWorkflow.run, value, id="issuer/default/letsencrypt"
        )
        await env.sleep(60)  # refused twice, 5 s and 10 s apart, then registered
        await eventually(lambda: len(bridge.issuers) == 3, "Ready after two refusals")
        value.generation = 2
        await handle.signal(IssuerAccountWorkflow.update, value)
        await eventually(lambda: len(bridge.issuers) == 4, "Ready again for the new generation")
        return await _history(handle)


async def _history(handle: WorkflowHandle[Any, Any]) -> str:
    return (await handle.fetch_history()).to_json()


SCENARIOS: dict[str, Callable[[WorkflowEnvironment], Awaitable[str]]] = {
    "bridge_order_http01": _order,
    "bridge_certificate_issues": lambda env: _certificate(env, refused=set()),
    "bridge_certificate_fails": lambda env: _certificate(env, refused={"www.example.com"}),
    "bridge_issuer_retries": _issuer,
}


async def main() -> None:
    for path in await record():
        print(f"recorded {path}")


if __name__ == "__main__":
    asyncio.run(main())
