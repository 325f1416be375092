"""Bridge replicas electing a leader on a real coordination.k8s.io Lease: one leads, the
other stands by doing nothing, and takes over when the leader is killed (lease duration) or
stops on SIGTERM (it releases the Lease), with every Order and Certificate finishing and no
Event written twice.

Times are measured and printed (``-s``), not asserted: the tests assert who holds the Lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.resource_ids import workflow_id
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    object_events,
    order_manifest,
    order_state,
    tls_secret,
    unique,
    wait_for,
    wait_for_ready,
    wait_for_state,
    workflow_runs,
)
from tests.health.probes import get
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack

LEASE_DURATION_S = 4
RENEW_DEADLINE_S = 3.0
RETRY_PERIOD_S = 0.5
IN_FLIGHT = 4
"""Orders and as many Certificates in flight when the leader is killed."""
SETTLE_S = 3.0
"""How long a standby with a full work queue is watched for doing anything."""


@dataclass
class Replica:
    process: BridgeProcess
    bind: str

    @property
    def pid(self) -> int:
        assert self.process.popen is not None
        return self.process.popen.pid

    def role(self) -> str:
        """The ``role:`` line of a 200 /readyz; empty while not ready."""
        reply = get(self.bind, "/readyz")
        if reply is None or reply[0] != 200:
            return ""
        lines = [line for line in reply[1].splitlines() if line.startswith("role: ")]
        return lines[0].removeprefix("role: ") if lines else ""

    def signal(self, sig: signal.Signals) -> None:
        os.killpg(self.pid, sig)


Start = Callable[[str], Replica]


@pytest.fixture
def lease() -> str:
    return unique("bridge-lease")


@pytest.fixture
def start_replica(
    stack: StackInfo, queues: tuple[str, str], namespace: str, lease: str, tmp_path: Path
) -> Iterator[Start]:
    """Starts ``acmeflow bridge --leader-elect`` replicas on one Lease and one pair of task
    queues (a bridge queue of the test's own, so its pollers are the test's replicas)."""
    bridge_queue = unique("bridge")
    started: list[Replica] = []

    def start(label: str) -> Replica:
        bind = f"127.0.0.1:{free_port()}"
        process = BridgeProcess(
            stack,
            queues[0],
            bridge_queue,
            tmp_path / f"bridge-{label}.log",
            extra_args=[
                *("--metrics-bind", bind),
                *("--leader-elect", "true"),
                *("--leader-election-lease", lease),
                *("--leader-election-namespace", namespace),
                *("--leader-election-lease-duration-s", str(LEASE_DURATION_S)),
                *("--leader-election-renew-deadline-s", str(RENEW_DEADLINE_S)),
                *("--leader-election-retry-period-s", str(RETRY_PERIOD_S)),
            ],
        )
        process.start()
        started.append(Replica(process, bind))
        return started[-1]

    yield start
    for replica in started:
        if replica.process.popen is not None and replica.process.popen.poll() is None:
            replica.signal(signal.SIGCONT)
        replica.process.kill()
        print(f"{replica.process.log_path.name}:\n{replica.process.log()[-3000:]}")


def lease_spec(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    result = kubectl("get", "lease", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    spec: dict[str, Any] = json.loads(result.stdout).get("spec", {})
    return spec


def holder(kubectl: Kubectl, namespace: str, name: str) -> str:
    return str(lease_spec(kubectl, namespace, name).get("holderIdentity", ""))


def leader_identity(replica: Replica) -> str:
    role: str = wait_for(
        lambda: (r := replica.role()).startswith("leader (") and r, "a replica to lead"
    )
    return role.removeprefix("leader (").removesuffix(")")


def leader_and_standby(start_replica: Start) -> tuple[Replica, str, Replica]:
    """A first replica leading (with its identity), and a second one ready as its standby."""
    first = start_replica("first")
    leader = leader_identity(first)
    second = start_replica("second")
    wait_for(lambda: second.role() == f"standby (leader: {leader})", "a ready standby")
    return first, leader, second


def new_holder(kubectl: Kubectl, namespace: str, lease: str, former: str) -> str:
    """The next holder the Lease names after ``former`` (polled every 0.1 s)."""
    found: str = wait_for(
        lambda: (h := holder(kubectl, namespace, lease)) not in ("", former) and h,
        f"the Lease to name another holder than {former}",
        timeout_s=60,
        interval_s=0.1,
    )
    return found


def mirror_pollers(stack: StackInfo, task_queue: str) -> list[str]:
    """Identities (``pid@host``) polling ``task_queue`` for activities: the progress mirrors."""

    async def describe() -> list[str]:
        client = await Client.connect(stack.temporal_address)
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return [poller.identity for poller in answer.pollers]

    return asyncio.run(describe())


def repeated_events(kubectl: Kubectl, namespace: str) -> list[str]:
    """Events of the namespace that say the same thing about the same object twice."""
    items = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    said = Counter(
        (
            e["involvedObject"]["kind"],
            e["involvedObject"]["name"],
            e["involvedObject"].get("uid", ""),
            e["reason"],
            e["message"],
        )
        for e in items
    )
    repeats = [f"{n}x {what}" for what, n in said.items() if n > 1]
    counted = [f"count {e['count']}: {e['message']}" for e in items if e.get("count", 1) != 1]
    return repeats + counted


def secret_names(kubectl: Kubectl, namespace: str, secret: str) -> list[str]:
    data = tls_secret(kubectl, namespace, secret)
    assert data is not None and data.get("tls.key"), f"Secret {secret} has no key"
    leaf = x509.load_pem_x509_certificates(data["tls.crt"])[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(san.get_values_for_type(x509.DNSName))


def test_one_leads_and_the_standby_takes_over_a_killed_leaders_orders(
    kubectl: Kubectl, namespace: str, lease: str, order_worker: None, start_replica: Start
) -> None:
    first, leader, second = leader_and_standby(start_replica)
    assert holder(kubectl, namespace, lease) == leader
    assert first.role() == f"leader ({leader})"
    transitions = lease_spec(kubectl, namespace, lease)["leaseTransitions"]

    prefix = unique("le")
    orders = [f"order-{i}" for i in range(IN_FLIGHT)]
    certificates = [f"cert-{i}" for i in range(IN_FLIGHT)]
    for i, name in enumerate(orders):
        kubectl.create(order_manifest(namespace, name, [f"{prefix}-o{i}.example.com"]))
    for i, name in enumerate(certificates):
        kubectl.create(certificate_manifest(namespace, name, [f"{prefix}-c{i}.example.com"]))
    # Mid-order: the leader has written some progress, not all of it.
    wait_for(
        lambda: any(order_state(kubectl, namespace, name) for name in orders),
        "the leader to write an Order's state",
        interval_s=0.05,
    )
    states = [order_state(kubectl, namespace, name) for name in orders]
    first.signal(signal.SIGKILL)
    killed = time.monotonic()

    successor = new_holder(kubectl, namespace, lease, leader)
    takeover_s = time.monotonic() - killed
    assert leader_identity(second) == successor
    print(
        f"\nkilled the leader with Orders at {states}; the standby held the Lease "
        f"{takeover_s:.2f}s later (lease {LEASE_DURATION_S}s, retry {RETRY_PERIOD_S}s)"
    )
    assert lease_spec(kubectl, namespace, lease)["leaseTransitions"] == transitions + 1

    for name in orders:
        assert wait_for_state(kubectl, namespace, name, ("valid",), timeout_s=240) == "valid"
        status = kubectl.get("order", name, namespace=namespace)["status"]
        assert status["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    for i, name in enumerate(certificates):
        wait_for_ready(kubectl, "certificate", namespace, name, timeout_s=240)
        assert secret_names(kubectl, namespace, f"{name}-tls") == [f"{prefix}-c{i}.example.com"]
    print(
        f"every Order valid and Certificate Ready {time.monotonic() - killed:.1f}s after the kill"
    )
    assert repeated_events(kubectl, namespace) == []
    for name in orders:
        reasons = [e[1] for e in object_events(kubectl, namespace, "Order", name)]
        assert reasons.count("OrderValid") == 1, reasons


def test_sigterm_releases_the_lease_and_the_standby_takes_over_at_once(
    kubectl: Kubectl, namespace: str, lease: str, start_replica: Start
) -> None:
    first, leader, second = leader_and_standby(start_replica)

    # A frozen standby cannot take the Lease: what SIGTERM leaves behind stays to be seen.
    second.signal(signal.SIGSTOP)
    first.signal(signal.SIGTERM)
    assert first.process.popen is not None and first.process.popen.wait(30) == 0
    spec = lease_spec(kubectl, namespace, lease)
    assert spec.get("holderIdentity", "") == "", spec
    assert f"released Lease {namespace}/{lease} as {leader}" in first.process.log()
    second.signal(signal.SIGCONT)
    resumed = time.monotonic()
    successor = new_holder(kubectl, namespace, lease, leader)
    resumed_s = time.monotonic() - resumed
    assert leader_identity(second) == successor

    # Unfrozen all along: the time a user sees from SIGTERM to the new leader.
    third = start_replica("third")
    wait_for(lambda: third.role() == f"standby (leader: {successor})", "a new standby")
    second.signal(signal.SIGTERM)
    stopped = time.monotonic()
    newest = new_holder(kubectl, namespace, lease, successor)
    handover_s = time.monotonic() - stopped
    assert leader_identity(third) == newest
    assert second.process.popen is not None and second.process.popen.wait(30) == 0
    print(
        f"\nreleased Lease taken {resumed_s:.2f}s after the frozen standby resumed; "
        f"SIGTERM to new holder: {handover_s:.2f}s (lease {LEASE_DURATION_S}s, "
        f"retry {RETRY_PERIOD_S}s)"
    )


def test_a_frozen_leader_is_replaced_and_exits_when_it_wakes(
    kubectl: Kubectl, namespace: str, lease: str, start_replica: Start
) -> None:
    first, leader, second = leader_and_standby(start_replica)

    first.signal(signal.SIGSTOP)  # alive but silent: a hung node, a long GC pause
    frozen = time.monotonic()
    successor = new_holder(kubectl, namespace, lease, leader)
    print(f"\nthe standby took the Lease {time.monotonic() - frozen:.2f}s after the freeze")
    assert leader_identity(second) == successor
    first.signal(signal.SIGCONT)
    assert first.process.popen is not None and first.process.popen.wait(30) == 1
    assert f"lost Lease {namespace}/{lease} as {leader}" in first.process.log()
    assert holder(kubectl, namespace, lease) == successor


def test_a_standby_starts_no_workflow_and_writes_nothing_until_it_leads(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
    lease: str,
    order_worker: None,
    start_replica: Start,
) -> None:
    names = [f"{unique('standby')}.example.com"]
    kubectl.create(order_manifest(namespace, "waiting", names))
    kubectl.create(certificate_manifest(namespace, "waiting-cert", [f"cert-{names[0]}"]))
    with LeaseHeld(kubectl, namespace, lease, "someone-else"):
        replica = start_replica("standby")
        # Ready: its informers have listed the Order and the Certificate and queued them.
        wait_for(lambda: replica.role() == "standby (leader: someone-else)", "a ready standby")
        time.sleep(SETTLE_S)  # room to misbehave; a leader starts the workflows at once
        for kind, name in (("Order", "waiting"), ("Certificate", "waiting-cert")):
            assert workflow_runs(stack, workflow_id(kind, namespace, name)) == []
        assert workflow_runs(stack, workflow_id("Issuer", namespace, "pebble")) == []
        assert order_state(kubectl, namespace, "waiting") == ""
        assert (
            json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
            == []
        )
        bridge_queue = replica.process.bridge_task_queue
        assert mirror_pollers(stack, bridge_queue) == []
        abandoned = time.monotonic()
    identity = leader_identity(replica)
    print(f"\nthe standby led {time.monotonic() - abandoned:.2f}s after the Lease was abandoned")
    assert holder(kubectl, namespace, lease) == identity
    assert wait_for_state(kubectl, namespace, "waiting", ("valid",)) == "valid"
    wait_for_ready(kubectl, "certificate", namespace, "waiting-cert")
    assert any(p.startswith(f"{replica.pid}@") for p in mirror_pollers(stack, bridge_queue))


class LeaseHeld:
    """Another replica holding the Lease and renewing it every second, until the block ends."""

    def __init__(self, kubectl: Kubectl, namespace: str, name: str, identity: str) -> None:
        self._kubectl = kubectl
        self._namespace = namespace
        self._name = name
        self._identity = identity
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)

    def __enter__(self) -> LeaseHeld:
        now = _micro_now()
        self._kubectl.create(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self._name, "namespace": self._namespace},
                "spec": {
                    "holderIdentity": self._identity,
                    "leaseDurationSeconds": LEASE_DURATION_S,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
        )
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._done.wait(1.0):
            patch = json.dumps({"spec": {"renewTime": _micro_now()}})
            self._kubectl(
                "patch", "lease", self._name, "-n", self._namespace, "--type=merge", "-p", patch
            )

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(10)


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
