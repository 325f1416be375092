"""The generated CRDs on the real kube-apiserver: what is accepted, shown and refused.

Valid objects are built from ``acmeflow.crds.models`` and read back through the same
models, so a field the schema forgot (and the API server would silently prune) fails here.
Bad input is sent as raw JSON, because the point is what admission says about it.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmeflow.crds.models import (
    API_VERSION,
    AccountKeySecretRef,
    AcmeAuthorization,
    AcmeChallengeRef,
    AcmeExternalAccountBinding,
    AcmeIssuerSpec,
    AcmeIssuerStatus,
    AcmeSolver,
    AcmeSolverSelector,
    Certificate,
    CertificateSpec,
    CertificateStatus,
    Challenge,
    ChallengeSpec,
    ChallengeStatus,
    ClusterIssuer,
    Condition,
    Dns01Solver,
    GatewayHttpRouteSolver,
    Http01Solver,
    IngressSolver,
    Issuer,
    IssuerRef,
    IssuerSpec,
    IssuerStatus,
    LexiconProvider,
    LexiconSecretRef,
    ObjectMeta,
    Order,
    OrderSpec,
    OrderStatus,
    ParentRef,
    PrivateKeySpec,
    Rfc2136Provider,
    SecretKeyRef,
    SecretTemplate,
    WebhookProvider,
)
from acmeflow.devstack.stack import StackInfo
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace

pytestmark = pytest.mark.stack

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    return kubectl


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "crd-admission") as name:
        yield name


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_csr(*names: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def issuer_spec(stack: StackInfo) -> IssuerSpec:
    """An issuer with every feature: EAB, CA bundle, three DNS-01 and two HTTP-01 solvers."""
    return IssuerSpec(
        acme=AcmeIssuerSpec(
            server=stack.acme_directory_url,
            email="ops@example.com",
            private_key_secret_ref=AccountKeySecretRef(name="acme-account"),
            ca_bundle=base64.b64encode(stack.acme_ca_bundle.read_bytes()).decode(),
            external_account_binding=AcmeExternalAccountBinding(
                key_id="kid-1",
                key_secret_ref=SecretKeyRef(name="eab", key="secret"),
                key_algorithm="HS384",
            ),
            preferred_chain="Pebble Root CA",
            profile="shortlived",
            solvers=[
                AcmeSolver(
                    selector=AcmeSolverSelector(
                        dns_names=["*.example.com", "example.com"], dns_zones=["example.com"]
                    ),
                    dns01=Dns01Solver(
                        rfc2136=Rfc2136Provider(
                            nameserver=stack.dns_address,
                            tsig_key_name=stack.tsig_key_name,
                            tsig_secret_secret_ref=SecretKeyRef(name="tsig", key="secret"),
                            tsig_algorithm="HMACSHA256",
                        )
                    ),
                ),
                AcmeSolver(
                    selector=AcmeSolverSelector(match_labels={"team": "web"}),
                    http01=Http01Solver(
                        gateway_http_route=GatewayHttpRouteSolver(
                            parent_refs=[
                                ParentRef(name="gw", namespace="infra", section_name="http")
                            ],
                            labels={"gateway": "public"},
                        )
                    ),
                ),
                AcmeSolver(http01=Http01Solver(ingress=IngressSolver(ingress_class_name="nginx"))),
                AcmeSolver(
                    selector=AcmeSolverSelector(dns_zones=["example.net"]),
                    dns01=Dns01Solver(
                        cname_strategy="Follow",
                        lexicon=LexiconProvider(
                            provider="powerdns",
                            zone="example.net",
                            credentials_secret_ref=LexiconSecretRef(name="powerdns-api"),
                            options={"pdns_server": "http://127.0.0.1:8081"},
                        ),
                    ),
                ),
                AcmeSolver(
                    selector=AcmeSolverSelector(dns_zones=["example.org"]),
                    dns01=Dns01Solver(
                        webhook=WebhookProvider(
                            group_name="acme.example.com",
                            solver_name="bind",
                            config={"nameserver": "127.0.0.1:53", "keys": [{"name": "k"}]},
                        )
                    ),
                ),
            ],
        )
    )


def order_spec(issuer: str) -> OrderSpec:
    return OrderSpec(
        request=make_csr("www.example.com", "example.com"),
        issuer_ref=IssuerRef(name=issuer),
        common_name="www.example.com",
        dns_names=["www.example.com", "example.com"],
        duration="2160h",
    )


def challenge_spec(issuer: str) -> ChallengeSpec:
    return ChallengeSpec(
        url="https://acme.example/chall/1",
        authorization_url="https://acme.example/authz/1",
        dns_name="example.com",
        wildcard=True,
        type="DNS-01",
        token="tok-1",
        key="txt-value",
        solver=AcmeSolver(dns01=Dns01Solver(rfc2136=Rfc2136Provider(nameserver="127.0.0.1:53"))),
        issuer_ref=IssuerRef(name=issuer, kind="ClusterIssuer"),
    )


def certificate_spec(issuer: str) -> CertificateSpec:
    return CertificateSpec(
        secret_name="web-tls",
        common_name="www.example.com",
        dns_names=["www.example.com", "*.example.com"],
        ip_addresses=["192.0.2.10", "2001:db8::1"],
        renew_before="720h",
        issuer_ref=IssuerRef(name=issuer),
        private_key=PrivateKeySpec(algorithm="ECDSA", size=384, rotation_policy="Never"),
        secret_template=SecretTemplate(labels={"app": "web"}, annotations={"note": "x"}),
    )


# --- Accepted -----------------------------------------------------------------------------


def test_valid_resources_are_stored_without_losing_a_field(
    kubectl: Kubectl, namespace: str, stack: StackInfo
) -> None:
    issuer_name, cluster_issuer_name = unique("issuer"), unique("cluster-issuer")
    objects: list[Issuer | ClusterIssuer | Order | Challenge | Certificate] = [
        Issuer(metadata=ObjectMeta(name=issuer_name, namespace=namespace), spec=issuer_spec(stack)),
        ClusterIssuer(metadata=ObjectMeta(name=cluster_issuer_name), spec=issuer_spec(stack)),
        Order(
            metadata=ObjectMeta(name=unique("order"), namespace=namespace),
            spec=order_spec(issuer_name),
        ),
        Challenge(
            metadata=ObjectMeta(name=unique("challenge"), namespace=namespace),
            spec=challenge_spec(cluster_issuer_name),
        ),
        Certificate(
            metadata=ObjectMeta(name=unique("cert"), namespace=namespace),
            spec=certificate_spec(issuer_name),
        ),
    ]
    try:
        for sent in objects:
            kubectl.create(sent.to_api())
            stored = kubectl.get(sent.PLURAL, sent.metadata.name, namespace=sent.metadata.namespace)
            assert type(sent).model_validate(stored).spec == sent.spec, sent.KIND
    finally:
        for obj in objects:
            if not obj.NAMESPACED:
                kubectl("delete", obj.PLURAL, obj.metadata.name, "--wait=false", check=False)


def test_defaults_are_filled_in_by_the_api_server(kubectl: Kubectl, namespace: str) -> None:
    name = unique("minimal")
    kubectl.create(
        {
            "apiVersion": API_VERSION,
            "kind": "Certificate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "secretName": "minimal-tls",
                "dnsNames": ["minimal.example.com"],
                "issuerRef": {"name": "letsencrypt"},
                "privateKey": {},
            },
        }
    )
    spec = kubectl.get("afcert", name, namespace=namespace)["spec"]
    assert spec["duration"] == "2160h"
    assert spec["issuerRef"] == {"name": "letsencrypt", "kind": "Issuer", "group": "acmeflow.io"}
    assert spec["privateKey"] == {
        "algorithm": "RSA",
        "encoding": "PKCS1",  # cert-manager's default
        "rotationPolicy": "Always",
    }


def test_status_round_trips_through_the_status_subresource(
    kubectl: Kubectl, namespace: str
) -> None:
    order = Order(
        metadata=ObjectMeta(name=unique("order"), namespace=namespace), spec=order_spec("le")
    )
    kubectl.create(order.to_api())
    status = OrderStatus(
        url="https://acme.example/order/1",
        finalize_url="https://acme.example/order/1/finalize",
        authorizations=[
            AcmeAuthorization(
                url="https://acme.example/authz/1",
                identifier="example.com",
                wildcard=False,
                initial_state="pending",
                challenges=[
                    AcmeChallengeRef(url="https://acme.example/chall/1", token="t", type="http-01")
                ],
            )
        ],
        certificate="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        state="errored",
        reason="CA refused the CSR",
        failure_time=NOW,
    )
    kubectl.patch_status("aforder", order.metadata.name, status.to_api(), namespace=namespace)
    stored = Order.model_validate(kubectl.get("aforder", order.metadata.name, namespace=namespace))
    assert stored.status == status
    assert stored.spec == order.spec, "a status write must not touch the spec"


def test_order_columns(kubectl: Kubectl, namespace: str) -> None:
    name = unique("order")
    kubectl.create(
        Order(
            metadata=ObjectMeta(name=name, namespace=namespace), spec=order_spec("le-prod")
        ).to_api()
    )
    status = OrderStatus(state="invalid", reason="DNSProblem")
    kubectl.patch_status("aforder", name, status.to_api(), namespace=namespace)

    table = kubectl.table("aforder", name, "-n", namespace)
    assert table[0] == ["NAME", "STATE", "AGE"]
    assert table[1][:2] == [name, "invalid"]
    wide = kubectl.table("aforder", name, "-n", namespace, "-o", "wide")
    assert wide[0] == ["NAME", "STATE", "ISSUER", "REASON", "AGE"]
    assert wide[1][:4] == [name, "invalid", "le-prod", "DNSProblem"]


def test_challenge_columns(kubectl: Kubectl, namespace: str) -> None:
    name = unique("challenge")
    kubectl.create(
        Challenge(
            metadata=ObjectMeta(name=name, namespace=namespace), spec=challenge_spec("le")
        ).to_api()
    )
    status = ChallengeStatus(processing=True, presented=True, reason="Waiting", state="pending")
    kubectl.patch_status("afchallenge", name, status.to_api(), namespace=namespace)

    assert kubectl.table("afchallenge", name, "-n", namespace)[0] == [
        "NAME",
        "STATE",
        "DOMAIN",
        "AGE",
    ]
    wide = kubectl.table("afchallenge", name, "-n", namespace, "-o", "wide")
    assert wide[0] == ["NAME", "STATE", "DOMAIN", "REASON", "AGE"]
    assert wide[1][:4] == [name, "pending", "example.com", "Waiting"]
    stored = Challenge.model_validate(kubectl.get("afchallenge", name, namespace=namespace))
    assert stored.status == status


def test_certificate_and_issuer_columns_show_the_ready_condition(
    kubectl: Kubectl, namespace: str, stack: StackInfo
) -> None:
    issuer, cert = unique("issuer"), unique("cert")
    kubectl.create(
        Issuer(
            metadata=ObjectMeta(name=issuer, namespace=namespace), spec=issuer_spec(stack)
        ).to_api()
    )
    kubectl.create(
        Certificate(
            metadata=ObjectMeta(name=cert, namespace=namespace), spec=certificate_spec(issuer)
        ).to_api()
    )
    ready = Condition(
        type="Ready",
        status="True",
        reason="ACMEAccountRegistered",
        message="Registered",
        last_transition_time=NOW,
        observed_generation=1,
    )
    issuer_status = IssuerStatus(
        conditions=[ready],
        acme=AcmeIssuerStatus(
            uri="https://acme.example/acct/1",
            last_registered_email="ops@example.com",
            last_private_key_hash="abc",
        ),
    )
    kubectl.patch_status("afissuer", issuer, issuer_status.to_api(), namespace=namespace)
    cert_status = CertificateStatus(
        conditions=[
            Condition(type="Ready", status="False", reason="Issuing", message="Renewing"),
            Condition(type="Issuing", status="True", reason="Renewing", message="Renewing"),
        ],
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=90),
        renewal_time=NOW + datetime.timedelta(days=60),
        revision=2,
        last_failure_time=NOW,
        failed_issuance_attempts=1,
        next_private_key_secret_name="web-tls-next",
    )
    kubectl.patch_status("afcert", cert, cert_status.to_api(), namespace=namespace)

    assert kubectl.table("afissuer", issuer, "-n", namespace)[0] == ["NAME", "READY", "AGE"]
    wide = kubectl.table("afissuer", issuer, "-n", namespace, "-o", "wide")
    assert wide[0] == ["NAME", "READY", "STATUS", "AGE"]
    assert wide[1][:3] == [issuer, "True", "Registered"]
    table = kubectl.table("afcert", cert, "-n", namespace)
    assert table[0] == ["NAME", "READY", "SECRET", "AGE"]
    assert table[1][:3] == [cert, "False", "web-tls"]
    wide = kubectl.table("afcert", cert, "-n", namespace, "-o", "wide")
    assert wide[0] == ["NAME", "READY", "SECRET", "ISSUER", "STATUS", "AGE"]
    assert wide[1][:5] == [cert, "False", "web-tls", issuer, "Renewing"]

    stored_issuer = Issuer.model_validate(kubectl.get("afissuer", issuer, namespace=namespace))
    assert stored_issuer.status == issuer_status
    stored_cert = Certificate.model_validate(kubectl.get("afcert", cert, namespace=namespace))
    assert stored_cert.status == cert_status


def test_cluster_issuer_is_cluster_scoped_with_columns(kubectl: Kubectl, stack: StackInfo) -> None:
    name = unique("cluster-issuer")
    kubectl.create(ClusterIssuer(metadata=ObjectMeta(name=name), spec=issuer_spec(stack)).to_api())
    try:
        status = IssuerStatus(
            conditions=[Condition(type="Ready", status="False", reason="Err", message="Refused")]
        )
        kubectl.patch_status("afclusterissuer", name, status.to_api())
        wide = kubectl.table("afclusterissuer", name, "-o", "wide")
        assert wide[0] == ["NAME", "READY", "STATUS", "AGE"]
        assert wide[1][:3] == [name, "False", "Refused"]
        assert "namespace" not in kubectl.get("afclusterissuer", name)["metadata"]
    finally:
        kubectl("delete", "afclusterissuer", name, "--wait=false", check=False)


def test_kubectl_get_acmeflow_lists_every_kind(kubectl: Kubectl, stack: StackInfo) -> None:
    with temporary_namespace(kubectl, "crd-category") as namespace:
        meta = ObjectMeta(name="sample", namespace=namespace)
        for obj in (
            Issuer(metadata=meta, spec=issuer_spec(stack)),
            Order(metadata=meta, spec=order_spec("sample")),
            Challenge(metadata=meta, spec=challenge_spec("sample")),
            Certificate(metadata=meta, spec=certificate_spec("sample")),
        ):
            kubectl.create(obj.to_api())
        listed = set(kubectl("get", "acmeflow", "-n", namespace, "-o", "name").stdout.split())
    assert {
        "issuer.acmeflow.io/sample",
        "order.acmeflow.io/sample",
        "challenge.acmeflow.io/sample",
        "certificate.acmeflow.io/sample",
    } <= listed


def test_kubectl_explain_shows_the_model_docstrings(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "aforder.spec.request").stdout
    assert "PEM certificate signing request" in explained


def test_metadata_of_an_immutable_order_can_still_change(kubectl: Kubectl, namespace: str) -> None:
    """The bridge adds finalizers and labels to Orders; immutability must allow that."""
    name = unique("order")
    kubectl.create(
        Order(metadata=ObjectMeta(name=name, namespace=namespace), spec=order_spec("le")).to_api()
    )
    patch = {"metadata": {"labels": {"acmeflow.io/revision": "2"}, "finalizers": ["acmeflow.io/x"]}}
    kubectl("patch", "aforder", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    stored = kubectl.get("aforder", name, namespace=namespace)["metadata"]
    assert stored["labels"] == {"acmeflow.io/revision": "2"}
    kubectl(
        "patch",
        "aforder",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )


# --- Refused ------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BadInput:
    """A valid object of ``kind``, broken by ``mutate``, and what admission must say."""

    kind: str
    mutate: Mutation
    message: str
    field: str


def _parent(obj: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The mapping holding the last part of ``path`` (dotted; digits index lists), and that key."""
    *parents, last = path.split(".")
    node: Any = obj
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    return node, last


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        node, key = _parent(obj, path)
        node[key] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        node, key = _parent(obj, path)
        del node[key]

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(obj)

    return mutate


NO_IDENTIFIERS = _all(_delete("spec.commonName"), _delete("spec.dnsNames"))
SOLVER0 = "spec.acme.solvers.0"
DNS01_SOLVER = {"rfc2136": {"nameserver": "127.0.0.1"}}
HTTP01_SOLVER = {"ingress": {"ingressClassName": "nginx"}}

BAD_INPUTS: dict[str, BadInput] = {
    "order-without-identifiers": BadInput(
        "Order",
        _all(NO_IDENTIFIERS, _delete("spec.ipAddresses")),
        "an Order needs at least one identifier: set commonName, dnsNames or ipAddresses",
        "spec",
    ),
    "order-request-not-a-csr": BadInput(
        "Order",
        _set("spec.request", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
        "request must be a PEM certificate signing request",
        "spec.request",
    ),
    "order-without-request": BadInput(
        "Order", _delete("spec.request"), "Required value", "spec.request"
    ),
    "order-uppercase-dns-name": BadInput(
        "Order",
        _set("spec.dnsNames", ["ok.example.com", "Bad_Name.example.com"]),
        "must be a lowercase DNS name such as example.com or *.example.com",
        "spec.dnsNames[1]",
    ),
    "order-bad-ip": BadInput(
        "Order",
        _set("spec.ipAddresses", ["300.1.2.3"]),
        "must be an IPv4 or IPv6 address",
        "spec.ipAddresses[0]",
    ),
    "order-unknown-issuer-kind": BadInput(
        "Order",
        _set("spec.issuerRef.kind", "CertificateAuthority"),
        'Unsupported value: "CertificateAuthority"',
        "spec.issuerRef.kind",
    ),
    "order-duration-in-days": BadInput(
        "Order",
        _set("spec.duration", "90d"),
        "must be a duration in hours, minutes or seconds such as 2160h",
        "spec.duration",
    ),
    "challenge-wildcard-http01": BadInput(
        "Challenge",
        _all(_set("spec.type", "HTTP-01"), _set("spec.solver", {"http01": HTTP01_SOLVER})),
        "a wildcard name can only be validated with type DNS-01",
        "spec.wildcard",
    ),
    "challenge-dns-name-with-wildcard-prefix": BadInput(
        "Challenge",
        _set("spec.dnsName", "*.example.com"),
        "without a '*.' prefix",
        "spec.dnsName",
    ),
    "challenge-solver-of-other-type": BadInput(
        "Challenge",
        _set("spec.solver", {"http01": HTTP01_SOLVER}),
        "solver does not match type: HTTP-01 needs an http01 solver, DNS-01 a dns01 solver",
        "spec.solver",
    ),
    "challenge-unknown-type": BadInput(
        "Challenge",
        _set("spec.type", "TLS-ALPN-01"),
        'Unsupported value: "TLS-ALPN-01"',
        "spec.type",
    ),
    "issuer-solver-with-both-types": BadInput(
        "Issuer",
        _set(f"{SOLVER0}.http01", HTTP01_SOLVER),
        "each solver needs exactly one of http01 or dns01",
        "spec.acme.solvers[0]",
    ),
    "issuer-solver-with-no-type": BadInput(
        "Issuer",
        _delete(f"{SOLVER0}.dns01"),
        "each solver needs exactly one of http01 or dns01",
        "spec.acme.solvers[0]",
    ),
    "issuer-wildcard-selector-on-http01": BadInput(
        "Issuer",
        _all(_delete(f"{SOLVER0}.dns01"), _set(f"{SOLVER0}.http01", HTTP01_SOLVER)),
        "must use dns01: HTTP-01 cannot validate wildcards",
        "spec.acme.solvers[0].selector.dnsNames",
    ),
    "issuer-plain-http-server": BadInput(
        "Issuer",
        _set("spec.acme.server", "http://acme.example/dir"),
        "server must be the https:// URL of an ACME directory",
        "spec.acme.server",
    ),
    "issuer-without-account-secret-name": BadInput(
        "Issuer",
        _delete("spec.acme.privateKeySecretRef.name"),
        "Required value",
        "spec.acme.privateKeySecretRef.name",
    ),
    "issuer-rfc2136-without-nameserver": BadInput(
        "Issuer",
        _delete(f"{SOLVER0}.dns01.rfc2136.nameserver"),
        "Required value",
        "spec.acme.solvers[0].dns01.rfc2136.nameserver",
    ),
    "issuer-tsig-key-without-secret": BadInput(
        "Issuer",
        _delete(f"{SOLVER0}.dns01.rfc2136.tsigSecretSecretRef"),
        "tsigSecretSecretRef is required when tsigKeyName is set",
        "spec.acme.solvers[0].dns01.rfc2136.tsigSecretSecretRef",
    ),
    "issuer-skip-tls-verify-and-ca-bundle": BadInput(
        "Issuer",
        _set("spec.acme.skipTLSVerify", True),
        "set either skipTLSVerify or caBundle, not both",
        "spec.acme",
    ),
    "issuer-ca-bundle-not-base64": BadInput(
        "Issuer",
        _set("spec.acme.caBundle", "-----BEGIN CERTIFICATE-----"),
        "caBundle must be base64-encoded PEM",
        "spec.acme.caBundle",
    ),
    "issuer-http01-without-route": BadInput(
        "Issuer",
        _set("spec.acme.solvers.2.http01", {}),
        "http01 needs exactly one of ingress or gatewayHTTPRoute",
        "spec.acme.solvers[2].http01",
    ),
    "issuer-ingress-class-twice": BadInput(
        "Issuer",
        _set("spec.acme.solvers.2.http01.ingress.class", "nginx"),
        "set either ingress.class or ingress.ingressClassName, not both",
        "spec.acme.solvers[2].http01.ingress",
    ),
    "issuer-ingress-name": BadInput(
        "Issuer",
        _set("spec.acme.solvers.2.http01.ingress.name", "web"),
        "ingress.name is not supported: acmeflow never edits an existing Ingress",
        "spec.acme.solvers[2].http01.ingress.name",
    ),
    "issuer-ingress-service-type": BadInput(
        "Issuer",
        _set("spec.acme.solvers.2.http01.ingress.serviceType", "NodePort"),
        "ingress.serviceType NodePort is not supported: every HTTP-01 request goes to "
        "acmeflow's one shared ClusterIP solver Service",
        "spec.acme.solvers[2].http01.ingress.serviceType",
    ),
    "issuer-eab-unknown-algorithm": BadInput(
        "Issuer",
        _set("spec.acme.externalAccountBinding.keyAlgorithm", "HS1"),
        'Unsupported value: "HS1"',
        "spec.acme.externalAccountBinding.keyAlgorithm",
    ),
    "cluster-issuer-plain-http-server": BadInput(
        "ClusterIssuer",
        _set("spec.acme.server", "http://acme.example/dir"),
        "server must be the https:// URL of an ACME directory",
        "spec.acme.server",
    ),
    "certificate-without-secret-name": BadInput(
        "Certificate", _delete("spec.secretName"), "Required value", "spec.secretName"
    ),
    "certificate-invalid-secret-name": BadInput(
        "Certificate",
        _set("spec.secretName", "Web_TLS"),
        "must be a valid Secret name",
        "spec.secretName",
    ),
    "certificate-without-identifiers": BadInput(
        "Certificate",
        _all(NO_IDENTIFIERS, _delete("spec.ipAddresses")),
        "a Certificate needs at least one identifier: set commonName, dnsNames or ipAddresses",
        "spec",
    ),
    "certificate-renew-before-longer-than-duration": BadInput(
        "Certificate",
        _all(_set("spec.duration", "24h"), _set("spec.renewBefore", "1440m")),
        "renewBefore must be shorter than duration",
        "spec.renewBefore",
    ),
    "certificate-rsa-1024": BadInput(
        "Certificate",
        _set("spec.privateKey", {"algorithm": "RSA", "size": 1024}),
        "size must be 2048, 3072 or 4096 for RSA, 256, 384 or 521 for ECDSA, and unset for Ed25519",
        "spec.privateKey.size",
    ),
    "certificate-ecdsa-with-rsa-size": BadInput(
        "Certificate",
        _set("spec.privateKey", {"algorithm": "ECDSA", "size": 2048}),
        "size must be 2048, 3072 or 4096 for RSA, 256, 384 or 521 for ECDSA",
        "spec.privateKey.size",
    ),
    "certificate-ed25519-with-size": BadInput(
        "Certificate",
        _set("spec.privateKey", {"algorithm": "Ed25519", "size": 256}),
        "and unset for Ed25519",
        "spec.privateKey.size",
    ),
    "certificate-unknown-rotation-policy": BadInput(
        "Certificate",
        _set("spec.privateKey", {"rotationPolicy": "Sometimes"}),
        'Unsupported value: "Sometimes"',
        "spec.privateKey.rotationPolicy",
    ),
}


# --- Names: every kind that carries them (issue 12: bad input, swept) ---------------------

LONG_LABEL = "a" * 63
NAME_OVER_253 = ".".join([LONG_LABEL] * 3 + ["b" * 61]) + ".example"  # 261 characters
SELECTOR0 = f"{SOLVER0}.selector"
ASCII_ONLY = "must be ASCII: write an internationalized name as its A-label (xn--...)"
LOWERCASE = "must be lowercase: DNS names are case-insensitive"
NO_TRAILING_DOT = "must not end with a dot: write example.com, not example.com."
NOT_AN_IP = "is an IP address, not a DNS name: list IP addresses under ipAddresses"


def _truncated_csr(obj: dict[str, Any]) -> None:
    """A CSR cut off in the middle, as a bad copy and paste leaves it."""
    obj["spec"]["request"] = obj["spec"]["request"][:200]


NAME_INPUTS: dict[str, BadInput] = {
    "order-101-dns-names": BadInput(
        "Order",
        _set("spec.dnsNames", [f"n{i}.example.com" for i in range(101)]),
        "Too many: 101: must have at most 100 items",
        "spec.dnsNames",
    ),
    "certificate-101-names-across-dns-and-ip": BadInput(
        "Certificate",
        _all(
            _set("spec.dnsNames", [f"n{i}.example.com" for i in range(60)]),
            _set("spec.ipAddresses", [f"192.0.2.{i}" for i in range(41)]),
        ),
        "at most 100 names per certificate, dnsNames and ipAddresses together "
        "(Let's Encrypt's limit): split the names over several Certificates",
        "spec",
    ),
    "order-name-over-253-characters": BadInput(
        "Order",
        _set("spec.dnsNames", [NAME_OVER_253]),
        "Too long: may not be more than 253 bytes",
        "spec.dnsNames[0]",
    ),
    "certificate-label-over-63-characters": BadInput(
        "Certificate",
        _set("spec.dnsNames", [f"{LONG_LABEL}a.example.com"]),
        "each label (the part between dots) must be at most 63 characters",
        "spec.dnsNames[0]",
    ),
    "order-uppercase-name": BadInput(
        "Order",
        _set("spec.dnsNames", ["WWW.Example.com"]),
        f"{LOWERCASE} and CAs certify them in lowercase; write www.example.com",
        "spec.dnsNames[0]",
    ),
    "certificate-uppercase-wildcard": BadInput(
        "Certificate",
        _set("spec.dnsNames", ["*.Example.com"]),
        LOWERCASE,
        "spec.dnsNames[0]",
    ),
    "order-idn-u-label": BadInput(
        "Order",
        _set("spec.dnsNames", ["bücher.example"]),
        f"{ASCII_ONLY}, e.g. xn--bcher-kva.example for bücher.example",
        "spec.dnsNames[0]",
    ),
    "certificate-idn-u-label": BadInput(
        "Certificate",
        _set("spec.dnsNames", ["*.bücher.example"]),
        ASCII_ONLY,
        "spec.dnsNames[0]",
    ),
    "order-trailing-dot": BadInput(
        "Order", _set("spec.dnsNames", ["example.com."]), NO_TRAILING_DOT, "spec.dnsNames[0]"
    ),
    "order-duplicate-dns-names": BadInput(
        "Order",
        _set("spec.dnsNames", ["www.example.com", "example.com", "www.example.com"]),
        'Duplicate value: "www.example.com"',
        "spec.dnsNames[2]",
    ),
    "certificate-duplicate-ip-addresses": BadInput(
        "Certificate",
        _set("spec.ipAddresses", ["192.0.2.10", "192.0.2.10"]),
        'Duplicate value: "192.0.2.10"',
        "spec.ipAddresses[1]",
    ),
    "order-ipv4-in-dns-names": BadInput(
        "Order",
        _set("spec.dnsNames", ["www.example.com", "192.0.2.1"]),
        NOT_AN_IP,
        "spec.dnsNames[1]",
    ),
    "certificate-ipv6-in-dns-names": BadInput(
        "Certificate", _set("spec.dnsNames", ["2001:db8::2"]), NOT_AN_IP, "spec.dnsNames[0]"
    ),
    "certificate-common-name-not-a-name": BadInput(
        "Certificate",
        _set("spec.commonName", "My Web Site"),
        "commonName must be one of the certificate's names: a lowercase DNS name such as "
        "www.example.com, or an IP address",
        "spec.commonName",
    ),
    "order-request-truncated": BadInput(
        "Order",
        _truncated_csr,
        "request must be a PEM certificate signing request",
        "spec.request",
    ),
    "issuer-selector-uppercase-zone": BadInput(
        "Issuer",
        _set(f"{SELECTOR0}.dnsZones", ["Example.com"]),
        LOWERCASE,
        "spec.acme.solvers[0].selector.dnsZones[0]",
    ),
    "issuer-selector-idn-name": BadInput(
        "Issuer",
        _set(f"{SELECTOR0}.dnsNames", ["*.bücher.example"]),
        ASCII_ONLY,
        "spec.acme.solvers[0].selector.dnsNames[0]",
    ),
    "issuer-selector-duplicate-zone": BadInput(
        "Issuer",
        _set(f"{SELECTOR0}.dnsZones", ["example.com", "example.com"]),
        'Duplicate value: "example.com"',
        "spec.acme.solvers[0].selector.dnsZones[1]",
    ),
    "cluster-issuer-selector-trailing-dot": BadInput(
        "ClusterIssuer",
        _set(f"{SELECTOR0}.dnsNames", ["example.com."]),
        NO_TRAILING_DOT,
        "spec.acme.solvers[0].selector.dnsNames[0]",
    ),
}
BAD_INPUTS |= NAME_INPUTS


def _valid_manifest(kind: str, namespace: str, stack: StackInfo) -> dict[str, Any]:
    meta = ObjectMeta(name=unique(kind.lower()), namespace=namespace)
    resource: Any
    if kind == "Order":
        resource = Order(metadata=meta, spec=order_spec("le"))
        resource.spec.ip_addresses = ["192.0.2.1"]
    elif kind == "Challenge":
        resource = Challenge(metadata=meta, spec=challenge_spec("le"))
    elif kind == "Issuer":
        resource = Issuer(metadata=meta, spec=issuer_spec(stack))
    elif kind == "ClusterIssuer":
        resource = ClusterIssuer(metadata=ObjectMeta(name=meta.name), spec=issuer_spec(stack))
    else:
        resource = Certificate(metadata=meta, spec=certificate_spec("le"))
    manifest: dict[str, Any] = resource.to_api()
    return manifest


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_admission_refuses_bad_input_with_a_readable_message(
    kubectl: Kubectl, namespace: str, stack: StackInfo, case: BadInput
) -> None:
    manifest = _valid_manifest(case.kind, namespace, stack)
    broken = copy.deepcopy(manifest)
    case.mutate(broken)

    refused = kubectl.create(broken, check=False)

    assert refused.returncode != 0, f"admission accepted {json.dumps(broken)}"
    assert f'The {case.kind} "{broken["metadata"]["name"]}" is invalid' in refused.stderr
    assert case.message in refused.stderr
    assert f"{case.field}: " in refused.stderr, refused.stderr
    # The same object unbroken is accepted, so the rule above is what refused it.
    kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest))


def test_an_ed25519_key_is_admitted_for_the_ca_to_decide(
    kubectl: Kubectl, namespace: str, stack: StackInfo
) -> None:
    """Admission does not know the CA; the Certificate's Ready condition says if it refuses
    (tests/certificates/test_keys.py)."""
    manifest = _valid_manifest("Certificate", namespace, stack)
    manifest["spec"]["privateKey"] = {"algorithm": "Ed25519", "encoding": "PKCS8"}
    admitted = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest))
    assert admitted.returncode == 0, admitted.stderr


IMMUTABLE_SPEC_CHANGES = {
    "Order": {"commonName": "other.example.com"},
    "Challenge": {"key": "another-value"},
}


@pytest.mark.parametrize("kind", IMMUTABLE_SPEC_CHANGES)
def test_spec_is_immutable(kubectl: Kubectl, namespace: str, stack: StackInfo, kind: str) -> None:
    manifest = _valid_manifest(kind, namespace, stack)
    kubectl.create(manifest)
    name, resource = manifest["metadata"]["name"], f"{kind.lower()}.acmeflow.io"
    change = json.dumps({"spec": IMMUTABLE_SPEC_CHANGES[kind]})

    refused = kubectl(
        "patch", resource, name, "-n", namespace, "--type=merge", "-p", change, check=False
    )

    assert refused.returncode != 0
    assert f"spec: Invalid value: spec is immutable: create a new {kind} instead" in refused.stderr
    assert kubectl.get(resource, name, namespace=namespace)["spec"] == manifest["spec"]
