"""A Ready certificate whose TLS Secret changes: looked at again at once, reissued if broken."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.certificate import SecretInspection
from acmeflow.workflows.certificate import CertificateWorkflow
from tests.workflows.doubles import FakeCluster, Fakes, certificate_input, eventually

INSPECT = ActivityName.INSPECT_CERTIFICATE_SECRET
ISSUE = ActivityName.PREPARE_PRIVATE_KEY
REFUSED_LATER = "www.example.com"
BROKEN = SecretInspection(
    False,
    "Issuing certificate as the Secret's private key is not the key of its certificate",
    violation="InvalidKeyPair",
)
GONE = SecretInspection(
    False, 'Issuing certificate as Secret "web-tls" does not exist', violation="DoesNotExist"
)


@dataclass
class TamperedCluster(FakeCluster):
    """A cluster whose TLS Secret someone breaks: the next look finds it so, and what
    acmeflow stores after that is good again."""

    broken: SecretInspection | None = None

    def inspection(self) -> SecretInspection:
        found, self.broken = self.broken, None
        return found or super().inspection()


async def test_a_broken_secret_is_reissued_at_once_and_says_why(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    cluster = TamperedCluster()
    fakes = Fakes(cluster=cluster)
    bridge = fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        handle = await running.start(
            CertificateWorkflow.run,
            certificate_input(running.observer_queue),
            id="certificate/default/web",
        )
        await eventually(
            lambda: bool(bridge.certificates) and bridge.certificates[-1].status.ready == "True",
            "the first certificate",
        )
        await workflow_env.sleep(timedelta(days=3))  # asleep until the renewal, 57 days away
        cluster.broken = BROKEN
        broken_at = await workflow_env.get_current_time()
        await handle.signal(CertificateWorkflow.secret_changed, "web-tls")
        await eventually(lambda: len(cluster.calls.times[ISSUE]) == 2, "the reissue")
        await eventually(
            lambda: (
                bridge.certificates[-1].status.revision == 2
                and bridge.certificates[-1].status.ready == "True"
            ),
            "the reissued certificate to be Ready",
        )

    reissued_at = cluster.calls.times[ISSUE][1]
    assert reissued_at - broken_at < timedelta(minutes=1)  # not the renewal, weeks later
    seen = [
        (u.status.ready, u.status.ready_reason, u.status.ready_message) for u in bridge.certificates
    ]
    assert ("False", "InvalidKeyPair", BROKEN.reason) in seen
    issuing = [(u.status.issuing, u.status.issuing_reason) for u in bridge.certificates]
    assert (True, "InvalidKeyPair") in issuing
    events = [(e.type, e.reason, e.message) for u in bridge.certificates for e in u.status.events]
    assert ("Normal", "Issuing", BROKEN.reason) in events


async def test_a_secret_that_is_still_good_is_only_looked_at(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    """As after acmeflow's own write: one more look, no issuance, the renewal still planned."""
    fakes = Fakes()
    cluster, bridge = fakes.cluster, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        handle = await running.start(
            CertificateWorkflow.run,
            certificate_input(running.observer_queue),
            id="certificate/default/web",
        )
        await eventually(
            lambda: bool(bridge.certificates) and bridge.certificates[-1].status.ready == "True",
            "the first certificate",
        )
        # One look before the issuance, one in the round after it, which sleeps.
        await eventually(lambda: len(cluster.calls.times[INSPECT]) == 2, "the round after")
        renewal = bridge.certificates[-1].status.renewal_time
        looks = 2
        await handle.signal(CertificateWorkflow.secret_changed, "web-tls")
        await eventually(lambda: len(cluster.calls.times[INSPECT]) == looks + 1, "another look")
        await handle.signal(CertificateWorkflow.secret_changed, "other-tls")  # not its Secret
        await workflow_env.sleep(timedelta(days=1))

    assert len(cluster.calls.times[INSPECT]) == looks + 1
    assert len(cluster.calls.times[ISSUE]) == 1
    status = bridge.certificates[-1].status
    assert (status.ready, status.renewal_time) == ("True", renewal)


async def test_failed_renewals_back_off_until_the_secret_breaks(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The old certificate still serves, so the CA is asked again after 1h, 2h, 4h ...,
    not as fast as it refuses; once the Secret breaks, at once."""
    cluster = TamperedCluster()
    fakes = Fakes(cluster=cluster)
    ca, bridge = fakes.ca, fakes.bridge
    async with fakes.running(workflow_env, task_queue) as running:
        handle = await running.start(
            CertificateWorkflow.run,
            certificate_input(running.observer_queue, REFUSED_LATER),
            id="certificate/default/web",
        )
        await eventually(
            lambda: bool(bridge.certificates) and bridge.certificates[-1].status.ready == "True",
            "the first certificate",
        )
        ca.refused_names.add(REFUSED_LATER)
        renewal = datetime.fromisoformat(bridge.certificates[-1].status.renewal_time)
        await workflow_env.sleep(
            renewal - await workflow_env.get_current_time() + timedelta(hours=10)
        )
        await eventually(lambda: len(cluster.calls.times[ISSUE]) == 5, "four renewal attempts")
        await eventually(
            lambda: bridge.certificates[-1].status.failed_issuance_attempts == 4, "4 failures"
        )
        cluster.broken = GONE
        broken_at = await workflow_env.get_current_time()
        await handle.signal(CertificateWorkflow.secret_changed, "web-tls")
        await eventually(lambda: len(cluster.calls.times[ISSUE]) == 6, "the attempt at once")

    renewals = cluster.calls.times[ISSUE][1:5]
    gaps = [round((b - a) / timedelta(hours=1)) for a, b in itertools.pairwise(renewals)]
    assert gaps == [1, 2, 4]
    assert cluster.calls.times[ISSUE][5] - broken_at < timedelta(minutes=1)  # not 8h later
    seen = [(u.status.ready, u.status.ready_reason) for u in bridge.certificates]
    assert ("True", "Ready") in seen and ("False", "DoesNotExist") in seen
