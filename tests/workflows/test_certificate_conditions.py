"""The Certificate's conditions at a renewal and right after a failure, in skipped time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import CertificateUpdate, ConditionReason
from acmeflow.workflows.certificate import CertificateInput, CertificateWorkflow
from tests.workflows.doubles import (
    FakeBridge,
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


async def _start(running: Running, value: CertificateInput) -> WorkflowHandle[Any, Any]:
    return await running.start(CertificateWorkflow.run, value, id="certificate/default/web")


async def test_a_scheduled_renewal_says_renewing_and_the_certificate_stays_ready(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    issued_at = (await workflow_env.get_current_time()).replace(microsecond=0)
    fakes = Fakes(cluster=FakeCluster(not_before=issued_at))
    cluster, bridge = fakes.cluster, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        await _start(running, certificate_input(running.observer_queue, ACCEPTED))
        await eventually(lambda: bool(bridge.certificates), "the first status")
        await workflow_env.sleep(timedelta(days=61))  # past 2/3 of 90 days, jitter or not
        await eventually(
            lambda: (
                len(cluster.calls.times[ActivityName.STORE_CERTIFICATE]) == 1
                and bridge.certificates[-1].status.revision == 1
            ),
            "the renewed certificate to be stored and shown",
        )

    renewing = [u.status for u in bridge.certificates if u.status.issuing]
    assert renewing, "no status showed the renewal"
    assert {s.issuing_reason for s in renewing} == {ConditionReason.RENEWING}
    assert "Renewing certificate as renewal was scheduled at" in renewing[0].issuing_message
    assert {s.ready for s in renewing} == {"True"}, "the old certificate still serves"
    done = bridge.certificates[-1].status
    assert (done.ready, done.issuing, done.issuing_reason) == ("True", False, "")
    assert done.next_private_key_secret_name == ""


@dataclass
class PatchingBridge(FakeBridge):
    """A user who changes the spec the moment the failure shows: the signal reaches the
    run that failed, before it hands over to the next (its last delivery is this one)."""

    patch: CertificateInput | None = None
    handle: WorkflowHandle[Any, Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    patched_at: list[Any] = field(default_factory=list)

    def receive(self, into: list[Any], update: Any) -> None:
        super().receive(into, update)
        failed = (
            isinstance(update, CertificateUpdate)
            and update.status.issuing_reason == ConditionReason.FAILED
        )
        if failed and not self.patched_at and self.handle and self.loop and self.patch:
            signal = self.handle.signal(CertificateWorkflow.update, self.patch)
            asyncio.run_coroutine_threadsafe(signal, self.loop).result(timeout=10)
            self.patched_at.append(True)


async def test_a_spec_change_as_the_failure_shows_issues_at_once_not_after_the_back_off(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    bridge = PatchingBridge()
    fakes = Fakes(ca=FakeCa(refused_names={REFUSED}), bridge=bridge)
    cluster = fakes.cluster
    async with fakes.running(workflow_env, task_queue) as running:
        bridge.patch = certificate_input(running.observer_queue, ACCEPTED, generation=2)
        bridge.loop = asyncio.get_running_loop()
        bridge.handle = await _start(running, certificate_input(running.observer_queue, REFUSED))
        # Real time only: the test server skips no time here, so an hour's back-off
        # would never end and the certificate would never be stored.
        await eventually(
            lambda: (
                len(cluster.calls.times[ActivityName.STORE_CERTIFICATE]) == 1
                and bridge.certificates[-1].status.ready == "True"
            ),
            "the certificate for the new spec to be stored and shown",
        )

    assert bridge.patched_at, "the spec was never changed"
    assert len(cluster.calls.times[ISSUE]) == 2
    done = bridge.certificates[-1].status
    assert (done.ready, done.failed_issuance_attempts, done.revision) == ("True", 0, 1)
