"""Orders that end early: deleted, their namespace deleted, cancelled or terminated in Temporal.

This module's worker checks DNS-01 propagation against a port where nothing answers, so
its orders stay in flight with their TXT record presented until something ends them.
"""

from __future__ import annotations

import subprocess
import uuid

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.order import CANCELLED_REASON
from tests.bridge.bridge_harness import (
    BridgeProcess,
    challenge_names,
    describe_events,
    dns01_solver,
    issuer_manifest,
    order_manifest,
    order_state,
    wait_for,
    wait_for_state,
    workflow_runs,
)
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import txt_values

WORKER_OVERRIDES = {"self_check_dns_port": free_port()}


def _in_flight(stack: StackInfo, kubectl: Kubectl, namespace: str, order: str) -> str:
    """Start an order that stays presented; return its TXT record name."""
    name = f"ending-{order}-{uuid.uuid4().hex[:6]}.example.com"
    record = dns01_record_name(name)
    kubectl.create(issuer_manifest(stack, namespace, "dns", solvers=[dns01_solver(stack)]))
    kubectl.create(order_manifest(namespace, order, [name], issuer="dns"))
    wait_for(lambda: txt_values(stack, record), f"the TXT record of {order} to be presented")
    wait_for(
        lambda: (
            "propagation"
            in str(
                kubectl.get("challenge", f"{order}-0", namespace=namespace)
                .get("status", {})
                .get("reason")
            )
        ),
        "the Challenge to say why it waits",
    )
    return record


def _temporal(stack: StackInfo, *args: str) -> subprocess.CompletedProcess[str]:
    from acmeflow.devstack.temporal_server import temporal_cli

    return subprocess.run(
        [temporal_cli(), *args, "--address", stack.temporal_address],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_deleting_an_order_cancels_and_cleans_up(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    record = _in_flight(stack, kubectl, namespace, "doomed")
    reason = kubectl.get("challenge", "doomed-0", namespace=namespace)["status"]["reason"]
    assert "Waiting for DNS-01 challenge propagation" in reason
    kubectl("delete", "order", "doomed", "-n", namespace, "--wait=true")
    wait_for(
        lambda: workflow_runs(stack, f"order/{namespace}/doomed") == ["CANCELED"],
        "the deleted Order's workflow to be cancelled",
    )
    assert txt_values(stack, record) == []
    wait_for(
        lambda: challenge_names(kubectl, namespace, "doomed") == [],
        "the garbage collector to delete the Challenge",
    )


def test_a_namespace_deletes_while_the_bridge_is_down(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    record = _in_flight(stack, kubectl, namespace, "orphan")
    bridge.kill()
    try:
        kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=90s")
    finally:
        bridge.start()
    wait_for(
        lambda: workflow_runs(stack, f"order/{namespace}/orphan") == ["CANCELED"],
        "the restarted bridge to cancel the orphaned workflow",
    )
    assert txt_values(stack, record) == []


def test_cancelling_in_temporal_shows_on_the_order(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    record = _in_flight(stack, kubectl, namespace, "cancelled")
    _temporal(stack, "workflow", "cancel", "-w", f"order/{namespace}/cancelled")
    assert wait_for_state(kubectl, namespace, "cancelled", ("errored",)) == "errored"
    status = kubectl.get("order", "cancelled", namespace=namespace)["status"]
    assert status["reason"] == CANCELLED_REASON
    assert status["failureTime"]
    assert txt_values(stack, record) == []
    events = describe_events(kubectl("describe", "order", "cancelled", "-n", namespace).stdout)
    assert events[-1] == ("Warning", "OrderFailed", CANCELLED_REASON)


def test_terminating_in_temporal_shows_on_the_order(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    record = _in_flight(stack, kubectl, namespace, "terminated")
    _temporal(
        stack,
        "workflow",
        "terminate",
        "-w",
        f"order/{namespace}/terminated",
        "--reason",
        "operator gave up",
    )
    assert wait_for_state(kubectl, namespace, "terminated", ("errored",)) == "errored"
    reason = kubectl.get("order", "terminated", namespace=namespace)["status"]["reason"]
    assert reason == (
        f"Order workflow order/{namespace}/terminated was terminated from "
        "Temporal: operator gave up"
    )
    assert order_state(kubectl, namespace, "terminated") == "errored"
    assert workflow_runs(stack, f"order/{namespace}/terminated") == ["TERMINATED"]
    # Terminate skips all clean-up, by Temporal's definition: the record stays. The runbook
    # says so and recommends cancel; this proves the difference is real.
    assert txt_values(stack, record) != []
