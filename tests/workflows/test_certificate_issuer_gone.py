"""A Certificate whose issuer is gone holds its renewal, in skipped time, until it is back."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.workflows.certificate import CertificateWorkflow
from tests.workflows.doubles import FakeCluster, Fakes, certificate_input, eventually

GONE = 'Waiting for Issuer "default/fake-issuer" to exist; issuance starts as soon as it does'
ISSUE = ActivityName.PREPARE_PRIVATE_KEY


async def test_a_renewal_due_while_the_issuer_is_gone_waits_for_it(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    issued_at = (await workflow_env.get_current_time()).replace(microsecond=0)
    fakes = Fakes(cluster=FakeCluster(not_before=issued_at))
    cluster, bridge = fakes.cluster, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        handle = await running.start(
            CertificateWorkflow.run,
            certificate_input(running.observer_queue),
            id="certificate/default/web",
        )
        await eventually(lambda: bool(bridge.certificates), "the first status")
        renewal = datetime.fromisoformat(bridge.certificates[-1].status.renewal_time)
        await handle.signal(CertificateWorkflow.issuer_unavailable, GONE)
        await eventually(
            lambda: bridge.certificates[-1].status.ready_reason == "IssuerNotReady",
            "the certificate to say its issuer is gone",
        )
        await workflow_env.sleep(renewal - issued_at + timedelta(days=5))
        held = list(cluster.calls.times[ISSUE])
        back_at = await workflow_env.get_current_time()
        await handle.signal(CertificateWorkflow.update, certificate_input(running.observer_queue))
        await eventually(
            lambda: len(cluster.calls.times[ActivityName.STORE_CERTIFICATE]) == 1,
            "the held renewal to be stored",
        )

    assert held == []  # five days past the renewal time, and nothing issued
    [renewed_at] = cluster.calls.times[ISSUE]
    assert renewed_at - back_at < timedelta(minutes=1)
    status = bridge.certificates[-1].status
    assert (status.ready, status.ready_reason) == ("True", "Ready")
    gone = [s.status for s in bridge.certificates if s.status.ready_reason == "IssuerNotReady"]
    assert gone and gone[0].ready == "False" and gone[0].ready_message == GONE
    events = {(e.at, e.seq): e for s in bridge.certificates for e in s.status.events}
    warnings = [e for e in events.values() if e.reason == "IssuerNotReady"]
    assert [(e.type, e.message) for e in warnings] == [("Warning", GONE)]
