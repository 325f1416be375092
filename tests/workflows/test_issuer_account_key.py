"""An Issuer's workflow looks at its account key again while Ready, and says a replaced key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.workflows.issuer_account import IssuerAccountWorkflow
from tests.workflows.doubles import CA, FakeBridge, FakeRegistrar, Running, eventually, workers
from tests.workflows.test_issuer_retry import issuer

CHECK = timedelta(minutes=5)


@pytest.fixture
async def running_issuer(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[tuple[Running, FakeRegistrar, FakeBridge]]:
    registrar, bridge = FakeRegistrar(answers_after=0), FakeBridge()
    async with workers(workflow_env, task_queue, registrar.activities(), bridge) as running:
        yield running, registrar, bridge


async def test_a_replaced_account_key_is_noticed_and_said(
    running_issuer: tuple[Running, FakeRegistrar, FakeBridge],
) -> None:
    running, registrar, bridge = running_issuer
    start = replace(issuer(running.observer_queue), key_check_s=CHECK.total_seconds())
    await running.start(IssuerAccountWorkflow.run, start, id="issuer/default/letsencrypt")
    await running.env.sleep(CHECK * 3 + timedelta(seconds=30))
    await eventually(
        lambda: len(registrar.calls.times[ActivityName.ENSURE_ACCOUNT]) == 4, "four looks"
    )
    # Three looks that found the same key published nothing after the first Ready.
    assert [u.status.ready for u in bridge.issuers] == ["True"]
    assert bridge.issuers[0].status.account_uri == f"{CA}/directory/account/7"

    registrar.thumbprint, registrar.account_number = "key-2", 8
    await running.env.sleep(CHECK)
    await eventually(lambda: len(bridge.issuers) == 2, "a second snapshot")
    status = bridge.issuers[-1].status
    assert (status.ready, status.reason) == ("True", "ACMEAccountRegistered")
    assert status.account_uri == f"{CA}/directory/account/8"
    assert status.message.startswith(
        f"Registered a new ACME account {CA}/directory/account/8 because the account key "
        "in file /nonexistent/account.pem changed"
    )
    assert f"({CA}/directory/account/7)" in status.message
    [event] = status.events
    assert (event.kind, event.reason, event.type) == ("Issuer", "AccountKeyChanged", "Normal")
    assert event.message == status.message


async def test_without_a_key_check_only_a_spec_change_looks_again(
    running_issuer: tuple[Running, FakeRegistrar, FakeBridge],
) -> None:
    running, registrar, bridge = running_issuer
    await running.start(
        IssuerAccountWorkflow.run, issuer(running.observer_queue), id="issuer/default/letsencrypt"
    )
    await running.env.sleep(timedelta(hours=2))
    await eventually(lambda: bool(bridge.issuers), "the issuer to become Ready")
    assert len(registrar.calls.times[ActivityName.ENSURE_ACCOUNT]) == 1
