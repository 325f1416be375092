"""A Certificate becomes a renewed kubernetes.io/tls Secret; kubectl tells the story."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any, Self

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client, watch
from temporalio.client import Client

from acmeflow.activities.csr import load_private_key
from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    condition_of,
    describe_events,
    dns01_solver,
    issuer_manifest,
    tls_secret,
    wait_for,
    wait_for_ready,
    workflow_runs,
)
from tests.k8s.kube_helpers import Kubectl
from tests.orders.history_search import HistoryText, Secret, private_key_secret, text_secret
from tests.orders.order_harness import assert_certificate

EAB_KEY_ID = "kid-bridge"
EAB_HMAC = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _extra_pebble(stack: StackInfo, options: PebbleOptions) -> Iterator[PebbleEndpoints]:
    process, endpoints = start_extra_pebble(stack, options)
    try:
        yield endpoints
    finally:
        stop_pid_file(process.pid_path)


@pytest.fixture(scope="module")
def short_lived_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """Certificates valid for 90 seconds, so renewal happens within a test."""
    yield from _extra_pebble(stack, PebbleOptions(name="pebble-short", validity_seconds=90))


@pytest.fixture(scope="module")
def eab_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A CA that registers accounts only with an External Account Binding."""
    options = PebbleOptions(name="pebble-eab-bridge", eab_keys={EAB_KEY_ID: EAB_HMAC})
    yield from _extra_pebble(stack, options)


class SecretWatch:
    """Every change to one Secret, seen by a Kubernetes watch in a thread of its own.

    It watches from the resourceVersion of a list made before it starts, resuming from the
    last version it saw, so no change between two of its looks can slip by (a poll could
    miss a Secret that is gone for 100 ms). Any error in the thread (a 410 Gone included:
    it would mean changes were missed) is raised again in the test on exit.
    """

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self._selector = f"metadata.name={name}"
        listed = self._core.list_namespaced_secret(namespace, field_selector=self._selector)
        self._version: str = listed.metadata.resource_version
        self._lock = threading.Lock()
        self._changes: list[tuple[str, dict[str, bytes]]] = []
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="secret-watch", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for event in watch.Watch().stream(
                    self._core.list_namespaced_secret,
                    self._namespace,
                    field_selector=self._selector,
                    resource_version=self._version,
                    timeout_seconds=2,
                ):
                    secret: client.V1Secret = event["object"]
                    data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
                    with self._lock:
                        self._changes.append((str(event["type"]), data))
                        self._version = secret.metadata.resource_version
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            self._error = error

    def changes(self) -> list[tuple[str, dict[str, bytes]]]:
        with self._lock:
            return list(self._changes)

    def gaps(self) -> list[str]:
        """Each change that left the Secret deleted or without a certificate or key."""
        return [
            f"{kind} (keys: {sorted(data)})"
            for kind, data in self.changes()
            if kind == "DELETED" or not data.get("tls.crt") or not data.get("tls.key")
        ]

    def wait_for_data(self, key: str, value: bytes) -> None:
        """Until the watch itself has seen ``key`` hold ``value`` (it saw the change)."""
        wait_for(
            lambda: (
                self._error is not None or any(data.get(key) == value for _, data in self.changes())
            ),
            f"the watch to see the new {key}",
            timeout_s=30,
        )
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise AssertionError(f"the Secret watch failed: {self._error!r}") from self._error

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the Secret watch did not stop"
        self._raise()


def _orders_of(kubectl: Kubectl, namespace: str, certificate: str) -> list[str]:
    result = kubectl(
        "get",
        "orders",
        "-n",
        namespace,
        "-l",
        f"acmeflow.io/certificate={certificate}",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    )
    return sorted(result.stdout.split())


def _leaf(secret: dict[str, bytes]) -> x509.Certificate:
    return x509.load_pem_x509_certificates(secret["tls.crt"])[0]


def _dns_names(secret: dict[str, bytes]) -> list[str]:
    san = _leaf(secret).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(san.value.get_values_for_type(x509.DNSName))


def _secret_data(kubectl: Kubectl, namespace: str, name: str) -> dict[str, bytes]:
    secret = json.loads(kubectl("get", "secret", name, "-n", namespace, "-o", "json").stdout)
    return {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}


def _histories(stack: StackInfo, workflow_ids: list[str]) -> dict[str, list[HistoryText]]:
    """Every run's history of each workflow, by workflow type."""

    async def fetch() -> dict[str, list[HistoryText]]:
        client = await Client.connect(stack.temporal_address)
        found: dict[str, list[HistoryText]] = {}
        for workflow_id in workflow_ids:
            async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
                handle = client.get_workflow_handle(workflow_id, run_id=run.run_id)
                history = HistoryText(await handle.fetch_history())
                found.setdefault(run.workflow_type, []).append(history)
        return found

    return asyncio.run(fetch())


def _public_key(certificate: x509.Certificate) -> Secret:
    """Not a secret: a value the histories must hold, to show the search reads them."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Secret("the certificate's public key", (spki,))


def test_certificate_becomes_a_tls_secret(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    names = ["test1.example.com", "test2.example.com"]
    kubectl.create(certificate_manifest(namespace, "example-com", names))
    certificate = wait_for_ready(kubectl, "certificate", namespace, "example-com")
    secret = tls_secret(kubectl, namespace, "example-com-tls")
    assert secret is not None
    assert_certificate(
        secret["tls.crt"].decode(), load_private_key(secret["tls.key"]), names, stack.pebble_roots
    )
    status = certificate["status"]
    assert status["notAfter"] == _leaf(secret).not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["renewalTime"] < status["notAfter"]
    assert status["revision"] == 1

    [order] = _orders_of(kubectl, namespace, "example-com")
    assert order.startswith("example-com-")
    described = kubectl("describe", "certificate", "example-com", "-n", namespace).stdout
    reasons = [(r, m) for _, r, m in describe_events(described)]
    assert reasons[:2] == [
        ("Generated", "Generated new private key"),
        ("OrderCreated", f'Created Order resource "{order}"'),
    ]
    assert [r for r, _ in reasons].count("Generated") == 1
    order_events = describe_events(kubectl("describe", "order", order, "-n", namespace).stdout)
    assert [r for _, r, _ in order_events] == ["Created", "Created", "OrderValid"]
    columns = kubectl("get", "certificate", "example-com", "-n", namespace).stdout.split()
    assert columns[:4] == ["NAME", "READY", "SECRET", "AGE"]
    assert columns[5:7] == ["True", "example-com-tls"]
    # The key never entered Temporal: only the temporary Secret's name did.
    key = private_key_secret("the certificate's private key", secret["tls.key"])
    histories = _histories(
        stack, [f"certificate/{namespace}/example-com", f"order/{namespace}/{order}"]
    )
    assert sorted(histories) == ["CertificateWorkflow", "OrderWorkflow"]
    for history in [h for runs in histories.values() for h in runs]:
        assert not history.contains(key), history.workflow_id


def test_renewal_replaces_the_secret_without_a_gap(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    short_lived_pebble: PebbleEndpoints,
) -> None:
    kubectl.create(
        issuer_manifest(stack, namespace, "short", server=short_lived_pebble.directory_url)
    )
    kubectl.create(
        certificate_manifest(
            namespace, "renewing", ["test3.example.com"], issuer="short", renewBefore="75s"
        )
    )
    wait_for_ready(kubectl, "certificate", namespace, "renewing")
    first = tls_secret(kubectl, namespace, "renewing-tls")
    assert first is not None
    # A watch from the Secret's resourceVersion before the renewal sees every change.
    with SecretWatch(kubernetes_api_client(stack.kubeconfig), namespace, "renewing-tls") as watch:
        second = wait_for(
            lambda: (
                (s := tls_secret(kubectl, namespace, "renewing-tls"))
                and _leaf(s).serial_number != _leaf(first).serial_number
                and s
            ),
            "the Secret to hold a renewed certificate",
            timeout_s=120,
        )
        watch.wait_for_data("tls.crt", second["tls.crt"])
    assert watch.gaps() == [], "the Secret was missing or incomplete for a moment"
    assert _leaf(second).not_valid_after_utc > _leaf(first).not_valid_after_utc
    assert_certificate(
        second["tls.crt"].decode(),
        load_private_key(second["tls.key"]),
        ["test3.example.com"],
        short_lived_pebble.roots_path,
    )
    assert len(_orders_of(kubectl, namespace, "renewing")) == 2
    certificate = wait_for_ready(kubectl, "certificate", namespace, "renewing")
    assert certificate["status"]["revision"] >= 2


def test_changing_dns_names_issues_anew_and_deleting_cleans_up(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    kubectl.create(certificate_manifest(namespace, "changing", ["test4.example.com"]))
    wait_for_ready(kubectl, "certificate", namespace, "changing")
    kubectl(
        "patch",
        "certificate",
        "changing",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"dnsNames": ["test4.example.com", "test5.example.com"]}}',
    )
    wait_for(
        lambda: (
            (s := tls_secret(kubectl, namespace, "changing-tls"))
            and _dns_names(s) == ["test4.example.com", "test5.example.com"]
        ),
        "the Secret to hold a certificate for the new names",
    )
    orders = _orders_of(kubectl, namespace, "changing")
    assert len(orders) == 2

    kubectl("delete", "certificate", "changing", "-n", namespace, "--wait=true")
    wait_for(
        lambda: _orders_of(kubectl, namespace, "changing") == [],
        "the garbage collector to delete the Certificate's Orders",
    )
    wait_for(
        lambda: kubectl("get", "challenges", "-n", namespace, "-o", "name").stdout == "",
        "the garbage collector to delete the Challenges",
    )
    wait_for(
        lambda: workflow_runs(stack, f"certificate/{namespace}/changing")[:1] == ["CANCELED"],
        "the Certificate's workflow to be cancelled",
    )
    assert tls_secret(kubectl, namespace, "changing-tls") is not None  # kept, as cert-manager


def test_bad_input_is_reported_and_disturbs_nothing(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    kubectl.create(
        certificate_manifest(namespace, "orphan", ["test6.example.com"], issuer="nowhere")
    )
    kubectl.create(
        certificate_manifest(namespace, "owner", ["test7.example.com"], secret_name="shared-tls")
    )
    kubectl.create(
        issuer_manifest(stack, namespace, "unreachable", server="https://127.0.0.1:1/dir")
    )
    owner = wait_for_ready(kubectl, "certificate", namespace, "owner")
    kubectl.create(
        certificate_manifest(namespace, "intruder", ["test8.example.com"], secret_name="shared-tls")
    )

    orphan = wait_for_ready(kubectl, "certificate", namespace, "orphan", status="False")
    assert condition_of(orphan, "Ready")["reason"] == "IssuerNotReady"
    assert f'Issuer "{namespace}/nowhere"' in condition_of(orphan, "Ready")["message"]

    issuer = wait_for_ready(kubectl, "issuer", namespace, "unreachable", status="False")
    ready = condition_of(issuer, "Ready")
    assert ready["reason"] == "ErrRegisterACMEAccount"
    assert "unreachable" in ready["message"] and "127.0.0.1:1" in ready["message"]

    intruder = wait_for_ready(kubectl, "certificate", namespace, "intruder", status="False")
    assert condition_of(intruder, "Ready")["reason"] == "SecretConflict"
    assert '"owner"' in condition_of(intruder, "Ready")["message"]
    events = describe_events(kubectl("describe", "certificate", "intruder", "-n", namespace).stdout)
    assert ("Warning", "SecretConflict") in [(t, r) for t, r, _ in events]
    secret = tls_secret(kubectl, namespace, "shared-tls")
    assert secret is not None
    assert _dns_names(secret) == ["test7.example.com"], "the intruder's names got in"
    assert condition_of(
        wait_for_ready(kubectl, "certificate", namespace, "owner"), "Ready"
    ) == condition_of(owner, "Ready")
    ready_issuer = wait_for_ready(kubectl, "issuer", namespace, "pebble")
    assert condition_of(ready_issuer, "Ready")["reason"] == "ACMEAccountRegistered"
    assert ready_issuer["status"]["acme"]["uri"].startswith(
        stack.acme_directory_url.removesuffix("/dir")
    )


def test_an_issuer_recovers_when_its_server_comes_back(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    port = free_port()
    kubectl.create(
        issuer_manifest(stack, namespace, "late", server=f"https://127.0.0.1:{port}/dir")
    )
    down = wait_for_ready(kubectl, "issuer", namespace, "late", status="False")
    assert condition_of(down, "Ready")["reason"] == "ErrRegisterACMEAccount"
    process, _ = start_extra_pebble(stack, PebbleOptions(name="pebble-late"), port=port)
    try:
        up = wait_for_ready(kubectl, "issuer", namespace, "late", timeout_s=120)
    finally:
        stop_pid_file(process.pid_path)
    assert condition_of(up, "Ready")["reason"] == "ACMEAccountRegistered"
    assert up["status"]["acme"]["uri"].startswith(f"https://127.0.0.1:{port}/")


def test_no_workflow_history_holds_a_secret(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    eab_pebble: PebbleEndpoints,
) -> None:
    """An Issuer with an EAB and a TSIG-signed DNS-01 solver, a Certificate through it:
    the Certificate's, its Order's and the Issuer account's histories hold none of the
    secrets involved (the search is proven in tests/orders/test_history_secrets.py)."""
    kubectl.create(_opaque_secret(namespace, "eab", {"secret": EAB_HMAC}))
    issuer = issuer_manifest(
        stack, namespace, "eab", server=eab_pebble.directory_url, solvers=[dns01_solver(stack)]
    )
    issuer["spec"]["acme"]["externalAccountBinding"] = {
        "keyID": EAB_KEY_ID,
        "keySecretRef": {"name": "eab", "key": "secret"},
    }
    kubectl.create(issuer)
    names = ["secretive.example.com"]
    kubectl.create(certificate_manifest(namespace, "secretive", names, issuer="eab"))
    wait_for_ready(kubectl, "certificate", namespace, "secretive", timeout_s=120)
    tls = tls_secret(kubectl, namespace, "secretive-tls")
    assert tls is not None and _dns_names(tls) == names
    [order] = _orders_of(kubectl, namespace, "secretive")
    [account_key] = _secret_data(kubectl, namespace, "eab-account").values()

    forbidden = [
        text_secret("TSIG secret", stack.tsig_secret_path.read_text().strip()),
        text_secret("EAB HMAC key", EAB_HMAC),
        private_key_secret("account key", account_key),
        private_key_secret("certificate private key", tls["tls.key"]),
    ]
    histories = _histories(
        stack,
        [
            f"certificate/{namespace}/secretive",
            f"order/{namespace}/{order}",
            f"issuer/{namespace}/eab",
        ],
    )
    assert sorted(histories) == ["CertificateWorkflow", "IssuerAccountWorkflow", "OrderWorkflow"]
    for order_history in histories["OrderWorkflow"]:  # the search does read these payloads
        assert order_history.contains(_public_key(_leaf(tls)))
    for history in [h for runs in histories.values() for h in runs]:
        assert history.found(forbidden) == [], f"in the history of {history.workflow_id}"


def _opaque_secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }
