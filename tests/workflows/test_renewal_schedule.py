"""The renewal time in skipped time: the CA's ARI window, its Retry-After, and the jitter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, is_cancelled_exception
from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.certificate import SecretInspection
from acmeflow.contracts.errors import ACME_PROBLEM
from acmeflow.contracts.renewal_info import RenewalInfo, RenewalInfoRequest
from acmeflow.workflows.certificate import CertificateWorkflow
from acmeflow.workflows.renewal_schedule import JITTER_SHARE
from tests.workflows.doubles import (
    CA,
    LIFETIME,
    Calls,
    FakeBridge,
    FakeCa,
    FakeCluster,
    certificate_input,
    eventually,
    workers,
)

ARI = ActivityName.FETCH_RENEWAL_INFO
ISSUE = ActivityName.PREPARE_PRIVATE_KEY
STORE = ActivityName.STORE_CERTIFICATE
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class AriCluster(FakeCluster):
    """Certificates with an ARI id; the n-th stored one is ``aki.serial<n>``."""

    def inspection(self) -> SecretInspection:
        found = super().inspection()
        if not found.up_to_date:
            return found
        return replace(found, certificate_id=f"aki.serial{len(self.calls.times[STORE])}")


@dataclass
class FakeAri:
    """The CA's renewalInfo: a window per certificate id, else ``default``; or it fails."""

    calls: Calls = field(default_factory=Calls)
    default: RenewalInfo = field(default_factory=lambda: RenewalInfo(offered=False))
    windows: dict[str, RenewalInfo] = field(default_factory=dict)
    failure: str = ""
    hold: threading.Event | None = None
    """Answer only once this is set (or after 10 s)."""

    def activities(self) -> list[Callable[..., Any]]:
        ari = self

        @activity.defn(name=ARI)
        def fetch_renewal_info(request: RenewalInfoRequest) -> RenewalInfo:
            ari.calls.record(ARI, request)
            if ari.hold is not None:
                ari.hold.wait(timeout=10)
            if ari.failure:
                raise ApplicationError(ari.failure, type=ACME_PROBLEM, non_retryable=True)
            return ari.windows.get(request.certificate_id, ari.default)

        return [fetch_renewal_info]


def window(start: datetime, end: datetime, retry_after: timedelta) -> RenewalInfo:
    return RenewalInfo(
        offered=True, start=stamp(start), end=stamp(end), retry_after_s=retry_after.total_seconds()
    )


@dataclass
class Setup:
    issued_at: datetime
    cluster: AriCluster
    ari: FakeAri
    ca: FakeCa = field(default_factory=FakeCa)
    bridge: FakeBridge = field(default_factory=FakeBridge)

    def running(self, env: WorkflowEnvironment, task_queue: str) -> Any:
        activities = [*self.ca.activities(), *self.cluster.activities(), *self.ari.activities()]
        return workers(env, task_queue, activities, self.bridge)

    def status(self) -> Any:
        return self.bridge.certificates[-1].status


async def issued_now(env: WorkflowEnvironment, ari: FakeAri) -> Setup:
    """A Certificate whose Secret already holds a certificate issued this second."""
    issued_at = (await env.get_current_time()).replace(microsecond=0)
    return Setup(issued_at, AriCluster(not_before=issued_at), ari)


async def start(running: Any) -> Any:
    return await running.start(
        CertificateWorkflow.run,
        certificate_input(running.observer_queue),
        id="certificate/default/web",
    )


async def test_the_ca_window_sets_the_renewal_and_the_new_order_replaces_the_old(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    ari = FakeAri()
    setup = await issued_now(workflow_env, ari)
    opens, closes = setup.issued_at + 30 * DAY, setup.issued_at + 31 * DAY
    ari.windows["aki.serial0"] = window(opens, closes, retry_after=10 * DAY)
    async with setup.running(workflow_env, task_queue) as running:
        await start(running)
        await eventually(lambda: bool(setup.bridge.certificates), "the first status")
        planned = setup.status()
        await workflow_env.sleep(32 * DAY)
        await eventually(lambda: len(setup.cluster.calls.times[STORE]) == 1, "the renewal")

    assert planned.renewal_rule == (
        f"ARI window {stamp(opens)} to {stamp(closes)} (retry after 240h)"
    )
    renew_at = when(planned.renewal_time)
    assert opens <= renew_at <= closes
    assert renew_at != opens  # a point inside the window, not its start
    [renewed_at] = setup.cluster.calls.times[ISSUE]
    assert abs(renewed_at - renew_at) < MINUTE
    asked = ari.calls.args[ARI]
    assert asked[0].certificate_id == "aki.serial0"
    assert asked[0].server == f"{CA}/directory"
    # Asked again after 10 and 20 days (same window, same point), then renewed at it.
    assert [round(g / DAY) for g in ari.calls.gaps(ARI)][:2] == [10, 10]
    [order] = setup.ca.calls.args[ActivityName.CREATE_ORDER]
    assert order.replaces == "aki.serial0"


async def test_a_window_moved_earlier_is_seen_at_the_next_retry_after_and_renews_then(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    ari = FakeAri()
    setup = await issued_now(workflow_env, ari)
    first = window(setup.issued_at + 59 * DAY, setup.issued_at + 61 * DAY, retry_after=6 * HOUR)
    ari.windows["aki.serial0"] = first
    async with setup.running(workflow_env, task_queue) as running:
        await start(running)
        await eventually(lambda: len(ari.calls.times[ARI]) == 1, "the first ARI read")
        await eventually(lambda: bool(setup.bridge.certificates), "the first status")
        planned = setup.status().renewal_time
        await workflow_env.sleep(HOUR)
        revoked_at = await workflow_env.get_current_time()
        # As Pebble answers for a revoked certificate: a window that closed an hour ago.
        ari.windows["aki.serial0"] = window(
            revoked_at - HOUR, revoked_at - HOUR + timedelta(seconds=1), retry_after=6 * HOUR
        )
        await workflow_env.sleep(6 * HOUR)
        await eventually(lambda: len(setup.cluster.calls.times[STORE]) == 1, "the renewal")
        await eventually(lambda: len(ari.calls.times[ARI]) >= 3, "the new certificate's read")

    assert setup.issued_at + 59 * DAY <= when(planned)
    first_read, second_read = ari.calls.times[ARI][:2]
    assert abs((second_read - first_read) - 6 * HOUR) < MINUTE  # the CA's Retry-After
    [renewed_at] = setup.cluster.calls.times[ISSUE]
    assert renewed_at - second_read < MINUTE  # at once: the window is in the past
    assert renewed_at - setup.issued_at < DAY  # not the 59 days first planned
    assert ari.calls.args[ARI][2].certificate_id == "aki.serial1"  # the new one is asked about
    [order] = setup.ca.calls.args[ActivityName.CREATE_ORDER]
    assert order.replaces == "aki.serial0"


async def test_an_ari_outage_keeps_the_lifetime_rule_with_a_stable_jitter(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    problem = RenewalInfo(offered=True, problem="the CA answered 503", retry_after_s=25 * 86400)
    ari = FakeAri(default=problem)
    setup = await issued_now(workflow_env, ari)
    two_thirds = setup.issued_at + LIFETIME * 2 / 3
    async with setup.running(workflow_env, task_queue) as running:
        handle = await start(running)
        await eventually(lambda: bool(setup.bridge.certificates), "the first status")
        planned = setup.status()
        # A Secret event starts another round: it plans the very same time.
        await handle.signal(CertificateWorkflow.secret_changed, "web-tls")
        await eventually(lambda: len(ari.calls.times[ARI]) == 2, "the second round")
        await workflow_env.sleep(HOUR)  # the second round has planned and is asleep
        again = await handle.query(CertificateWorkflow.status)
        await workflow_env.sleep(61 * DAY)
        await eventually(lambda: len(setup.cluster.calls.times[STORE]) == 1, "the renewal")

    assert (again.renewal_time, again.renewal_rule) == (planned.renewal_time, planned.renewal_rule)
    assert planned.renewal_rule.startswith("2/3 of the lifetime, jitter -")
    assert planned.renewal_rule.endswith("(ARI unavailable: the CA answered 503; retry after 600h)")
    renew_at = when(planned.renewal_time)
    assert two_thirds - LIFETIME * JITTER_SHARE <= renew_at < two_thirds
    [renewed_at] = setup.cluster.calls.times[ISSUE]
    assert abs(renewed_at - renew_at) < MINUTE


async def test_a_failing_ari_step_is_said_and_the_lifetime_rule_stands(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    ari = FakeAri(failure="renewalInfo answered garbage")
    setup = await issued_now(workflow_env, ari)
    async with setup.running(workflow_env, task_queue) as running:
        await start(running)
        await eventually(
            lambda: bool(setup.bridge.certificates) and bool(setup.status().renewal_rule),
            "the planned renewal",
        )
        status = setup.status()

    assert (status.ready, status.failed_issuance_attempts) == ("True", 0)
    assert "ARI unavailable: renewalInfo answered garbage" in status.renewal_rule
    assert status.renewal_rule.endswith("retry after 1h)")
    assert when(status.renewal_time) < setup.issued_at + LIFETIME * 2 / 3


async def test_a_certificate_deleted_while_the_ca_is_asked_is_cancelled_not_kept_alive(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The bridge cancels a deleted Certificate's workflow; a cancel that lands during the
    ARI step is not an ARI outage to fall back from."""
    ari = FakeAri(hold=threading.Event())
    setup = await issued_now(workflow_env, ari)
    async with setup.running(workflow_env, task_queue) as running:
        handle = await start(running)
        await eventually(lambda: len(ari.calls.times[ARI]) == 1, "the ARI step")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await asyncio.wait_for(handle.result(), timeout=20)
        ari.hold.set()

    assert is_cancelled_exception(ended.value.cause)
