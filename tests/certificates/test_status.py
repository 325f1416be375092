"""A Certificate's status reads like cert-manager's at every stage of its life.

One Certificate goes through a first issuance, Ready, a manual renewal, a failed issuance
and a recovery; every status the API server stored is read from a watch (an issuance of
seconds is seen whole) and checked against what cert-manager would show: the ``Ready``
and ``Issuing`` conditions with its reasons, and ``revision``, ``failedIssuanceAttempts``,
``lastFailureTime``, ``nextPrivateKeySecretName``, ``notBefore``, ``notAfter``,
``renewalTime``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from temporalio.client import Client

from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    issuer_manifest,
    tls_secret,
    wait_for,
)
from tests.certificates.status_fixtures import ResourceWatch, condition
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack

NAME = "lifecycle"
NAMES = ["lifecycle.example.com"]
READY_MESSAGE = "Certificate is up to date and has not expired"
KUBE_TIME = "%Y-%m-%dT%H:%M:%SZ"


def _renew(stack: StackInfo, namespace: str) -> None:
    """What ``acmeflow renew`` sends: the Certificate's workflow reissues now."""

    async def signal() -> None:
        temporal = await Client.connect(stack.temporal_address)
        handle = temporal.get_workflow_handle(f"certificate/{namespace}/{NAME}")
        await handle.signal("renew", "")

    asyncio.run(signal())


def _settled(watched: ResourceWatch, *, revision: int) -> dict[str, Any]:
    """The first stored status that is Ready at ``revision`` with no issuance left."""
    found: dict[str, Any] = wait_for(
        lambda: next(
            (
                s
                for s in watched.statuses()
                if s.get("revision") == revision and condition(s, "Ready").get("status") == "True"
            ),
            None,
        ),
        f"Certificate {NAME} Ready at revision {revision}",
        timeout_s=120,
    )
    return found


def _issuing(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statuses if condition(s, "Issuing").get("status") == "True"]


def _assert_ready(status: dict[str, Any], leaf: x509.Certificate, revision: int) -> None:
    """Ready as cert-manager leaves it after an issuance: no Issuing, nothing pending."""
    assert [c["type"] for c in status["conditions"]] == ["Ready"], "Issuing must be removed"
    ready = condition(status, "Ready")
    assert (ready["reason"], ready["message"]) == ("Ready", READY_MESSAGE)
    assert status["revision"] == revision
    assert status["notBefore"] == leaf.not_valid_before_utc.strftime(KUBE_TIME)
    assert status["notAfter"] == leaf.not_valid_after_utc.strftime(KUBE_TIME)
    assert status["notBefore"] < status["renewalTime"] < status["notAfter"]
    for gone in ("nextPrivateKeySecretName", "failedIssuanceAttempts", "lastFailureTime"):
        assert gone not in status, f"{gone} is left after a successful issuance"


def _leaf(kubectl: Kubectl, namespace: str) -> x509.Certificate:
    secret = tls_secret(kubectl, namespace, f"{NAME}-tls")
    assert secret is not None
    return x509.load_pem_x509_certificates(secret["tls.crt"])[0]


def _secret_data(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    """The data of a Secret of any type (the next key's Secret is Opaque); {} if gone."""
    result = kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    return dict(json.loads(result.stdout).get("data", {})) if result.returncode == 0 else {}


def _patch_names(kubectl: Kubectl, namespace: str, names: list[str]) -> None:
    patch = json.dumps({"spec": {"dnsNames": names}})
    kubectl("patch", "certificate", NAME, "-n", namespace, "--type=merge", "-p", patch)


def test_status_through_issuance_ready_renewal_failure_and_recovery(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    with ResourceWatch(stack, namespace, "certificates", NAME) as watched:
        kubectl.create(certificate_manifest(namespace, NAME, NAMES))
        first = _settled(watched, revision=1)
        issuing = _issuing(watched.statuses())
        assert issuing, "no status showed the first issuance"
        for status in issuing:  # cert-manager: both say the Secret does not exist yet
            assert condition(status, "Issuing")["reason"] == "DoesNotExist"
            assert condition(status, "Ready")["status"] == "False"
            assert condition(status, "Ready")["reason"] == "DoesNotExist"
            assert "does not exist" in condition(status, "Issuing")["message"]
            assert "revision" not in status
        assert f"{NAME}-next-private-key" in [s.get("nextPrivateKeySecretName") for s in issuing]
        leaf = _leaf(kubectl, namespace)
        _assert_ready(first, leaf, revision=1)

        # A manual renewal: the certificate in use stays good, so Ready stays True.
        seen = len(watched.statuses())
        _renew(stack, namespace)
        renewed = _settled(watched, revision=2)
        during = _issuing(watched.statuses()[seen:])
        assert during, "no status showed the renewal"
        assert {condition(s, "Issuing")["reason"] for s in during} == {"ManuallyTriggered"}
        assert {condition(s, "Ready")["status"] for s in during} == {"True"}
        new_leaf = _leaf(kubectl, namespace)
        assert new_leaf.serial_number != leaf.serial_number
        _assert_ready(renewed, new_leaf, revision=2)

        # A name the CA refuses: the Secret no longer matches, and the issuance fails.
        seen = len(watched.statuses())
        before_failure = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        _patch_names(kubectl, namespace, ["blocked.test"])
        failed: dict[str, Any] = wait_for(
            lambda: next(
                (
                    s
                    for s in watched.statuses()[seen:]
                    if condition(s, "Issuing").get("reason") == "Failed"
                ),
                None,
            ),
            "the failed issuance to show",
            timeout_s=120,
        )
        mismatch = _issuing(watched.statuses()[seen:])
        assert mismatch, "no status showed the reissue for the changed names"
        assert condition(mismatch[0], "Issuing")["reason"] == "SecretMismatch"
        assert condition(mismatch[0], "Ready")["reason"] == "SecretMismatch"
        assert condition(failed, "Issuing")["status"] == "False"
        assert "blocked.test" in condition(failed, "Issuing")["message"]
        assert condition(failed, "Ready")["status"] == "False"
        assert failed["failedIssuanceAttempts"] == 1
        assert failed["lastFailureTime"] >= before_failure.strftime(KUBE_TIME)
        assert failed["revision"] == 2, "a failure is no new revision"
        # The key is kept for the retry, in the Secret the status names.
        kept = _secret_data(kubectl, namespace, failed["nextPrivateKeySecretName"])
        assert kept.get("tls.key"), "nextPrivateKeySecretName names no Secret with a key"

        # Names the CA issues: a spec change bypasses the back-off, and success clears it.
        _patch_names(kubectl, namespace, [*NAMES, "lifecycle-2.example.com"])
        recovered = _settled(watched, revision=3)
        _assert_ready(recovered, _leaf(kubectl, namespace), revision=3)


def test_a_certificate_moved_to_another_issuer_is_reissued_by_it(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    """cert-manager's IncorrectIssuer: the Secret still holds a good certificate, but from
    the issuer the Certificate no longer names, so it is reissued by the one it does."""
    kubectl.create(issuer_manifest(stack, namespace, "pebble-2"))
    with ResourceWatch(stack, namespace, "certificates", NAME) as watched:
        kubectl.create(certificate_manifest(namespace, NAME, NAMES))
        _settled(watched, revision=1)
        seen = len(watched.statuses())
        patch = json.dumps({"spec": {"issuerRef": {"name": "pebble-2"}}})
        kubectl("patch", "certificate", NAME, "-n", namespace, "--type=merge", "-p", patch)
        _settled(watched, revision=2)
        moved = _issuing(watched.statuses()[seen:])
    assert moved, "no status showed the reissue for the new issuer"
    issuing = condition(moved[0], "Issuing")
    assert issuing["reason"] == "IncorrectIssuer"
    assert "previously issued by Issuer.acmeflow.io/pebble" in issuing["message"]
    annotations = json.loads(
        kubectl("get", "secret", f"{NAME}-tls", "-n", namespace, "-o", "json").stdout
    )["metadata"]["annotations"]
    assert annotations["acmeflow.io/issuer-name"] == "pebble-2"
