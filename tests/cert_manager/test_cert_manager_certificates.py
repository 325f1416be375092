"""cert-manager's own controllers in front, acmeflow behind them: a user's
``cert-manager.io/v1`` Certificates and annotated Ingresses end Ready through acmeflow Orders.

cert-manager (the session's ``cert_manager`` process: Certificate lifecycle, approver, shims)
makes the key, the CertificateRequest and the Secret, and approves the request. acmeflow's
bridge signs the request through an Order, which a real worker takes to Pebble.
"""

from __future__ import annotations

import json

import pytest
from cryptography import x509

from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import condition_of, describe_events
from tests.cert_manager.cert_manager_resources import (
    CERTIFICATES,
    certificate_events,
    certificate_manifest,
    ingress_manifest,
    issued_leaf,
    order_of,
    renew,
    requests_of,
    wait_for_certificate,
)
from tests.cert_manager.request_harness import ORDERS, REQUESTS
from tests.k8s.kube_helpers import Kubectl

# cert-manager's controllers for the session; this module's bridge (--external-issuer true)
# and order worker.
pytestmark = pytest.mark.usefixtures("cert_manager", "bridge", "order_worker")


def assert_issued_through_one_order(
    kubectl: Kubectl, stack: StackInfo, namespace: str, name: str, names: list[str]
) -> None:
    """What a user sees with ``kubectl describe`` on each of the three objects."""
    certificate = wait_for_certificate(kubectl, namespace, name, condition="Ready", status="True")
    issued_leaf(kubectl, certificate, names, stack.pebble_roots)

    described = kubectl("describe", CERTIFICATES, name, "-n", namespace).stdout
    events = certificate_events(described)
    # cert-manager's trigger, key manager, request manager and issuing controller.
    assert sorted(reason for _, reason, _ in events) == sorted(
        ["Issuing", "Generated", "Requested", "Issuing"]
    ), events
    [request] = requests_of(kubectl, certificate)
    made = f'Created new CertificateRequest resource "{request["metadata"]["name"]}"'
    assert ("Normal", "Requested", made) in events
    assert condition_of(request, "Approved")["reason"] == "cert-manager.io"
    assert condition_of(request, "Ready")["reason"] == "Issued"

    order = order_of(kubectl, request)
    assert order["status"]["state"] == "valid"
    request_described = kubectl(
        "describe", REQUESTS, request["metadata"]["name"], "-n", namespace
    ).stdout
    assert (
        "Normal",
        "OrderCreated",
        f'Created Order resource "{order["metadata"]["name"]}"',
    ) in describe_events(request_described)

    order_events = describe_events(
        kubectl("describe", ORDERS, order["metadata"]["name"], "-n", namespace).stdout
    )
    assert [reason for _, reason, _ in order_events] == ["Created"] * len(names) + ["OrderValid"]
    challenged = sorted(message.rsplit('"', 2)[1] for _, _, message in order_events[:-1])
    assert challenged == sorted(name.removeprefix("*.") for name in names)


def test_a_certificate_for_an_acmeflow_issuer_ends_ready(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    names = ["test1.example.com", "test2.example.com"]
    kubectl.create(certificate_manifest(namespace, "web", names))
    assert_issued_through_one_order(kubectl, stack, namespace, "web", names)


def test_a_certificate_for_an_acmeflow_cluster_issuer_ends_ready(
    stack: StackInfo,
    kubectl: Kubectl,
    cluster_issuer: str,
    namespace: str,
) -> None:
    names = ["test5.example.com"]
    kubectl.create(
        certificate_manifest(
            namespace, "shared", names, issuer=cluster_issuer, kind="ClusterIssuer"
        )
    )
    assert_issued_through_one_order(kubectl, stack, namespace, "shared", names)


def test_a_certificate_for_a_wildcard_and_its_apex_by_dns01(
    stack: StackInfo, kubectl: Kubectl, namespace: str
) -> None:
    names = ["*.example.com", "example.com"]
    kubectl.create(certificate_manifest(namespace, "wildcard", names, issuer="dns"))
    assert_issued_through_one_order(kubectl, stack, namespace, "wildcard", names)


def test_an_annotated_ingress_gets_its_tls_secret(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    """cert-manager's ingress-shim turns the annotations into a Certificate for the tls
    block, named after its Secret and owned by the Ingress; acmeflow signs it."""
    kubectl.create(
        ingress_manifest(namespace, "shop", "test3.example.com", issuer="pebble", secret="shop-tls")
    )
    certificate = wait_for_certificate(
        kubectl, namespace, "shop-tls", condition="Ready", status="True"
    )
    assert certificate["spec"]["issuerRef"] == {
        "group": "acmeflow.io",
        "kind": "Issuer",
        "name": "pebble",
    }
    [owner] = certificate["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Ingress", "shop")
    assert certificate["spec"]["dnsNames"] == ["test3.example.com"]
    issued_leaf(kubectl, certificate, ["test3.example.com"], stack.pebble_roots)
    [request] = requests_of(kubectl, certificate)
    assert order_of(kubectl, request)["status"]["state"] == "valid"


def test_a_failure_carries_the_cas_reason_and_cert_manager_backs_off(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    """Pebble refuses the name. The request says why, and cert-manager's Certificate records
    one failed attempt and when it happened: the state its back-off (an hour at first)
    counts from. A spec change bypasses the back-off, and the fixed Certificate issues
    through a new Order."""
    kubectl.create(certificate_manifest(namespace, "refused", ["blocked.test"]))
    certificate = wait_for_certificate(
        kubectl, namespace, "refused", condition="Issuing", status="False"
    )
    [request] = requests_of(kubectl, certificate)
    failed = condition_of(request, "Ready")
    assert (failed["status"], failed["reason"]) == ("False", "Failed")
    assert "rejectedIdentifier" in failed["message"]
    assert "blocked.test" in failed["message"]
    assert request["status"]["failureTime"]
    assert order_of(kubectl, request)["status"]["state"] == "errored"

    issuing = condition_of(certificate, "Issuing")
    assert issuing["reason"] == "Failed"
    assert "rejectedIdentifier" in issuing["message"]
    assert certificate["status"]["failedIssuanceAttempts"] == 1
    assert certificate["status"]["lastFailureTime"]
    assert condition_of(certificate, "Ready")["status"] == "False"
    warnings = describe_events(kubectl("describe", CERTIFICATES, "refused", "-n", namespace).stdout)
    assert ("Warning", "Failed") in {(kind, reason) for kind, reason, _ in warnings}

    fixed = ["test6.example.com"]
    patch = json.dumps({"spec": {"dnsNames": fixed}})
    kubectl("patch", CERTIFICATES, "refused", "-n", namespace, "--type=merge", "-p", patch)
    ready = wait_for_certificate(kubectl, namespace, "refused", condition="Ready", status="True")
    issued_leaf(kubectl, ready, fixed, stack.pebble_roots)
    assert "failedIssuanceAttempts" not in ready["status"]
    [signed] = [
        r for r in requests_of(kubectl, ready) if condition_of(r, "Ready")["reason"] == "Issued"
    ]
    assert signed["metadata"]["uid"] != request["metadata"]["uid"]
    assert order_of(kubectl, signed)["status"]["state"] == "valid"


def test_cmctl_renew_issues_a_new_certificate_through_a_new_order(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    names = ["test4.example.com"]
    kubectl.create(certificate_manifest(namespace, "renewed", names))
    first = wait_for_certificate(
        kubectl, namespace, "renewed", condition="Ready", status="True", revision=1
    )
    first_leaf = issued_leaf(kubectl, first, names, stack.pebble_roots)
    [first_request] = requests_of(kubectl, first)
    first_order = order_of(kubectl, first_request)["metadata"]["name"]

    renew(kubectl, namespace, "renewed")
    second = wait_for_certificate(
        kubectl, namespace, "renewed", condition="Ready", status="True", revision=2
    )
    assert condition_of(second, "Issuing") == {}
    second_leaf = issued_leaf(kubectl, second, names, stack.pebble_roots)
    assert second_leaf.serial_number != first_leaf.serial_number

    second_request = requests_of(kubectl, second)[-1]
    assert second_request["metadata"]["name"] == "renewed-2"
    assert condition_of(second_request, "Ready")["reason"] == "Issued"
    second_order = order_of(kubectl, second_request)
    assert second_order["metadata"]["name"] != first_order
    assert second_order["status"]["state"] == "valid"
    signed_by_order = x509.load_pem_x509_certificate(second_order["status"]["certificate"].encode())
    assert signed_by_order.serial_number == second_leaf.serial_number


ACMEFLOW_NAMES = "certificate issuer clusterissuer order challenge"
"""Bare names keep meaning acmeflow's kinds (no acme.cert-manager.io CRDs here)."""
ACMEFLOW_SHORT_NAMES = "afcert afissuer afclusterissuer aforder afchallenge"
CERT_MANAGER_NAMES = "cert certs iss ciss cr crs certificaterequest certificates.cert-manager.io"
NAMES_BOTH_INSTALLED = {
    **dict.fromkeys(f"{ACMEFLOW_NAMES} {ACMEFLOW_SHORT_NAMES}".split(), "acmeflow.io"),
    **dict.fromkeys(CERT_MANAGER_NAMES.split(), "cert-manager.io"),
}


def test_kubectl_names_resolve_as_the_install_guide_says(
    kubectl: Kubectl, cert_manager_crds: str
) -> None:
    """docs/external-issuer-install.md's table: which group each name means to kubectl."""
    resolved = {}
    for name in NAMES_BOTH_INSTALLED:
        explained = kubectl("explain", name).stdout
        resolved[name] = next(
            line.split(":", 1)[1].strip()
            for line in explained.splitlines()
            if line.startswith("GROUP:")
        )
    assert resolved == NAMES_BOTH_INSTALLED
