"""What the bridge is sent: the newest snapshot, and never a stalled issuance while it is away."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import OrderProgress
from acmeflow.workflows.certificate import (
    CertificateWorkflow,
)
from acmeflow.workflows.order import OrderResult, OrderWorkflow
from tests.workflows.doubles import (
    FakeBridge,
    FakeCa,
    Fakes,
    Running,
    certificate_input,
    eventually,
    order_input,
)

GUARD_S = 120
"""Real seconds before a run that should end in skipped minutes counts as stalled."""


@dataclass(frozen=True)
class Ended:
    result: OrderResult
    progress: OrderProgress
    """What the closed workflow's ``progress`` query answers."""
    took: timedelta
    """Workflow time from start to close."""


async def run_order(running: Running) -> Ended:
    handle = await running.start(
        OrderWorkflow.run, order_input(running.observer_queue), id="order/default/www-1234"
    )
    result: OrderResult = await asyncio.wait_for(handle.result(), GUARD_S)
    events = (await handle.fetch_history()).events
    took = events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()
    return Ended(result, await handle.query(OrderWorkflow.progress), took)


async def test_an_order_is_issued_while_the_bridge_is_away(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    fakes = Fakes(bridge=FakeBridge(away=True))
    ca, bridge = fakes.ca, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        ended = await run_order(running)

    assert ended.result.state == "valid"
    assert ca.calls.times[ActivityName.DOWNLOAD_CERTIFICATE], "the order went all the way"
    assert bridge.orders == [] and bridge.refused > 0
    # Two bounded waits (before presenting, at the end), each at most two 2-minute attempts.
    assert ended.took <= timedelta(minutes=8)
    # What the bridge missed, the closed workflow still tells: its final snapshot.
    assert ended.progress.state == "valid"
    assert [e.reason for e in ended.progress.events] == [
        "Created",
        "Started",
        "Presented",
        "DomainVerified",
        "OrderValid",
    ]


async def test_a_slow_bridge_sees_fewer_snapshots_and_the_newest_last(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    held = threading.Event()
    fakes = Fakes(bridge=FakeBridge(hold=held))
    ca, bridge = fakes.ca, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        handle = await running.start(
            OrderWorkflow.run, order_input(running.observer_queue), id="order/default/www-1234"
        )

        async def planned() -> bool:
            return bool((await handle.query(OrderWorkflow.progress)).challenges)

        await eventually(planned, "the challenge to be planned while the bridge holds v1")
        held.set()
        result: OrderResult = await asyncio.wait_for(handle.result(), GUARD_S)
        final = await handle.query(OrderWorkflow.progress)

    assert result.state == "valid"
    seen = [update.progress.version for update in bridge.orders]
    assert seen[0] == 1
    assert seen[1] > 2, "snapshots made while v1 was on its way were coalesced"
    assert seen == sorted(set(seen))
    assert len(seen) < final.version
    newest = bridge.orders[-1].progress
    assert newest.version == final.version
    assert newest.state == "valid"
    assert [e.reason for e in newest.events][-1] == "OrderValid"
    # The bridge had the Challenge (to create its resource) before anything was presented.
    with_challenge = next(i for i, u in enumerate(bridge.orders) if u.progress.challenges)
    [presented_at] = ca.calls.times[ActivityName.PRESENT_HTTP01]
    assert bridge.received_at[with_challenge] <= presented_at


async def test_a_certificate_delivers_a_missed_round_s_events_in_its_next_run(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    fakes = Fakes(ca=FakeCa(refused_names={"www.example.com"}), bridge=FakeBridge(away=True))
    cluster, bridge = fakes.cluster, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        await running.start(
            CertificateWorkflow.run,
            certificate_input(running.observer_queue),
            id="certificate/default/web",
        )
        await workflow_env.sleep(timedelta(minutes=30))  # the round fails and ends meanwhile
        assert bridge.certificates == [] and bridge.refused > 0
        bridge.away = False
        await workflow_env.sleep(timedelta(minutes=30))  # within the back-off's first hour
        await eventually(lambda: bool(bridge.certificates), "the bridge to hear again")

    # Each Event once, by the name the bridge gives it (its workflow time and sequence).
    events = {(e.at, e.seq): e.reason for u in bridge.certificates for e in u.status.events}
    assert [events[key] for key in sorted(events)] == ["Generated", "OrderCreated", "Failed"]
    assert len(cluster.calls.times[ActivityName.PREPARE_PRIVATE_KEY]) == 1, "still backing off"
    status = bridge.certificates[-1].status
    assert status.failed_issuance_attempts == 1
    assert status.ready == "False"
