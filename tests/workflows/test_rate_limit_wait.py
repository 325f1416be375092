"""A rate limit of more than a day, in skipped time: waited out, then the order goes on.

The CA double answers new-order with the activity boundary's own ``RateLimited`` error
(Retry-After 25 h) twice before it creates the order. The Order says until when it waits
and stays non-final; its Certificate waits on it without counting a failed attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from acmeflow.activities.errors import rate_limited
from acmeflow.contracts.acme import AcmeOrderState, CreateOrderInput
from acmeflow.contracts.activities import ActivityName
from acmeflow.workflows.certificate import CertificateWorkflow
from acmeflow.workflows.order import rate_limited_message
from tests.workflows.doubles import (
    CA,
    FakeBridge,
    FakeCa,
    FakeCluster,
    certificate_input,
    eventually,
    workers,
)

RETRY_AFTER = timedelta(hours=25)
DETAIL = "too many new orders recently"
REFUSALS = 2


def rate_limiting_ca(ca: FakeCa, refusals: int) -> list[Callable[..., Any]]:
    """``ca``'s activities, but new-order answers rateLimited ``refusals`` times first."""

    @activity.defn(name=ActivityName.CREATE_ORDER)
    def create_order(request: CreateOrderInput) -> AcmeOrderState:
        ca.calls.record(ActivityName.CREATE_ORDER, request)
        if len(ca.calls.times[ActivityName.CREATE_ORDER]) <= refusals:
            raise rate_limited(
                f"create ACME order: ACME server refused the request (rateLimited): {DETAIL}",
                detail=DETAIL,
                wait=RETRY_AFTER,
            )
        return AcmeOrderState(
            url=f"{CA}/order/1",
            status="pending",
            finalize_url=f"{CA}/order/1/finalize",
            authorization_urls=[f"{CA}/authz/1"],
        )

    others = [a for a in ca.activities() if getattr(a, "__name__", "") != "create_order"]
    return [*others, create_order]


async def test_a_25_hour_rate_limit_is_waited_out_and_the_certificate_does_not_count_it(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    ca, cluster, bridge = FakeCa(), FakeCluster(), FakeBridge()
    activities = [*rate_limiting_ca(ca, REFUSALS), *cluster.activities()]
    async with workers(workflow_env, task_queue, activities, bridge) as running:
        await running.start(
            CertificateWorkflow.run,
            certificate_input(running.observer_queue),
            id="certificate/default/web",
        )
        await eventually(
            lambda: (
                bool(bridge.orders)
                and bridge.orders[-1].progress.reason.startswith("rate limited by the CA until")
            ),
            "the Order to say it is rate limited",
        )
        waiting = bridge.orders[-1].progress
        certificate_meanwhile = bridge.certificates[-1].status
        await workflow_env.sleep(RETRY_AFTER * REFUSALS + timedelta(hours=1))
        await eventually(
            lambda: bool(bridge.certificates) and bridge.certificates[-1].status.ready == "True",
            "the certificate to be Ready",
        )

    first_refusal, first_retry, _ = ca.calls.times[ActivityName.CREATE_ORDER]
    until = until_in(waiting.reason)
    assert first_refusal + RETRY_AFTER <= until < first_refusal + RETRY_AFTER + timedelta(seconds=5)
    assert first_retry >= until
    assert not waiting.final
    assert certificate_meanwhile.failed_issuance_attempts == 0
    # Asked again each time no earlier than the CA said, and not much later.
    gaps = ca.calls.gaps(ActivityName.CREATE_ORDER)
    assert len(gaps) == REFUSALS
    assert all(RETRY_AFTER <= gap < RETRY_AFTER + timedelta(minutes=1) for gap in gaps), gaps
    # Run again after a rate limit, new-order looks for an order the CA may have made.
    asked = ca.calls.args[ActivityName.CREATE_ORDER]
    assert [request.look_first for request in asked] == [False, True, True]
    final = bridge.orders[-1].progress
    assert final.state == "valid"
    assert final.reason == ""
    warnings = [(e.type, e.reason) for e in final.events if e.reason == "RateLimited"]
    assert warnings == [("Warning", "RateLimited")] * REFUSALS
    # One issuance attempt, never counted as failed: no back-off, no second key.
    assert len(cluster.calls.times[ActivityName.PREPARE_PRIVATE_KEY]) == 1
    status = bridge.certificates[-1].status
    assert status.failed_issuance_attempts == 0
    assert status.last_failure_time == ""
    assert len(cluster.calls.times[ActivityName.STORE_CERTIFICATE]) == 1


def until_in(reason: str) -> datetime:
    """The time a rate-limited Order's reason says it waits until."""
    prefix = "rate limited by the CA until "
    assert reason.startswith(prefix), reason
    stamp, detail = reason.removeprefix(prefix).split(": ", 1)
    assert detail == DETAIL
    assert rate_limited_message(datetime.fromisoformat(stamp), detail) == reason
    return datetime.fromisoformat(stamp)
