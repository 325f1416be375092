"""The bridge signs cert-manager CertificateRequests that name an acmeflow issuer.

Requests are made and approved here the way cert-manager makes them (no cert-manager
controllers run in this module): what a signer sees is the same. Where a test shows that
something did not happen, a second request ("the witness") is signed after it, so the
bridge has certainly looked at the first one by the time the test checks.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    challenge_names,
    condition_of,
    describe_events,
    wait_for,
    workflow_runs,
)
from tests.cert_manager.request_harness import (
    ORDERS,
    REQUESTS,
    MadeRequest,
    approve,
    certificate_request,
    chain_of,
    deny,
    get_request,
    order_names,
    orders_owned_by,
    requested,
    wait_for_reason,
)
from tests.certificates.status_fixtures import ResourceWatch
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate, txt_values

pytestmark = pytest.mark.usefixtures("bridge", "order_worker")


def _issued(kubectl: Kubectl, namespace: str, name: str, names: list[str], **issuer: str) -> None:
    """Sign a witness request and wait until it is Issued."""
    wait_for_reason(kubectl, requested(kubectl, namespace, name, names, **issuer), "Issued")


def test_an_approved_request_is_signed_through_one_order(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    names = ["test1.example.com", "test2.example.com"]
    request = requested(kubectl, namespace, "example-com", names)
    signed = wait_for_reason(kubectl, request, "Issued")

    ready = condition_of(signed, "Ready")
    assert ready["status"] == "True"
    assert ready["message"] == f'Certificate issued through Order "{request.order_name}"'
    assert_certificate(chain_of(signed), request.key, names, stack.pebble_roots)
    # Pebble sends its intermediate, not its root: the CA is not known, so none is claimed.
    assert "ca" not in signed["status"]
    assert "failureTime" not in signed["status"]
    assert condition_of(signed, "Approved")["status"] == "True"  # the approver's, kept

    [order] = orders_owned_by(kubectl, namespace, signed["metadata"]["uid"])
    assert order["metadata"]["name"] == request.order_name
    assert order["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "name": "example-com",
            "uid": signed["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert order["spec"]["request"] == request.csr_pem
    assert order["spec"]["issuerRef"] == {
        "name": "pebble",
        "kind": "Issuer",
        "group": "acmeflow.io",
    }
    assert sorted(order["spec"]["dnsNames"]) == names
    assert order["spec"]["duration"] == "2160h0m0s"
    assert order["status"]["state"] == "valid"
    assert chain_of(signed) == order["status"]["certificate"]

    described = kubectl("describe", REQUESTS, "example-com", "-n", namespace).stdout
    # cert-manager's approver, where one runs, adds its own "cert-manager.io" event.
    assert [e for e in describe_events(described) if e[1] != "cert-manager.io"] == [
        ("Normal", "OrderCreated", f'Created Order resource "{request.order_name}"')
    ]
    order_described = kubectl("describe", ORDERS, request.order_name, "-n", namespace).stdout
    assert describe_events(order_described) == [
        (
            "Normal",
            "Created",
            f'Created Challenge resource "{request.order_name}-0" for domain "test1.example.com"',
        ),
        (
            "Normal",
            "Created",
            f'Created Challenge resource "{request.order_name}-1" for domain "test2.example.com"',
        ),
        ("Normal", "OrderValid", "Order completed successfully"),
    ]


def _denied(kubectl: Kubectl, namespace: str) -> tuple[MadeRequest, dict[str, Any]]:
    """A request seen waiting for approval, then denied; as the bridge left it."""
    request = certificate_request(kubectl, namespace, "refused", ["test3.example.com"])
    waiting = wait_for_reason(kubectl, request, "Pending")
    assert condition_of(waiting, "Ready")["status"] == "False"
    assert condition_of(waiting, "Ready")["message"] == (
        "Waiting for the CertificateRequest to be approved"
    )
    deny(kubectl, request)
    return request, wait_for_reason(kubectl, request, "Denied")


def test_a_request_waits_for_approval_then_a_denied_one_gets_no_order(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
    approval_by_hand: Callable[[], AbstractContextManager[None]],
) -> None:
    with approval_by_hand():
        request, refused = _denied(kubectl, namespace)
    ready = condition_of(refused, "Ready")
    assert ready["status"] == "False"
    assert ready["message"] == (
        "The request was denied by an approver: Denied by policy: test1 is not for this team; "
        "acmeflow does not sign it"
    )
    assert refused["status"]["failureTime"]
    assert "certificate" not in refused["status"]

    _issued(kubectl, namespace, "witness", ["test4.example.com"])
    assert orders_owned_by(kubectl, namespace, refused["metadata"]["uid"]) == []
    # No Order workflow was ever started for it, so no ACME order was placed.
    assert workflow_runs(stack, f"order/{namespace}/{request.order_name}") == []
    assert get_request(kubectl, request)["status"] == refused["status"]


def test_a_request_for_another_issuer_is_left_untouched(
    kubectl: Kubectl,
    namespace: str,
) -> None:
    foreign = requested(
        kubectl, namespace, "not-ours", ["test5.example.com"], group="cert-manager.io"
    )
    before = get_request(kubectl, foreign)

    _issued(kubectl, namespace, "witness", ["test6.example.com"])
    after = get_request(kubectl, foreign)
    assert after["status"] == before["status"]
    assert [c["type"] for c in after["status"]["conditions"]] == ["Approved"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert orders_owned_by(kubectl, namespace, after["metadata"]["uid"]) == []


def test_a_failing_request_carries_the_cas_reason_and_is_not_signed_again(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    request = requested(kubectl, namespace, "blocked", ["blocked.test"])
    failed = wait_for_reason(kubectl, request, "Failed")
    ready = condition_of(failed, "Ready")
    assert ready["status"] == "False"
    assert ready["message"].startswith(f'Order "{request.order_name}" is errored: ')
    # Pebble's own words: it refuses the name at new-order.
    assert "rejectedIdentifier" in ready["message"]
    assert "blocked.test" in ready["message"]
    assert failed["status"]["failureTime"]

    # Its Order deleted and the request touched: a finished request is never signed again.
    kubectl("delete", ORDERS, request.order_name, "-n", namespace, "--wait=true")
    kubectl("annotate", REQUESTS, "blocked", "-n", namespace, "touched=1")
    _issued(kubectl, namespace, "witness", ["test7.example.com"])
    assert request.order_name not in order_names(kubectl, namespace)
    assert get_request(kubectl, request)["status"] == failed["status"]


def test_a_csr_no_order_may_hold_fails_at_once(
    kubectl: Kubectl,
    namespace: str,
) -> None:
    """A CSR whose common name is no DNS name: the API server refuses the Order, and the
    request says why instead of being retried for ever."""
    request = certificate_request(
        kubectl, namespace, "odd", ["test9.example.com"], common_name="My Service"
    )
    approve(kubectl, request)
    failed = wait_for_reason(kubectl, request, "Failed")
    message = condition_of(failed, "Ready")["message"]
    assert message.startswith("the CSR cannot become an Order: ")
    assert "must be lowercase" in message
    assert failed["status"]["failureTime"]
    assert order_names(kubectl, namespace) == []


def test_a_wildcard_and_its_apex_by_dns01(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    names = ["*.example.com", "example.com"]
    # Valid Challenges are deleted once cleaned up: the watch sees them while they live.
    with ResourceWatch(stack, namespace, "challenges") as watched:
        request = requested(kubectl, namespace, "wildcard", names, issuer="dns")
        signed = wait_for_reason(kubectl, request, "Issued")
        wait_for(
            lambda: not challenge_names(kubectl, namespace, request.order_name),
            "the valid Challenges to be deleted",
        )
    challenges = [
        o["spec"]
        for kind, o in watched.changes()
        if kind == "ADDED" and o["metadata"]["name"].startswith(f"{request.order_name}-")
    ]
    assert_certificate(chain_of(signed), request.key, names, stack.pebble_roots)
    assert sorted((c["dnsName"], c["wildcard"], c["type"]) for c in challenges) == [
        ("example.com", False, "DNS-01"),
        ("example.com", True, "DNS-01"),
    ]
    assert txt_values(stack, dns01_record_name("example.com")) == []


def test_a_cluster_issuer_signs(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
    cluster_issuer: str,
) -> None:
    names = ["test8.example.com"]
    request: MadeRequest = requested(
        kubectl, namespace, "clustered", names, issuer=cluster_issuer, kind="ClusterIssuer"
    )
    signed = wait_for_reason(kubectl, request, "Issued")
    assert_certificate(chain_of(signed), request.key, names, stack.pebble_roots)
    [order] = orders_owned_by(kubectl, namespace, signed["metadata"]["uid"])
    assert order["spec"]["issuerRef"] == {
        "name": cluster_issuer,
        "kind": "ClusterIssuer",
        "group": "acmeflow.io",
    }
    wait_for(
        lambda: (
            condition_of(kubectl.get("clusterissuers.acmeflow.io", cluster_issuer), "Ready").get(
                "status"
            )
            == "True"
        ),
        "the ClusterIssuer's account to be Ready",
    )
