"""cert-manager's real controllers run on the embedded stack: the fixture and ``dev up``.

The fixture runs the external-issuer set, which signs nothing itself. So the first test
plays the external issuer by hand, as acmeflow's bridge will: it signs the
CertificateRequest that cert-manager made and approved. Everything else (the trigger,
the key, the request, the approval, the Secret, Ready) is cert-manager's own work.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmeflow.devstack import go_builds
from acmeflow.devstack.cert_manager import CertManagerInfo, start_cert_manager
from acmeflow.devstack.processes import pid_alive
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import wait_for
from tests.cert_manager.cert_manager_resources import certificate_events
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.stack.test_dev_cli import acmeflow

pytestmark = pytest.mark.stack

CM = "cert-manager.io"
CERTIFICATES = f"certificates.{CM}"
REQUESTS = f"certificaterequests.{CM}"
REPO = Path(__file__).resolve().parents[2]
HAND_SIGNER = {"name": "by-hand", "kind": "Signer", "group": "signer.tests.acmeflow.io"}


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo, cert_manager: CertManagerInfo) -> Kubectl:
    return Kubectl(stack)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "cm") as name:
        yield name


def condition(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in resource.get("status", {}).get("conditions", []):
        if entry["type"] == kind:
            return dict(entry)
    return {}


def requests_of(kubectl: Kubectl, namespace: str, certificate: str) -> list[dict[str, Any]]:
    listing = json.loads(kubectl("get", REQUESTS, "-n", namespace, "-o", "json").stdout)
    annotation = f"{CM}/certificate-name"
    return [
        item
        for item in listing["items"]
        if item["metadata"].get("annotations", {}).get(annotation) == certificate
    ]


def is_ready(kubectl: Kubectl, namespace: str, certificate: str) -> bool:
    found = kubectl.get(CERTIFICATES, certificate, namespace=namespace)
    return condition(found, "Ready").get("status") == "True"


def certificate_named(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """The cert-manager Certificate, or ``{}`` while it does not exist."""
    found = kubectl("get", CERTIFICATES, name, "-n", namespace, "-o", "json", check=False)
    return dict(json.loads(found.stdout)) if found.returncode == 0 else {}


def sign_by_hand(csr_pem: bytes) -> tuple[bytes, bytes]:
    """A throwaway CA signs the CSR's key for the CSR's names: (leaf PEM, CA PEM)."""
    csr = x509.load_pem_x509_csr(csr_pem)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hand signer")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=20))
        .add_extension(names, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    encoding = serialization.Encoding.PEM
    return leaf.public_bytes(encoding), ca.public_bytes(encoding)


def test_a_cert_manager_certificate_ends_ready_through_its_own_controllers(
    kubectl: Kubectl, namespace: str
) -> None:
    names = ["test1.example.com", "test2.example.com"]
    kubectl.create(
        {
            "apiVersion": f"{CM}/v1",
            "kind": "Certificate",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"secretName": "web-tls", "dnsNames": names, "issuerRef": HAND_SIGNER},
        }
    )
    approved = wait_for(
        lambda: [
            r
            for r in requests_of(kubectl, namespace, "web")
            if condition(r, "Approved").get("status") == "True"
        ],
        "cert-manager to request and approve a certificate",
    )
    request = approved[0]
    assert condition(request, "Approved")["reason"] == CM  # cert-manager's approver, not us
    assert request["spec"]["issuerRef"] == HAND_SIGNER
    owners = request["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"]) for o in owners] == [("Certificate", "web")]

    leaf, ca = sign_by_hand(base64.b64decode(request["spec"]["request"]))
    kubectl.patch_status(
        REQUESTS,
        request["metadata"]["name"],
        {
            "certificate": base64.b64encode(leaf).decode(),
            "ca": base64.b64encode(ca).decode(),
            "conditions": [
                *request["status"]["conditions"],
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Issued",
                    "message": "signed by the test",
                    "lastTransitionTime": datetime.datetime.now(datetime.UTC).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                },
            ],
        },
        namespace=namespace,
    )

    wait_for(lambda: is_ready(kubectl, namespace, "web"), "the Certificate to become Ready")
    secret = kubectl.get("secret", "web-tls", namespace=namespace)
    assert secret["type"] == "kubernetes.io/tls"
    stored = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    assert stored["tls.crt"] == leaf
    assert stored["ca.crt"] == ca
    key = serialization.load_pem_private_key(stored["tls.key"], password=None)
    cert = x509.load_pem_x509_certificate(stored["tls.crt"])
    public = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*public) == cert.public_key().public_bytes(*public)

    described = kubectl("describe", CERTIFICATES, "web", "-n", namespace).stdout
    events = [(reason, message) for _, reason, message in certificate_events(described)]
    reasons = [reason for reason, _ in events]
    assert reasons[:3] == ["Issuing", "Generated", "Requested"], events
    assert ("Issuing", "The certificate has been successfully issued") in events


def test_the_ingress_and_gateway_shims_make_certificates(kubectl: Kubectl, namespace: str) -> None:
    annotations = {
        f"{CM}/issuer": "acme",
        f"{CM}/issuer-kind": "Issuer",
        f"{CM}/issuer-group": "acmeflow.io",
    }
    kubectl.create(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": namespace, "annotations": annotations},
            "spec": {
                "tls": [{"hosts": ["test1.example.com"], "secretName": "shop-tls"}],
                "rules": [{"host": "test1.example.com"}],
            },
        }
    )
    kubectl.create(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": namespace, "annotations": annotations},
            "spec": {
                "gatewayClassName": "none",
                "listeners": [
                    {
                        "name": "https",
                        "hostname": "test2.example.com",
                        "port": 443,
                        "protocol": "HTTPS",
                        "tls": {"mode": "Terminate", "certificateRefs": [{"name": "edge-tls"}]},
                    }
                ],
            },
        }
    )
    expected_ref = {"name": "acme", "kind": "Issuer", "group": "acmeflow.io"}
    for secret, owner_kind, host in (
        ("shop-tls", "Ingress", "test1.example.com"),
        ("edge-tls", "Gateway", "test2.example.com"),
    ):
        certificate = wait_for(
            lambda name=secret: certificate_named(kubectl, namespace, name),
            f"the {owner_kind} shim to make Certificate {secret}",
        )
        assert certificate["spec"]["issuerRef"] == expected_ref
        assert certificate["spec"]["dnsNames"] == [host]
        owners = certificate["metadata"]["ownerReferences"]
        assert [o["kind"] for o in owners] == [owner_kind]


def test_a_second_controllers_process_on_the_stack_stands_by(
    stack: StackInfo, kubectl: Kubectl, namespace: str
) -> None:
    """Two sessions sharing a stack must not both reconcile: the second waits for the Lease."""
    second = start_cert_manager(
        stack.state_dir, stack, name=f"cert-manager-session-{os.getpid()}-standby"
    )
    try:
        kubectl.create(
            {
                "apiVersion": f"{CM}/v1",
                "kind": "Certificate",
                "metadata": {"name": "solo", "namespace": namespace},
                "spec": {
                    "secretName": "solo-tls",
                    "dnsNames": ["test1.example.com"],
                    "issuerRef": HAND_SIGNER,
                },
            }
        )
        wait_for(lambda: requests_of(kubectl, namespace, "solo"), "the leader to request")
        lease = kubectl.get("lease", "cert-manager-controller", namespace="kube-system")
        holder = lease["spec"]["holderIdentity"]
        assert not holder.endswith(f"_{second.pid}")  # the fixture's, or another session's
        log = second.log_path.read_text()
        assert "starting controller" not in log
        assert f'"leader" logger="cert-manager-controllers" identity="{holder}"' in log
    finally:
        second.stop()


def status_rows(state_dir: Path) -> dict[str, str]:
    status = acmeflow("status", state_dir=state_dir)
    return {line.split()[0]: line.split()[-1] for line in status.stdout.splitlines()[1:]}


@contextmanager
def dev_up_with_cert_manager(state_dir: Path, *flags: str) -> Iterator[Kubectl]:
    """``dev up --detach --with-cert-manager``; afterwards ``dev down`` must stop cert-manager."""
    up = acmeflow("up", "--detach", "--with-cert-manager", *flags, state_dir=state_dir)
    pid = 0
    try:
        assert up.returncode == 0, up.stderr
        rows = status_rows(state_dir)
        assert rows["cert-manager"] == "yes", rows
        pid = int((state_dir / "pids" / "cert-manager.pid").read_text())
        assert pid_alive(pid)
        assert json.loads((state_dir / "stack.json").read_text())["with_cert_manager"] is True
        kubectl = Kubectl(StackInfo.load(state_dir))
        served = set(kubectl("api-resources", "-o", "name").stdout.split())
        assert {CERTIFICATES, REQUESTS} <= served
        # Without acme.cert-manager.io installed, a bare "order" still means acmeflow's.
        assert not [name for name in served if name.endswith(".acme.cert-manager.io")]
        yield kubectl
    finally:
        down = acmeflow("down", state_dir=state_dir)
    assert down.returncode == 0
    assert "cert-manager" in down.stdout
    assert pid > 0 and not pid_alive(pid)
    assert status_rows(state_dir)["cert-manager"] == "no"


def test_dev_up_with_cert_manager_issues_a_cert_manager_certificate_through_acmeflow(
    tmp_path: Path, stack: StackInfo
) -> None:
    with dev_up_with_cert_manager(tmp_path / "dev") as kubectl:
        dev = kubectl.stack
        issuer = (REPO / "deploy" / "examples" / "issuer.yaml").read_text()
        issuer = issuer.replace("@SERVER@", dev.acme_directory_url).replace(
            "@CA_BUNDLE@", base64.b64encode(dev.acme_ca_bundle.read_bytes()).decode()
        )
        kubectl("create", "namespace", "shop")
        kubectl("apply", "-n", "shop", "-f", "-", stdin=issuer)
        acmeflow_issuer = {"name": "pebble", "kind": "Issuer", "group": "acmeflow.io"}
        kubectl.create(
            {
                "apiVersion": f"{CM}/v1",
                "kind": "Certificate",
                "metadata": {"name": "shop", "namespace": "shop"},
                "spec": {
                    "secretName": "shop-tls",
                    "dnsNames": ["test1.example.com"],
                    "issuerRef": acmeflow_issuer,
                },
            }
        )
        wait_for(
            lambda: is_ready(kubectl, "shop", "shop"), "acmeflow to sign cert-manager's request"
        )
        secret = kubectl.get("secret", "shop-tls", namespace="shop")
        leaf = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == ["test1.example.com"]
        assert "Pebble" in leaf.issuer.rfc4514_string()


def test_dev_up_servers_only_with_cert_manager_runs_no_acmeflow_processes(
    tmp_path: Path, stack: StackInfo
) -> None:
    with dev_up_with_cert_manager(tmp_path / "dev", "--servers-only"):
        rows = status_rows(tmp_path / "dev")
        assert not {"acmeflow-worker", "acmeflow-bridge"} & set(rows)


def test_an_edited_program_gets_a_binary_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "cert-manager-controllers"
    shutil.copytree(go_builds.CERT_MANAGER_PROGRAM, program)
    monkeypatch.setattr(go_builds, "CERT_MANAGER_PROGRAM", program)
    before = go_builds.cert_manager_binary()
    with (program / "main.go").open("a") as main_go:
        main_go.write("\n// a change\n")
    after = go_builds.cert_manager_binary()
    assert after != before
    assert after.parent.parent == before.parent.parent == go_builds.cache_base() / "cert-manager"
    version = go_builds.required_version(go_builds.CERT_MANAGER_MODULE)
    assert after.parent.name.startswith(f"{version}-")
