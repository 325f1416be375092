"""Orders applied with kubectl end valid, and kubectl describe reads like cert-manager's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.workflows.snapshot_publisher import DELIVERY_ATTEMPT
from tests.bridge.bridge_harness import (
    BridgeProcess,
    challenge_names,
    describe_events,
    describe_field,
    dns01_solver,
    issuer_manifest,
    object_events,
    order_manifest,
    order_state,
    wait_for,
    wait_for_state,
    workflow_progress,
    workflow_runs,
)
from tests.certificates.status_fixtures import ResourceWatch
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import txt_values

FINAL = ("valid", "invalid", "errored")


@pytest.fixture(scope="module")
def reusing_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A Pebble that always reuses a valid authorization of the same account."""
    process, endpoints = start_extra_pebble(
        stack, PebbleOptions(name="pebble-reuse", authz_reuse_percent=100)
    )
    yield endpoints
    stop_pid_file(process.pid_path)


def test_order_for_two_names_reads_like_the_reference(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    name = "example-com-1217431265"
    with ResourceWatch(stack, namespace, "challenges") as challenges:
        kubectl.create(order_manifest(namespace, name, ["test1.example.com", "test2.example.com"]))
        assert wait_for_state(kubectl, namespace, name, FINAL) == "valid"
        # Valid Challenges are deleted once cleaned up, as cert-manager deletes a final
        # Order's; the watch saw them while they lived.
        wait_for(lambda: not challenge_names(kubectl, namespace, name), "the Challenges to go")
        created = {o["metadata"]["name"]: o for kind, o in challenges.changes() if kind == "ADDED"}

    order = kubectl.get("order", name, namespace=namespace)
    assert "BEGIN CERTIFICATE" in order["status"]["certificate"]
    assert order["status"]["url"].startswith(stack.acme_directory_url.removesuffix("/dir"))
    described = kubectl("describe", "order", name, "-n", namespace).stdout
    assert describe_field(described, "Status", "State") == "valid"
    assert describe_field(described, "Status", "Reason") == ""
    assert describe_field(described, "Status", "URL") == order["status"]["url"]
    assert describe_events(described) == [
        (
            "Normal",
            "Created",
            f'Created Challenge resource "{name}-0" for domain "test1.example.com"',
        ),
        (
            "Normal",
            "Created",
            f'Created Challenge resource "{name}-1" for domain "test2.example.com"',
        ),
        ("Normal", "OrderValid", "Order completed successfully"),
    ]
    assert "acmeflow" in described.split("Events:")[1]

    challenge = created[f"{name}-0"]
    assert challenge["spec"]["dnsName"] == "test1.example.com"
    assert challenge["spec"]["type"] == "HTTP-01"
    # Its Events outlive it.
    assert object_events(kubectl, namespace, "Challenge", f"{name}-0") == [
        ("Normal", "Started", "Challenge scheduled for processing"),
        ("Normal", "Presented", "Presented challenge using HTTP-01 challenge mechanism"),
        (
            "Normal",
            "DomainVerified",
            'Domain "test1.example.com" verified with "HTTP-01" validation',
        ),
    ]
    owners = created[f"{name}-1"]["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [
        ("Order", name, order["metadata"]["uid"])
    ]


def test_wildcard_and_apex_by_dns01(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    kubectl.create(issuer_manifest(stack, namespace, "dns", solvers=[dns01_solver(stack)]))
    order = order_manifest(namespace, "wildcard", ["*.example.com", "example.com"], issuer="dns")
    with ResourceWatch(stack, namespace, "challenges") as watched:
        kubectl.create(order)
        assert wait_for_state(kubectl, namespace, "wildcard", FINAL) == "valid"
        wait_for(
            lambda: len([k for k, _ in watched.changes() if k == "DELETED"]) == 2,
            "both valid Challenges to be seen deleted",
        )
    challenges = [o["spec"] for kind, o in watched.changes() if kind == "ADDED"]
    assert sorted((c["dnsName"], c["wildcard"], c["type"]) for c in challenges) == [
        ("example.com", False, "DNS-01"),
        ("example.com", True, "DNS-01"),
    ]
    assert txt_values(stack, dns01_record_name("example.com")) == []


def test_an_order_for_a_missing_issuer_waits_and_says_so(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    kubectl.create(order_manifest(namespace, "early", ["test3.example.com"], issuer="later"))
    reason = wait_for(
        lambda: kubectl.get("order", "early", namespace=namespace).get("status", {}).get("reason"),
        "a reason on the waiting Order",
    )
    assert reason == (
        f'Waiting for Issuer "{namespace}/later" to exist; the Order starts as soon as it does'
    )
    assert order_state(kubectl, namespace, "early") == ""
    kubectl.create(issuer_manifest(stack, namespace, "later"))
    assert wait_for_state(kubectl, namespace, "early", FINAL) == "valid"
    assert kubectl.get("order", "early", namespace=namespace)["status"]["reason"] == ""


def test_a_reused_authorization_gets_no_challenge(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    reusing_pebble: PebbleEndpoints,
) -> None:
    kubectl.create(issuer_manifest(stack, namespace, "reuse", server=reusing_pebble.directory_url))
    kubectl.create(order_manifest(namespace, "first", ["test4.example.com"], issuer="reuse"))
    assert wait_for_state(kubectl, namespace, "first", FINAL) == "valid"
    kubectl.create(order_manifest(namespace, "second", ["test4.example.com"], issuer="reuse"))
    assert wait_for_state(kubectl, namespace, "second", FINAL) == "valid"
    status = kubectl.get("order", "second", namespace=namespace)["status"]
    assert [a["initialState"] for a in status["authorizations"]] == ["valid"]
    first = kubectl("describe", "order", "first", "-n", namespace).stdout
    assert [r for _, r, _ in describe_events(first)] == ["Created", "OrderValid"]
    assert challenge_names(kubectl, namespace, "second") == []
    described = kubectl("describe", "order", "second", "-n", namespace).stdout
    assert describe_events(described) == [("Normal", "OrderValid", "Order completed successfully")]


def test_a_killed_bridge_resumes_without_duplicates(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    # Watched, not polled: the order takes about a second, and the bridge is killed the
    # moment it has created both Challenges, before it can mirror the Order's end.
    with ResourceWatch(stack, namespace, "challenges") as challenges:
        kubectl.create(
            order_manifest(namespace, "survivor", ["test5.example.com", "test6.example.com"])
        )
        wait_for(
            lambda: [kind for kind, _ in challenges.changes()].count("ADDED") == 2,
            "the bridge to create both Challenges",
            interval_s=0.005,
        )
        bridge.kill()
    try:
        workflow_id = f"order/{namespace}/survivor"
        # A delivery in flight when the bridge died is abandoned only after DELIVERY_ATTEMPT.
        wait_for(
            lambda: workflow_progress(stack, workflow_id).state == "valid",
            "the workflow to finish while the bridge is down",
            timeout_s=DELIVERY_ATTEMPT.total_seconds() + 90,
        )
        assert order_state(kubectl, namespace, "survivor") != "valid"
    finally:
        bridge.start()
    assert wait_for_state(kubectl, namespace, "survivor", FINAL) == "valid"
    reasons = [
        r
        for _, r, _ in describe_events(
            kubectl("describe", "order", "survivor", "-n", namespace).stdout
        )
    ]
    assert reasons == ["Created", "Created", "OrderValid"]
    # The restarted bridge deletes the valid Challenges (and makes none again); each
    # one's Events were recorded once.
    wait_for(
        lambda: not challenge_names(kubectl, namespace, "survivor"),
        "the valid Challenges to be deleted",
    )
    for challenge in ("survivor-0", "survivor-1"):
        assert [r for _, r, _ in object_events(kubectl, namespace, "Challenge", challenge)] == [
            "Started",
            "Presented",
            "DomainVerified",
        ]
    assert workflow_runs(stack, workflow_id) == ["COMPLETED"]
