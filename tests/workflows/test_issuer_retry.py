"""An Issuer whose CA refuses: Ready=False with the reason, retries 5 s doubling to 5 min."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.workflows.issuer_account import IssuerAccountInput, IssuerAccountWorkflow
from tests.workflows.doubles import (
    CA,
    FakeBridge,
    FakeRegistrar,
    Running,
    eventually,
    fake_issuer,
    workers,
)

REGISTER = ActivityName.ENSURE_ACCOUNT


@pytest.fixture
async def running_issuer(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[tuple[Running, FakeRegistrar, FakeBridge]]:
    registrar, bridge = FakeRegistrar(), FakeBridge()
    async with workers(workflow_env, task_queue, registrar.activities(), bridge) as running:
        yield running, registrar, bridge


def issuer(
    observer_queue: str, *, generation: int = 1, server: str = f"{CA}/directory"
) -> IssuerAccountInput:
    return IssuerAccountInput(
        kind="Issuer",
        namespace="default",
        name="letsencrypt",
        uid="uid-issuer",
        generation=generation,
        issuer=fake_issuer(server),
        observer_task_queue=observer_queue,
    )


async def start(running: Running) -> WorkflowHandle[Any, Any]:
    return await running.start(
        IssuerAccountWorkflow.run,
        issuer(running.observer_queue),
        id="issuer/default/letsencrypt",
    )


def seconds(gaps: list[timedelta]) -> list[int]:
    return [round(gap.total_seconds()) for gap in gaps]


async def test_a_refusing_ca_is_retried_with_growing_delays_until_it_answers(
    running_issuer: tuple[Running, FakeRegistrar, FakeBridge],
) -> None:
    running, registrar, bridge = running_issuer
    registrar.answers_after = 9
    await start(running)
    await running.env.sleep(timedelta(minutes=25))
    await eventually(
        lambda: bool(bridge.issuers) and bridge.issuers[-1].status.ready == "True",
        "the issuer to become Ready",
    )

    assert seconds(registrar.calls.gaps(REGISTER)) == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    first = bridge.issuers[0].status
    assert (first.ready, first.reason) == ("False", "ErrRegisterACMEAccount")
    assert first.message == (
        "Failed to register ACME account: "
        "ACME server refused the request (serverInternal): try later"
    )
    last = bridge.issuers[-1].status
    assert (last.ready, last.reason) == ("True", "ACMEAccountRegistered")
    assert last.account_uri == f"{CA}/directory/account/7"


async def test_an_update_restarts_registration_at_once_with_the_new_settings(
    running_issuer: tuple[Running, FakeRegistrar, FakeBridge],
) -> None:
    running, registrar, bridge = running_issuer
    handle = await start(running)
    await running.env.sleep(timedelta(minutes=4))  # tried at 0, 5, 15, 35, 75, 155 s
    await eventually(lambda: len(registrar.calls.times[REGISTER]) == 6, "six attempts")
    updated_at = await running.env.get_current_time()
    fixed = f"{CA}/fixed-directory"
    registrar.answers_after = 6
    await handle.signal(
        IssuerAccountWorkflow.update, issuer(running.observer_queue, generation=2, server=fixed)
    )
    await eventually(
        lambda: bool(bridge.issuers) and bridge.issuers[-1].status.ready == "True",
        "the issuer to become Ready",
    )

    retried_at = registrar.calls.times[REGISTER][6]
    assert retried_at - updated_at < timedelta(seconds=5)  # not the 160 s the back-off had left
    assert registrar.calls.args[REGISTER][6].server == fixed
    status = bridge.issuers[-1].status
    assert status.observed_generation == 2
    assert status.account_uri == f"{fixed}/account/7"


async def test_a_rate_limited_registration_waits_exactly_what_the_ca_asked(
    running_issuer: tuple[Running, FakeRegistrar, FakeBridge],
) -> None:
    running, registrar, bridge = running_issuer
    registrar.answers_after, registrar.rate_limit = 2, timedelta(hours=3)
    await start(running)
    await running.env.sleep(timedelta(hours=7))
    await eventually(
        lambda: bool(bridge.issuers) and bridge.issuers[-1].status.ready == "True",
        "the issuer to become Ready",
    )

    # Not 5 s, 10 s: the CA's Retry-After, each time it answers with one.
    assert seconds(registrar.calls.gaps(REGISTER)) == [3 * 3600, 3 * 3600]
    first = bridge.issuers[0].status
    assert (first.ready, first.reason) == ("False", "ErrRegisterACMEAccount")
    assert first.message.startswith(
        "Failed to register ACME account: rate limited by the CA until "
    )
    assert first.message.endswith(": too many registrations")
