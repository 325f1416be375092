"""Renewal driven by the CA's ARI window (RFC 9773) on the stack's Pebble, ``replaces`` included.

Pebble offers ``renewalInfo`` and lets a test set a certificate's window on its management
port (``/set-renewal-info/``); it answers with a Retry-After of 6 hours, which this module's
worker caps at 5 seconds (``renewal_info_recheck_max_s``) so a moved window is seen quickly.
What a user would check is checked: the Certificate's ``status.renewalRule`` names the
CA's window, a window moved into the past renews the certificate without the Secret ever
lacking one, and the new ACME order (read from the CA) names the certificate it replaces.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from acme.client import _renewal_info_path_component
from cryptography import x509
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from acmeflow.activities.acme_client import AcmeClients, generate_account_key
from acmeflow.activities.certificate_steps import REVISION_ANNOTATION
from acmeflow.activities.renewal_info import RenewalInfoActivities
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.issuer import AccountRef
from acmeflow.contracts.renewal_info import RenewalInfo, RenewalInfoRequest
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    tls_secret,
    wait_for,
    wait_for_ready,
)
from tests.bridge.test_certificates import SecretWatch
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack

WORKER_OVERRIDES = {"renewal_info_recheck_max_s": 5}
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _leaf(secret: dict[str, bytes]) -> x509.Certificate:
    return x509.load_pem_x509_certificates(secret["tls.crt"])[0]


def _tls(stack: StackInfo) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(stack.acme_ca_bundle))


def _pebble_window(stack: StackInfo, certificate_id: str) -> dict[str, str]:
    """What Pebble itself answers for the certificate's renewalInfo."""
    with urllib.request.urlopen(stack.acme_directory_url, context=_tls(stack)) as response:
        base = json.load(response)["renewalInfo"]
    with urllib.request.urlopen(f"{base}/{certificate_id}", context=_tls(stack)) as response:
        window: dict[str, str] = json.load(response)["suggestedWindow"]
    return window


def _set_pebble_window(stack: StackInfo, chain: bytes, start: datetime, end: datetime) -> None:
    """Pebble's management endpoint: answer this window for this certificate from now on."""
    window = {"suggestedWindow": {"start": start.strftime(STAMP), "end": end.strftime(STAMP)}}
    body = json.dumps({"Certificate": chain.decode(), "ARIResponse": json.dumps(window)})
    request = urllib.request.Request(
        f"{stack.pebble_management_url}/set-renewal-info/", data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, context=_tls(stack)) as response:
        assert response.status == 200


def _certificate(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("get", "certificate", name, "-n", namespace, "-o", "json").stdout
    )
    return found


def _ready_at_revision(
    kubectl: Kubectl, namespace: str, name: str, revision: int
) -> dict[str, Any]:
    """The Secret is written before the Certificate's status, so the revision is waited for."""
    found: dict[str, Any] = wait_for(
        lambda: (
            (c := wait_for_ready(kubectl, "certificate", namespace, name))
            and c["status"].get("revision") == revision
            and c
        ),
        f"certificate {namespace}/{name} Ready at revision {revision}",
        timeout_s=30,
    )
    return found


def _orders(kubectl: Kubectl, namespace: str, certificate: str) -> list[dict[str, Any]]:
    """The Certificate's Order resources by revision, first first."""
    listed = json.loads(
        kubectl(
            "get", "orders", "-n", namespace, "-l", f"acmeflow.io/certificate={certificate}",
            "-o", "json",
        ).stdout
    )["items"]  # fmt: skip
    return sorted(listed, key=lambda o: int(o["metadata"]["annotations"][REVISION_ANNOTATION]))


def _acme_order(
    stack: StackInfo, kubectl: Kubectl, namespace: str, url: str, tmp_path: Path
) -> dict[str, Any]:
    """The ACME order object as the CA holds it, read with the Issuer's own account."""
    issuer = json.loads(kubectl("get", "issuer", "pebble", "-n", namespace, "-o", "json").stdout)
    account_secret = json.loads(
        kubectl("get", "secret", "pebble-account", "-n", namespace, "-o", "json").stdout
    )
    [key_b64] = account_secret["data"].values()
    key_path = tmp_path / "account.pem"
    key_path.write_bytes(base64.b64decode(key_b64))
    account = AcmeClients(SecretStore()).account(
        AccountRef(
            server=stack.acme_directory_url,
            account_key=SecretRef(path=str(key_path)),
            account_uri=issuer["status"]["acme"]["uri"],
            ca_bundle_pem=stack.acme_ca_bundle.read_text(),
        )
    )
    for _ in range(5):  # Pebble refuses a share of nonces on purpose
        try:
            order: dict[str, Any] = account.client._post_as_get(url).json()
            return order
        except Exception as error:  # noqa: BLE001 -- badNonce, tried again
            last: Exception = error
    raise AssertionError(f"could not read the ACME order {url}") from last


def _current_details(stack: StackInfo, workflow_id: str) -> str:
    """What the Temporal UI shows as the workflow's current details."""

    async def query() -> str:
        client = await Client.connect(stack.temporal_address)
        handle = client.get_workflow_handle(workflow_id)
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        return str(metadata.current_details)

    return asyncio.run(query())


def _renewed_through_ari(
    stack: StackInfo, kubectl: Kubectl, namespace: str, name: str
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Issue ``name``; once its status names the CA's window, move the window into the past
    (as Pebble answers for a revoked certificate) and wait for the renewal. Returns the
    Secret before and after; asserts the Secret never lacked a certificate meanwhile."""
    kubectl.create(certificate_manifest(namespace, name, [f"{name}.example.com"]))
    wait_for_ready(kubectl, "certificate", namespace, name)
    first = tls_secret(kubectl, namespace, f"{name}-tls")
    assert first is not None
    certificate_id = _renewal_info_path_component(_leaf(first))
    pebble = _pebble_window(stack, certificate_id)
    rule = wait_for(
        lambda: (
            (r := _certificate(kubectl, namespace, name)["status"].get("renewalRule", ""))
            and r.startswith("ARI window")
            and r
        ),
        "the renewal rule to name the CA's window",
        timeout_s=30,
    )
    start, end = (
        datetime.fromisoformat(pebble[k]).replace(microsecond=0) for k in ("start", "end")
    )
    assert rule == f"ARI window {start.strftime(STAMP)} to {end.strftime(STAMP)} (retry after 5s)"
    renewal = datetime.fromisoformat(
        _certificate(kubectl, namespace, name)["status"]["renewalTime"]
    )
    assert start <= renewal <= end
    assert rule in _current_details(stack, f"certificate/{namespace}/{name}")

    now = datetime.now(UTC)
    with SecretWatch(kubernetes_api_client(stack.kubeconfig), namespace, f"{name}-tls") as watch:
        _set_pebble_window(
            stack, first["tls.crt"], now - timedelta(hours=1), now - timedelta(minutes=59)
        )
        second = wait_for(
            lambda: (
                (s := tls_secret(kubectl, namespace, f"{name}-tls"))
                and _leaf(s).serial_number != _leaf(first).serial_number
                and s
            ),
            "the Secret to hold the certificate renewed for the moved window",
            timeout_s=60,
        )
        watch.wait_for_data("tls.crt", second["tls.crt"])
    assert watch.gaps() == [], "the Secret was missing or incomplete for a moment"
    return first, second


def test_the_ca_window_sets_the_renewal_and_moving_it_renews_with_replaces(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    tmp_path: Path,
) -> None:
    first, second = _renewed_through_ari(stack, kubectl, namespace, "ari")

    _ready_at_revision(kubectl, namespace, "ari", 2)
    old, new = _orders(kubectl, namespace, "ari")
    assert "replaces" not in _acme_order(stack, kubectl, namespace, old["status"]["url"], tmp_path)
    renewing = _acme_order(stack, kubectl, namespace, new["status"]["url"], tmp_path)
    assert renewing["replaces"] == _renewal_info_path_component(_leaf(first))
    assert _leaf(second).not_valid_after_utc > _leaf(first).not_valid_after_utc


def test_a_replaces_the_ca_refuses_is_dropped_and_the_renewal_goes_on(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    tmp_path: Path,
) -> None:
    """The first certificate, put back in the Secret, was already replaced: Pebble refuses
    a second order that replaces it (alreadyReplaced), and acmeflow orders without."""
    first, second = _renewed_through_ari(stack, kubectl, namespace, "again")
    kubectl(
        "patch", "secret", "again-tls", "-n", namespace, "--type", "merge", "-p",
        json.dumps({"data": {
            "tls.crt": base64.b64encode(first["tls.crt"]).decode(),
            "tls.key": base64.b64encode(first["tls.key"]).decode(),
        }}),
    )  # fmt: skip
    third = wait_for(
        lambda: (
            (s := tls_secret(kubectl, namespace, "again-tls"))
            and _leaf(s).serial_number
            not in {_leaf(first).serial_number, _leaf(second).serial_number}
            and s
        ),
        "a third certificate, though the CA refused its replaces",
        timeout_s=60,
    )
    certificate = _ready_at_revision(kubectl, namespace, "again", 3)
    assert "failedIssuanceAttempts" not in certificate["status"]
    orders = _orders(kubectl, namespace, "again")
    assert len(orders) == 3
    refused_then_ordered = _acme_order(
        stack, kubectl, namespace, orders[2]["status"]["url"], tmp_path
    )
    assert "replaces" not in refused_then_ordered
    assert _leaf(third).not_valid_after_utc >= _leaf(second).not_valid_after_utc


def test_what_the_ca_cannot_answer_is_an_answer_that_keeps_the_lifetime_rule(
    stack: StackInfo, tmp_path: Path
) -> None:
    """The ARI step never fails a round: Pebble refusing an id it cannot parse, and an
    account key not there yet, come back as problems with when to ask again."""
    key = tmp_path / "account.pem"
    key.write_bytes(generate_account_key())
    steps = RenewalInfoActivities(AcmeClients(SecretStore()), recheck_max_s=600)

    def ask(certificate_id: str, account_key: Path) -> RenewalInfo:
        request = RenewalInfoRequest(
            server=stack.acme_directory_url,
            account_key=SecretRef(path=str(account_key)),
            certificate_id=certificate_id,
            ca_bundle_pem=stack.acme_ca_bundle.read_text(),
        )
        info: RenewalInfo = ActivityEnvironment().run(steps.fetch_renewal_info, request)
        return info

    unknown = ask("bm90LWFuLWFraQ.AQ", key)
    assert (unknown.offered, unknown.retry_after_s) == (True, 600)
    assert "malformed" in unknown.problem and not unknown.start
    no_key = ask("bm90LWFuLWFraQ.AQ", tmp_path / "missing.pem")
    assert "does not exist" in no_key.problem and no_key.retry_after_s == 600
