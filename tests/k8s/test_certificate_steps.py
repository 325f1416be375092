"""A Certificate's Kubernetes steps against the real kube-apiserver: key, Order, TLS Secret.

What is checked is what a user sees with kubectl: the next-key Secret owned by the
Certificate, the Order it leads to (admitted by acmeflow's own CRD schema), and the
``kubernetes.io/tls`` Secret written in place on renewal, never over another's.
"""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.exceptions import ApplicationError

from acmeflow.activities.certificate_steps import (
    CERTIFICATE_ANNOTATION,
    ISSUER_ANNOTATION,
    CertificateActivities,
    certificate_label,
    next_key_secret_name,
)
from acmeflow.activities.errors import BAD_REQUEST
from acmeflow.activities.kubernetes_api import MANAGED_LABEL
from acmeflow.contracts.certificate import (
    TLS_SECRET_LABEL,
    CertificateRef,
    KeyRequest,
    OrderResourceRequest,
    PreparedKey,
    StoreRequest,
)
from acmeflow.contracts.names import RequestedNames
from acmeflow.crds import models as crd
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace

pytestmark = pytest.mark.stack

NAMES = RequestedNames(dns_names=["web.example.com", "www.example.com"])
ORDERS = "orders.acmeflow.io"


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    return Kubectl(stack)


@pytest.fixture(scope="module")
def steps(stack: StackInfo, kubectl: Kubectl) -> CertificateActivities:
    """The activities as a worker in the cluster runs them, with acmeflow's CRDs served."""
    install_acmeflow_crds(kubectl)
    return CertificateActivities(kubernetes_api_client(stack.kubeconfig))


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "certsteps") as name:
        yield name


@pytest.fixture
def certificate(steps: CertificateActivities, kubectl: Kubectl, namespace: str) -> CertificateRef:
    """A Certificate resource to own what the steps create (nothing reconciles it here)."""
    name = f"web-{uuid.uuid4().hex[:6]}"
    resource = crd.Certificate(
        metadata=crd.ObjectMeta(name=name, namespace=namespace),
        spec=crd.CertificateSpec(
            secret_name=f"{name}-tls",
            dns_names=NAMES.dns_names,
            issuer_ref=crd.IssuerRef(name="test-issuer"),
        ),
    )
    kubectl.create(resource.to_api())
    uid = kubectl.get("certificates.acmeflow.io", name, namespace=namespace)["metadata"]["uid"]
    return CertificateRef(namespace=namespace, name=name, uid=uid)


def key_request(certificate: CertificateRef) -> KeyRequest:
    return KeyRequest(
        certificate=certificate,
        secret_name=f"{certificate.name}-tls",
        names=NAMES,
        algorithm="ECDSA",
    )


def owned_by(certificate: CertificateRef) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "acmeflow.io/v1alpha1",
            "kind": "Certificate",
            "name": certificate.name,
            "uid": certificate.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def decoded(secret: dict[str, Any]) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in secret.get("data", {}).items()}


def public_key_of_csr(csr_pem: str) -> bytes:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    return csr.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_of_pem_key(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signed_chain(csr_pem: str) -> str:
    """A leaf for the CSR's key and names, issued by a throwaway CA: what a CA would return."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    def certificate(subject: x509.Name, public_key: Any, extension: x509.ExtensionType) -> bytes:
        built = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(extension, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return built.public_bytes(serialization.Encoding.PEM)

    leaf = certificate(x509.Name([]), csr.public_key(), san)
    root = certificate(ca_name, ca_key.public_key(), x509.BasicConstraints(ca=True, path_length=0))
    return (leaf + root).decode()


def store(
    steps: CertificateActivities, certificate: CertificateRef, prepared: PreparedKey
) -> StoreRequest:
    request = StoreRequest(
        certificate=certificate,
        secret_name=f"{certificate.name}-tls",
        key_secret=prepared.key_secret,
        chain_pem=signed_chain(prepared.csr_pem),
        issuer_name="test-issuer",
    )
    assert steps.store_certificate(request).up_to_date
    return request


def test_the_next_private_key_waits_in_a_secret_owned_by_the_certificate(
    steps: CertificateActivities, kubectl: Kubectl, certificate: CertificateRef
) -> None:
    prepared = steps.prepare_private_key(key_request(certificate))
    assert prepared.generated
    assert prepared.key_secret == next_key_secret_name(certificate.name)

    secret = kubectl.get("secret", prepared.key_secret, namespace=certificate.namespace)
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"] == {MANAGED_LABEL: "true"}
    assert secret["metadata"]["annotations"] == {CERTIFICATE_ANNOTATION: certificate.name}
    assert secret["metadata"]["ownerReferences"] == owned_by(certificate)
    key_pem = decoded(secret)["tls.key"]
    assert public_key_of_csr(prepared.csr_pem) == public_key_of_pem_key(key_pem)

    again = steps.prepare_private_key(key_request(certificate))  # a retried step
    assert public_key_of_csr(again.csr_pem) == public_key_of_pem_key(key_pem)


@pytest.mark.parametrize(
    ("encoding", "header"),
    [("PKCS1", b"-----BEGIN EC PRIVATE KEY-----"), ("PKCS8", b"-----BEGIN PRIVATE KEY-----")],
    ids=["PKCS1", "PKCS8"],
)
def test_the_next_private_key_is_written_in_the_certificates_encoding(
    steps: CertificateActivities,
    kubectl: Kubectl,
    certificate: CertificateRef,
    encoding: str,
    header: bytes,
) -> None:
    request = replace(key_request(certificate), encoding=encoding)
    prepared = steps.prepare_private_key(request)
    secret = kubectl.get("secret", prepared.key_secret, namespace=certificate.namespace)
    assert decoded(secret)["tls.key"].startswith(header)


def test_the_order_resource_is_owned_by_the_certificate_and_created_once(
    steps: CertificateActivities, kubectl: Kubectl, certificate: CertificateRef
) -> None:
    prepared = steps.prepare_private_key(key_request(certificate))
    request = OrderResourceRequest(
        certificate=certificate,
        csr_pem=prepared.csr_pem,
        names=NAMES,
        issuer_ref={"name": "test-issuer", "kind": "Issuer", "group": "acmeflow.io"},
        revision=1,
        duration="2160h",
        labels={"app": "web"},
    )
    created = steps.create_order_resource(request)

    order = kubectl.get(ORDERS, created.name, namespace=certificate.namespace)
    assert order["metadata"]["uid"] == created.uid
    assert created.name.startswith(f"{certificate.name}-")
    assert order["metadata"]["labels"] == {
        "app": "web",
        "acmeflow.io/certificate": certificate.name,
    }
    assert order["metadata"]["ownerReferences"] == owned_by(certificate)
    assert order["spec"] == {
        "request": prepared.csr_pem,
        "issuerRef": {"name": "test-issuer", "kind": "Issuer", "group": "acmeflow.io"},
        "dnsNames": NAMES.dns_names,
        "ipAddresses": [],
        "duration": "2160h",
    }

    assert steps.create_order_resource(request) == created  # a retried step finds it


def test_a_certificate_with_a_long_name_gets_its_order(
    steps: CertificateActivities, kubectl: Kubectl, namespace: str
) -> None:
    name = f"web-{uuid.uuid4().hex[:6]}-" + "x" * 100  # a valid name; too long for a label
    resource = crd.Certificate(
        metadata=crd.ObjectMeta(name=name, namespace=namespace),
        spec=crd.CertificateSpec(
            secret_name="long-tls", dns_names=NAMES.dns_names, issuer_ref=crd.IssuerRef(name="x")
        ),
    )
    kubectl.create(resource.to_api())
    uid = kubectl.get("certificates.acmeflow.io", name, namespace=namespace)["metadata"]["uid"]
    long_named = CertificateRef(namespace=namespace, name=name, uid=uid)
    prepared = steps.prepare_private_key(key_request(long_named))
    created = steps.create_order_resource(
        OrderResourceRequest(
            certificate=long_named,
            csr_pem=prepared.csr_pem,
            names=NAMES,
            issuer_ref={"name": "x", "kind": "Issuer", "group": "acmeflow.io"},
            revision=1,
        )
    )

    labels = kubectl.get(ORDERS, created.name, namespace=namespace)["metadata"]["labels"]
    value = labels["acmeflow.io/certificate"]
    assert len(value) <= 63 and value.startswith(name[:52])
    assert value != certificate_label(name + "y")  # still tells Certificates apart


def test_the_certificate_is_stored_as_a_tls_secret_and_renewed_in_place(
    steps: CertificateActivities, kubectl: Kubectl, certificate: CertificateRef
) -> None:
    namespace, secret_name = certificate.namespace, f"{certificate.name}-tls"
    first = steps.prepare_private_key(key_request(certificate))
    first_key = decoded(kubectl.get("secret", first.key_secret, namespace=namespace))["tls.key"]
    stored = store(steps, certificate, first)

    secret = kubectl.get("secret", secret_name, namespace=namespace)
    assert secret["type"] == "kubernetes.io/tls"
    root = x509.load_pem_x509_certificates(stored.chain_pem.encode())[-1]  # self-signed
    assert decoded(secret) == {
        "tls.crt": stored.chain_pem.encode(),
        "tls.key": first_key,
        "ca.crt": root.public_bytes(serialization.Encoding.PEM),
    }
    # The label the bridge watches acmeflow's TLS Secrets by.
    assert secret["metadata"]["labels"] == {
        MANAGED_LABEL: "true",
        TLS_SECRET_LABEL: certificate.name,
    }
    assert {
        CERTIFICATE_ANNOTATION: certificate.name,
        ISSUER_ANNOTATION: "test-issuer",
        "acmeflow.io/alt-names": ",".join(NAMES.dns_names),
    }.items() <= secret["metadata"]["annotations"].items()
    assert "ownerReferences" not in secret["metadata"]  # the Secret outlives its Certificate
    leftover = kubectl("get", "secret", first.key_secret, "-n", namespace, "--ignore-not-found")
    assert leftover.stdout == ""  # the next-key Secret is dropped once the key is stored
    assert steps.inspect_certificate_secret(key_request(certificate)).up_to_date
    # The worker died after writing, before reporting: the retry finds the step done.
    assert steps.store_certificate(stored).up_to_date
    assert decoded(kubectl.get("secret", secret_name, namespace=namespace))["tls.key"] == first_key

    # As a Secret written before the label existed: the next write labels it.
    kubectl("label", "secret", secret_name, "-n", namespace, f"{TLS_SECRET_LABEL}-")
    second = steps.prepare_private_key(key_request(certificate))  # renewal: a new key
    renewed = store(steps, certificate, second)
    again = kubectl.get("secret", secret_name, namespace=namespace)
    assert again["metadata"]["uid"] == secret["metadata"]["uid"]
    assert again["metadata"]["labels"][TLS_SECRET_LABEL] == certificate.name
    assert decoded(again)["tls.crt"] == renewed.chain_pem.encode()
    assert decoded(again)["tls.key"] != first_key


def test_a_secret_holding_another_certificate_is_never_overwritten(
    steps: CertificateActivities, kubectl: Kubectl, certificate: CertificateRef
) -> None:
    namespace, secret_name = certificate.namespace, f"{certificate.name}-tls"
    kubectl(
        "create", "secret", "generic", secret_name, "-n", namespace, "--from-literal=tls.crt=x",
    )  # fmt: skip
    kubectl(
        "annotate", "secret", secret_name, "-n", namespace, f"{CERTIFICATE_ANNOTATION}=other",
    )  # fmt: skip
    inspection = steps.inspect_certificate_secret(key_request(certificate))
    assert not inspection.up_to_date
    assert 'already holds the certificate of Certificate "other"' in inspection.conflict

    prepared = steps.prepare_private_key(key_request(certificate))
    with pytest.raises(ApplicationError) as caught:
        store(steps, certificate, prepared)
    assert caught.value.type == BAD_REQUEST
    assert 'belongs to Certificate "other"' in caught.value.message
    assert decoded(kubectl.get("secret", secret_name, namespace=namespace)) == {"tls.crt": b"x"}


def test_a_refresh_writes_the_secret_only_when_it_differs(
    steps: CertificateActivities, kubectl: Kubectl, certificate: CertificateRef
) -> None:
    """The workflow refreshes at every look at a good Secret, and each write makes the bridge
    look again: a refresh with nothing to change must write nothing."""
    namespace, secret_name = certificate.namespace, f"{certificate.name}-tls"
    stored = store(steps, certificate, steps.prepare_private_key(key_request(certificate)))
    assert not steps.refresh_tls_secret(stored)
    version = kubectl.get("secret", secret_name, namespace=namespace)["metadata"]["resourceVersion"]

    retemplated = replace(stored, secret_labels={"team": "web"}, encoding="PKCS8")
    assert steps.refresh_tls_secret(retemplated)
    secret = kubectl.get("secret", secret_name, namespace=namespace)
    assert secret["metadata"]["resourceVersion"] != version
    assert secret["metadata"]["labels"]["team"] == "web"
    assert decoded(secret)["tls.key"].startswith(b"-----BEGIN PRIVATE KEY-----")
    assert decoded(secret)["tls.crt"] == stored.chain_pem.encode()
    assert not steps.refresh_tls_secret(retemplated)
