"""A Certificate's waits, in skipped time: back-off after failures, and the renewal timer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.workflows.certificate import (
    CertificateInput,
    CertificateWorkflow,
)
from acmeflow.workflows.renewal_schedule import JITTER_SHARE
from tests.workflows.doubles import (
    LIFETIME,
    FakeCa,
    FakeCluster,
    Fakes,
    Running,
    certificate_input,
    eventually,
)

REFUSED = "refused.example.com"
ACCEPTED = "www.example.com"
ISSUE = ActivityName.PREPARE_PRIVATE_KEY
"""The first step of every issuance attempt."""


async def start(running: Running, value: CertificateInput) -> WorkflowHandle[Any, Any]:
    return await running.start(CertificateWorkflow.run, value, id="certificate/default/web")


def hours(gaps: list[timedelta]) -> list[float]:
    """Gaps to the minute, in hours: the workflow's waits, not the doubles' milliseconds."""
    return [round(gap / timedelta(minutes=1)) / 60 for gap in gaps]


async def test_failed_issuances_back_off_from_one_hour_doubling_to_32_hours(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    fakes = Fakes(ca=FakeCa(refused_names={REFUSED}))
    cluster, bridge = fakes.cluster, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        await start(running, certificate_input(running.observer_queue, REFUSED))
        await workflow_env.sleep(timedelta(hours=100))
        await eventually(
            lambda: (
                len(cluster.calls.times[ISSUE]) == 8
                and bridge.certificates[-1].status.failed_issuance_attempts == 8
            ),
            "the eighth failed attempt to reach the bridge",
        )

    assert hours(cluster.calls.gaps(ISSUE)) == [1, 2, 4, 8, 16, 32, 32]
    status = bridge.certificates[-1].status
    assert (status.ready, status.ready_reason) == ("False", "Failed")
    assert f"the CA refuses {REFUSED}" in status.ready_message
    assert cluster.calls.times[ActivityName.STORE_CERTIFICATE] == []


async def test_a_spec_change_cuts_the_back_off_short_and_issues_at_once(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    fakes = Fakes(ca=FakeCa(refused_names={REFUSED}))
    cluster, bridge = fakes.cluster, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        handle = await start(running, certificate_input(running.observer_queue, REFUSED))
        await workflow_env.sleep(timedelta(hours=5))  # failed at 0h, 1h, 3h; backs off 4h
        await eventually(lambda: len(cluster.calls.times[ISSUE]) == 3, "three attempts")
        changed_at = await workflow_env.get_current_time()
        await handle.signal(
            CertificateWorkflow.update,
            certificate_input(running.observer_queue, ACCEPTED, generation=2),
        )
        await eventually(
            lambda: bool(bridge.certificates) and bridge.certificates[-1].status.ready == "True",
            "the certificate to be Ready",
        )

    fixed_at = cluster.calls.times[ISSUE][3]
    assert fixed_at - changed_at < timedelta(minutes=1)  # not the 4h the back-off had left
    [stored] = cluster.calls.args[ActivityName.STORE_CERTIFICATE]
    assert stored.secret_name == "web-tls"
    status = bridge.certificates[-1].status
    assert status.failed_issuance_attempts == 0
    assert status.observed_generation == 2
    assert status.revision == 1


@pytest.mark.parametrize(
    ("renew_before", "percentage", "renews_after", "rule"),
    [
        (timedelta(0), 0, timedelta(days=60), "2/3 of the lifetime, jitter -"),
        (timedelta(days=10), 0, timedelta(days=80), "renewBefore 240h, jitter -"),
        (timedelta(0), 25, timedelta(days=67.5), "renewBefore 540h, jitter -"),
    ],
    ids=["two-thirds-of-the-lifetime", "renew-before", "renew-before-percentage"],
)
async def test_an_up_to_date_certificate_sleeps_until_its_renewal_time(
    workflow_env: WorkflowEnvironment,
    task_queue: str,
    renew_before: timedelta,
    percentage: int,
    renews_after: timedelta,
    rule: str,
) -> None:
    """At the rule's time, made earlier (never later) by the jitter that spreads renewals."""
    issued_at = (await workflow_env.get_current_time()).replace(microsecond=0)
    fakes = Fakes(cluster=FakeCluster(not_before=issued_at))
    cluster, bridge = fakes.cluster, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        await start(
            running,
            certificate_input(
                running.observer_queue,
                ACCEPTED,
                renew_before=renew_before,
                renew_before_percentage=percentage,
            ),
        )
        await eventually(lambda: bool(bridge.certificates), "the first status")
        renewal = bridge.certificates[-1].status.renewal_time
        renewal_rule = bridge.certificates[-1].status.renewal_rule
        planned = _when(renewal)
        await workflow_env.sleep(planned - issued_at - timedelta(hours=1))
        assert cluster.calls.times[ISSUE] == []  # still sleeping an hour before
        await workflow_env.sleep(timedelta(hours=2))
        await eventually(
            lambda: len(cluster.calls.times[ActivityName.STORE_CERTIFICATE]) == 1,
            "the renewed certificate to be stored",
        )

    rule_time = issued_at + renews_after
    assert rule_time - LIFETIME * JITTER_SHARE <= planned <= rule_time
    assert renewal_rule.startswith(rule)
    [renewed_at] = cluster.calls.times[ISSUE]
    assert abs(renewed_at - planned) < timedelta(minutes=1)
    assert _when(bridge.certificates[-1].status.renewal_time) > renewed_at


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)
