"""A Certificate becomes a renewed kubernetes.io/tls Secret; kubectl tells the story."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from cryptography import x509

from acmeflow.activities.csr import load_private_key
from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    condition_of,
    describe_events,
    issuer_manifest,
    tls_secret,
    wait_for,
    wait_for_ready,
    workflow_runs,
)
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate


@pytest.fixture(scope="module")
def short_lived_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """Certificates valid for 90 seconds, so renewal happens within a test."""
    process, endpoints = start_extra_pebble(
        stack, PebbleOptions(name="pebble-short", validity_seconds=90)
    )
    yield endpoints
    stop_pid_file(process.pid_path)


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
    assert "next-private-key" not in str(secret)


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
    gaps: list[str] = []
    stop = threading.Event()

    def watch_secret() -> None:
        while not stop.is_set():
            current = tls_secret(kubectl, namespace, "renewing-tls")
            if current is None or not current.get("tls.crt") or not current.get("tls.key"):
                gaps.append(time.strftime("%H:%M:%S"))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_secret, daemon=True)
    watcher.start()
    try:
        second = wait_for(
            lambda: (
                (s := tls_secret(kubectl, namespace, "renewing-tls"))
                and _leaf(s).serial_number != _leaf(first).serial_number
                and s
            ),
            "the Secret to hold a renewed certificate",
            timeout_s=120,
        )
    finally:
        stop.set()
        watcher.join(5)
    assert gaps == []
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
    names = wait_for(
        lambda: (
            (s := tls_secret(kubectl, namespace, "changing-tls"))
            and sorted(
                _leaf(s)
                .extensions.get_extension_for_class(x509.SubjectAlternativeName)
                .value.get_values_for_type(x509.DNSName)
            )
            == ["test4.example.com", "test5.example.com"]
        ),
        "the Secret to hold a certificate for the new names",
    )
    assert names
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
    assert _leaf(secret).subject.rfc4514_string() == "" or "test7.example.com" in str(
        _leaf(secret).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )
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
