"""deploy/components/cert-manager-external-issuer, rendered and applied for real: it turns the
bridge's external-issuer mode on, lets the bridge read cert-manager's CertificateRequests and
write their status and nothing more, and lets cert-manager's approver approve requests for
acmeflow's Issuers and ClusterIssuers and for nobody else's.

cert-manager enforces approval in its webhook, which the test stack does not run: the webhook
asks the API server whether the identity setting ``Approved`` may ``approve`` the
``signers`` resource ``<issuer resource>.<issuer group>/*`` of group cert-manager.io. The
tests ask the API server that same question with SubjectAccessReviews. Last, the real
solver, worker and bridge run under their service accounts with these roles and sign a
request.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from acmeflow.devstack.cert_manager import install_cert_manager_crds
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import issuer_manifest
from tests.cert_manager.request_harness import (
    REQUESTS,
    certificate_request,
    chain_of,
    requested,
    wait_for_reason,
)
from tests.deploy.manifests import BASE, NAMESPACE, RBAC_KINDS, Rendered, render, render_overlay
from tests.deploy.test_manifests import bridge_settings
from tests.deploy.test_rbac import (
    ACCOUNT_PREFIX,
    ALL,
    ANY,
    NOBODY_MAY,
    Check,
    Installation,
    can_i,
    describe,
    installation,
    kubeconfigs,
)
from tests.k8s.kube_helpers import Kubectl, KubectlError, temporary_namespace
from tests.orders.order_harness import assert_certificate

pytestmark = pytest.mark.stack
__all__ = ["installation", "kubeconfigs"]
"""test_rbac's fixtures, run here with the component's roles and bridge arguments."""

COMPONENT = "components/cert-manager-external-issuer"
BRIDGE = "acmeflow-bridge"
CERT_MANAGER = "system:serviceaccount:cert-manager:cert-manager"
"""cert-manager's controller as its Helm chart installs it: the approver runs in it."""

BRIDGE_MAY: list[Check] = [
    *[(verb, REQUESTS, ALL) for verb in ("get", "list", "watch")],
    *[(verb, f"{REQUESTS}/status", ANY) for verb in ("get", "patch", "update")],
    # The Event that names a request's Order; granted by the base already.
    ("create", "events", ANY),
]
BRIDGE_MAY_NOT: list[Check] = [
    # A request's spec is cert-manager's (or the user's); the bridge signs, nothing else.
    *[(verb, REQUESTS, ANY) for verb in ("create", "patch", "update", "delete")],
    ("deletecollection", REQUESTS, ANY),
    *[(verb, "certificates.cert-manager.io", ANY) for verb in ("get", "patch", "create")],
    ("patch", "certificates.cert-manager.io/status", ANY),
    ("get", "issuers.cert-manager.io", ANY),
    ("get", "secrets", ANY),
]


def may_approve(kubectl: Kubectl, user: str, signer: str) -> bool:
    """The SubjectAccessReview cert-manager's approval webhook makes: may ``user`` approve
    the signer name ``signer`` (cluster-wide, verb ``approve``, resource ``signers``)?"""
    namespace = user.split(":")[2] if user.startswith("system:serviceaccount:") else ""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "group": "cert-manager.io",
                "resource": "signers",
                "verb": "approve",
                "name": signer,
            },
        },
    }
    result = kubectl(
        "create", "-f", "-", "-o", "jsonpath={.status.allowed}", stdin=json.dumps(review)
    )
    return result.stdout.strip() == "true"


@pytest.fixture(scope="module")
def external_issuer(kubectl: Kubectl) -> Rendered:
    return render_overlay(
        kubectl, {"namespace": NAMESPACE, "resources": ["base"], "components": [COMPONENT]}
    )


@pytest.fixture(scope="module")
def plain_base(kubectl: Kubectl) -> Rendered:
    return render(kubectl, BASE)


@pytest.fixture(scope="module")
def base(external_issuer: Rendered) -> Rendered:
    """What test_rbac's ``installation`` starts its processes from: here base + component."""
    return external_issuer


@pytest.fixture(scope="module")
def rbac(granted: Kubectl) -> Kubectl:
    """test_rbac's ``rbac`` (the roles its processes run under), with the component's."""
    return granted


@pytest.fixture(scope="module")
def granted(kubectl: Kubectl, stack: StackInfo, external_issuer: Rendered) -> Kubectl:
    """The component's roles and bindings (and the base's) applied, with the CRDs they name
    (no controllers: nothing here needs cert-manager running)."""
    install_cert_manager_crds(stack)
    kubectl("apply", "-f", "-", stdin=external_issuer.as_yaml(RBAC_KINDS))
    return kubectl


def test_the_component_switches_the_bridge_to_external_issuer_mode(
    plain_base: Rendered, external_issuer: Rendered
) -> None:
    """The base bridge ignores CertificateRequests; with the component it signs them, and
    the component changes nothing else about the Deployment but that one flag."""
    assert bridge_settings(plain_base).external_issuer is False
    assert bridge_settings(external_issuer).external_issuer is True
    before = plain_base.container("acmeflow-bridge")["args"]
    after = external_issuer.container("acmeflow-bridge")["args"]
    assert after == [*before, "--external-issuer", "true"]


def test_the_component_adds_two_roles_and_binds_them_to_the_bridge_and_cert_manager(
    plain_base: Rendered, external_issuer: Rendered
) -> None:
    def keys(rendered: Rendered) -> set[tuple[str, str]]:
        return {(obj["kind"], obj["metadata"]["name"]) for obj in rendered.objects}

    added = keys(external_issuer) - keys(plain_base)
    assert added == {
        (kind, name)
        for kind in ("ClusterRole", "ClusterRoleBinding")
        for name in ("acmeflow-bridge-certificaterequests", "acmeflow-cert-manager-approver")
    }
    subjects: dict[str, Any] = {
        binding["metadata"]["name"]: binding["subjects"]
        for binding in external_issuer.of_kind("ClusterRoleBinding")
    }
    assert subjects["acmeflow-bridge-certificaterequests"] == [
        {"kind": "ServiceAccount", "name": BRIDGE, "namespace": NAMESPACE}
    ]
    # The overlay's namespace moves acmeflow's accounts, not cert-manager's.
    assert subjects["acmeflow-cert-manager-approver"] == [
        {"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"}
    ]


def test_the_bridge_may_read_certificaterequests_and_write_their_status_and_no_more(
    granted: Kubectl,
) -> None:
    expected = [(check, True) for check in BRIDGE_MAY]
    expected += [(check, False) for check in BRIDGE_MAY_NOT + NOBODY_MAY]
    wrong = [
        f"{'cannot' if allowed else 'can'} {describe(check)}"
        for check, allowed in expected
        if can_i(granted, BRIDGE, check) != allowed
    ]
    assert not wrong, "acmeflow-bridge:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize(
    ("user", "signer", "allowed"),
    [
        (CERT_MANAGER, "issuers.acmeflow.io/*", True),
        (CERT_MANAGER, "clusterissuers.acmeflow.io/*", True),
        # Another group's issuers (cert-manager's own chart grants those, not acmeflow).
        (CERT_MANAGER, "issuers.cert-manager.io/*", False),
        (CERT_MANAGER, "clusterissuers.cert-manager.io/*", False),
        (CERT_MANAGER, "issuers.example.io/*", False),
        # Nobody else approves for acmeflow: the bridge signs what others approved.
        (f"{ACCOUNT_PREFIX}{BRIDGE}", "issuers.acmeflow.io/*", False),
        (f"{ACCOUNT_PREFIX}acmeflow-worker", "clusterissuers.acmeflow.io/*", False),
        ("system:serviceaccount:team-a:cert-manager", "issuers.acmeflow.io/*", False),
    ],
)
def test_only_cert_manager_may_approve_and_only_for_acmeflow_signers(
    granted: Kubectl, user: str, signer: str, allowed: bool
) -> None:
    assert may_approve(granted, user, signer) is allowed


def test_the_approval_review_says_no_without_the_component(
    granted: Kubectl, external_issuer: Rendered
) -> None:
    """The review is not a yes-machine: with the component's approver binding removed,
    cert-manager may no longer approve for acmeflow's Issuers (the binding is put back)."""
    binding = external_issuer.one("ClusterRoleBinding", "acmeflow-cert-manager-approver")
    granted("delete", "clusterrolebinding", binding["metadata"]["name"])
    try:
        assert may_approve(granted, CERT_MANAGER, "issuers.acmeflow.io/*") is False
    finally:
        granted.create(binding)
    assert may_approve(granted, CERT_MANAGER, "issuers.acmeflow.io/*") is True


# --- The real API under the bridge's identity ---------------------------------------------


def test_under_the_bridge_identity_status_writes_succeed_and_spec_writes_are_refused(
    granted: Kubectl,
) -> None:
    """Real requests under the bridge's identity. The request's issuerRef names a group no
    running bridge signs, so only this test writes to it."""
    as_bridge = f"--as={ACCOUNT_PREFIX}{BRIDGE}"
    with temporary_namespace(granted, "cr-rbac") as namespace:
        names = ["test1.example.com"]
        certificate_request(granted, namespace, "web-1", names, group="rbac-test.example.io")
        listed = granted(
            as_bridge, "get", REQUESTS, "-A", "-o", "jsonpath={.items[*].metadata.name}"
        ).stdout.split()
        assert "web-1" in listed

        status = {
            "certificate": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode(),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Pending",
                    "message": "Waiting on Order web-1-1234",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
        granted(
            as_bridge, "patch", REQUESTS, "web-1", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}),
        )  # fmt: skip
        stored = granted.get(REQUESTS, "web-1", namespace=namespace)
        assert stored["status"]["conditions"][0]["message"] == "Waiting on Order web-1-1234"

        another = {
            "apiVersion": stored["apiVersion"],
            "kind": stored["kind"],
            "metadata": {"name": "web-2", "namespace": namespace},
            "spec": stored["spec"],
        }
        refusals = []
        for attempt, stdin in (
            (("label", REQUESTS, "web-1", "-n", namespace, "touched=yes"), None),
            (("delete", REQUESTS, "web-1", "-n", namespace), None),
            (("create", "-f", "-"), json.dumps(another)),
        ):
            with pytest.raises(KubectlError) as refused:
                granted(as_bridge, *attempt, stdin=stdin)
            refusals.append("forbidden" in str(refused.value).lower())
        assert refusals == [True, True, True]
        after = granted.get(REQUESTS, "web-1", namespace=namespace)
        assert "touched" not in after["metadata"].get("labels", {})


def test_an_approved_request_is_signed_with_only_this_rbac(
    stack: StackInfo, granted: Kubectl, installation: Installation
) -> None:
    """The solver, the worker and the bridge (``--external-issuer true`` from the component)
    as real processes under their service accounts' tokens: a CertificateRequest approved
    as cert-manager approves it ends Issued, so the component grants all the bridge uses."""
    with temporary_namespace(granted, "cr-signed") as namespace:
        granted.create(issuer_manifest(stack, namespace, server=installation.pebble.directory_url))
        names = ["test8.example.com"]
        request = requested(granted, namespace, "signed", names)
        signed = wait_for_reason(granted, request, "Issued", timeout_s=120)
        assert_certificate(chain_of(signed), request.key, names, installation.pebble.roots_path)
        bridge = next(p for p in installation.processes if p.name == "bridge")
        assert "--external-issuer" in bridge.argv
        refused = f'forbidden: User "{ACCOUNT_PREFIX}acmeflow-bridge"'
        assert refused not in bridge.log_path.read_text(errors="replace")
