"""Orders applied with kubectl end valid, and kubectl describe reads like cert-manager's."""

from __future__ import annotations

from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    describe_events,
    describe_field,
    order_manifest,
    wait_for_state,
)
from tests.k8s.kube_helpers import Kubectl


def test_order_for_two_names_reads_like_the_reference(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    name = "example-com-1217431265"
    kubectl.create(order_manifest(namespace, name, ["test1.example.com", "test2.example.com"]))
    assert wait_for_state(kubectl, namespace, name, ("valid", "invalid", "errored")) == "valid"

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

    challenge = kubectl("describe", "challenge", f"{name}-0", "-n", namespace).stdout
    assert describe_field(challenge, "Status", "State") == "valid"
    assert describe_field(challenge, "Spec", "Dns Name") == "test1.example.com"
    assert describe_field(challenge, "Spec", "Type") == "HTTP-01"
    assert describe_field(challenge, "Status", "Presented") == "false"
    assert describe_field(challenge, "Status", "Processing") == "false"
    assert describe_events(challenge) == [
        ("Normal", "Started", "Challenge scheduled for processing"),
        ("Normal", "Presented", "Presented challenge using HTTP-01 challenge mechanism"),
        (
            "Normal",
            "DomainVerified",
            'Domain "test1.example.com" verified with "HTTP-01" validation',
        ),
    ]
    owners = kubectl.get("challenge", f"{name}-1", namespace=namespace)["metadata"][
        "ownerReferences"
    ]
    assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [
        ("Order", name, order["metadata"]["uid"])
    ]
