"""A user's namespace deleted while the worker is down: no TXT record stays in the zone.

The TSIG Secret that presented the records goes with the namespace, so only the copy that
presenting kept in acmeflow's own namespace (activities/credential_copies.py) can sign
the deletes. The worker checks DNS-01 propagation against a port where nothing answers,
so its orders stay presented until something ends them; it is a real
``acmeflow worker --kubernetes`` process, SIGKILLed and restarted with its own command line.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.activities.credential_copies import COPY_LABEL
from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    dns01_solver,
    issuer_manifest,
    order_manifest,
    tsig_secret,
    unique,
    wait_for,
)
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace
from tests.orders.durability_workers import REPO_ROOT, WorkerProcess, start_worker
from tests.orders.history_search import HistoryText, Secret, text_secret
from tests.orders.order_harness import txt_values

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack, timeout_s=180.0)  # room for a namespace deletion to finish
    install_acmeflow_crds(kubectl)
    return kubectl


@pytest.fixture
def own_namespace(kubectl: Kubectl) -> Iterator[str]:
    """Stands in for acmeflow's namespace, so this test sees only its own copies."""
    with temporary_namespace(kubectl, "acmeflow-own") as name:
        yield name


@pytest.fixture
def user_namespace(stack: StackInfo, kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "doomed") as name:
        kubectl.create(tsig_secret(stack, name))
        kubectl.create(issuer_manifest(stack, name, "dns", solvers=[dns01_solver(stack)]))
        yield name


@pytest.fixture
def bridge(stack: StackInfo, tmp_path: Path) -> Iterator[tuple[BridgeProcess, str]]:
    """A bridge process and the task queue its workflows go to."""
    worker_queue = unique("ns-deleted-orders")
    process = BridgeProcess(stack, worker_queue, unique("ns-deleted-bridge"), tmp_path / "b.log")
    process.start()
    yield process, worker_queue
    process.stop()


def copies(kubectl: Kubectl, namespace: str) -> list[str]:
    """The clean-up copies the worker keeps in ``namespace``."""
    listed = kubectl("get", "secrets", "-n", namespace, "-l", f"{COPY_LABEL}=true", "-o", "name")
    return listed.stdout.split()


def namespace_exists(kubectl: Kubectl, namespace: str) -> bool:
    return kubectl("get", "namespace", namespace, check=False).returncode == 0


def statuses(stack: StackInfo, workflow_ids: list[str]) -> dict[str, str]:
    """Each workflow's status, ``+cancel`` once a cancellation was requested of it."""

    async def describe() -> dict[str, str]:
        client = await Client.connect(stack.temporal_address)
        found = {}
        for workflow_id in workflow_ids:
            description = await client.get_workflow_handle(workflow_id).describe()
            status = description.status or WorkflowExecutionStatus.RUNNING
            requested = description.raw_description.workflow_extended_info.cancel_requested
            found[workflow_id] = status.name + ("+cancel" if requested else "")
        return found

    return asyncio.run(describe())


def histories_holding(stack: StackInfo, workflow_ids: list[str], secret: Secret) -> list[str]:
    """The workflows whose history holds ``secret`` in any encoding."""

    async def search() -> list[str]:
        client = await Client.connect(stack.temporal_address)
        holding = []
        for workflow_id in workflow_ids:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            if HistoryText(history).contains(secret):
                holding.append(workflow_id)
        return holding

    return asyncio.run(search())


def restarted(worker: WorkerProcess) -> WorkerProcess:
    """The same command line again, logging to the same file."""
    with worker.log_path.open("ab") as log:
        popen = subprocess.Popen(
            worker.popen.args,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return WorkerProcess(f"{worker.name}-again", popen, worker.log_path)


def test_deleting_the_namespace_while_the_worker_is_down_leaves_no_record(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: tuple[BridgeProcess, str],
    own_namespace: str,
    user_namespace: str,
    tmp_path: Path,
) -> None:
    _, task_queue = bridge
    base = f"nsdel-{uuid.uuid4().hex[:6]}.{stack.dns_zone.rstrip('.')}"
    orders = {
        "wild": [f"*.{base}", base],  # a wildcard and its apex: two values, one record name
        "www": [f"www.{base}"],
        "api": [f"api.{base}"],
    }
    records = {dns01_record_name(names[-1]): len(names) for names in orders.values()}
    worker = start_worker(
        "worker",
        stack,
        task_queue,
        tmp_path,
        self_check_dns_port=free_port(),
        extra_args=[
            *("--kubernetes", "true", "--kubeconfig", str(stack.kubeconfig)),
            *("--own-namespace", own_namespace),
        ],
    )
    workers = [worker]
    try:
        for name, names in orders.items():
            kubectl.create(order_manifest(user_namespace, name, names, issuer="dns"))
        wait_for(
            lambda: all(len(txt_values(stack, r)) == n for r, n in records.items()),
            "all 4 TXT values to be presented",
        )
        assert len(copies(kubectl, own_namespace)) == 4
        [www_value] = txt_values(stack, dns01_record_name(f"www.{base}"))
        worker.kill()

        kubectl("delete", "namespace", user_namespace, "--wait=true", "--timeout=120s")
        assert not namespace_exists(kubectl, user_namespace)
        workflow_ids = [f"order/{user_namespace}/{name}" for name in orders]
        wait_for(
            lambda: set(statuses(stack, workflow_ids).values()) == {"RUNNING+cancel"},
            "the bridge to cancel every workflow of the deleted namespace",
        )
        assert all(txt_values(stack, r) for r in records)  # still there: nobody cleaned up

        workers.append(restarted(worker))
        wait_for(
            lambda: set(statuses(stack, workflow_ids).values()) == {"CANCELED+cancel"},
            "every workflow to end cancelled",
            timeout_s=120,
        )
        assert {r: txt_values(stack, r) for r in records} == {r: [] for r in records}
        assert copies(kubectl, own_namespace) == []
        tsig = text_secret("TSIG secret", stack.tsig_secret_path.read_text().strip())
        assert histories_holding(stack, workflow_ids, tsig) == []
        # The search does read these histories: the (public) TXT value is in its order's.
        www = f"order/{user_namespace}/www"
        assert histories_holding(stack, workflow_ids, text_secret("TXT", www_value)) == [www]
    finally:
        for each in workers:
            each.stop()
        print(f"worker log ({worker.log_path}):\n{worker.log()}")
