"""The resource models, the CRDs generated from them, and Issuer translation; no servers."""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import BaseModel

from acmeflow.contracts.issuer import (
    ExternalAccountBinding,
    Http01Ingress,
    IssuerConfig,
    Rfc2136,
    SolverConfig,
    SolverSelector,
)
from acmeflow.contracts.secrets import SecretRef
from acmeflow.crds import generate as crd_generate
from acmeflow.crds.generate import KINDS, SchemaError, crd_manifest, drift, render
from acmeflow.crds.models import (
    AccountKeySecretRef,
    AcmeIssuerSpec,
    AcmeSolver,
    Certificate,
    ChallengeSpec,
    ClusterIssuer,
    Dns01Solver,
    Http01Solver,
    IngressSolver,
    Issuer,
    IssuerSpec,
    ObjectMeta,
    Order,
    OrderSpec,
    OrderStatus,
    Rfc2136Provider,
)
from acmeflow.k8s_bridge.issuer_translation import (
    InvalidIssuerError,
    issuer_config,
    issuer_config_from_spec,
    secret_namespace,
    solver_config,
)

# --- Wire format --------------------------------------------------------------------------

ISSUER_WIRE: dict[str, Any] = {
    "acme": {
        "server": "https://acme.example/directory",
        "email": "ops@example.com",
        "privateKeySecretRef": {"name": "acme-account", "key": "tls.key"},
        "skipTLSVerify": False,
        "externalAccountBinding": {
            "keyID": "kid-1",
            "keySecretRef": {"name": "eab", "key": "secret"},
            "keyAlgorithm": "HS256",
        },
        "preferredChain": "ISRG Root X1",
        "profile": "tlsserver",
        "solvers": [
            {
                "selector": {
                    "dnsNames": ["*.example.com"],
                    "dnsZones": ["example.com"],
                    "matchLabels": {"team": "web"},
                },
                "dns01": {
                    "rfc2136": {
                        "nameserver": "127.0.0.1:5353",
                        "tsigKeyName": "acmeflow",
                        "tsigSecretSecretRef": {"name": "tsig", "key": "secret"},
                        "tsigAlgorithm": "HMACSHA512",
                    }
                },
            },
            {
                "selector": {"dnsNames": [], "dnsZones": ["internal.example"], "matchLabels": {}},
                "http01": {
                    "gatewayHTTPRoute": {
                        "parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": "web"}],
                        "labels": {"gateway": "public"},
                    }
                },
            },
            {"http01": {"ingress": {"class": "nginx"}}},
        ],
    }
}

ORDER_STATUS_WIRE: dict[str, Any] = {
    "url": "https://acme.example/order/1",
    "finalizeURL": "https://acme.example/order/1/finalize",
    "authorizations": [
        {
            "url": "https://acme.example/authz/1",
            "identifier": "example.com",
            "wildcard": True,
            "initialState": "valid",
            "challenges": [{"url": "https://acme.example/c/1", "token": "t", "type": "dns-01"}],
        }
    ],
    "certificate": "-----BEGIN CERTIFICATE-----\n...",
    "state": "valid",
    "reason": "",
    "failureTime": "2026-01-02T03:04:05Z",
}


def test_issuer_spec_round_trips_with_cert_manager_field_names() -> None:
    spec = IssuerSpec.model_validate(ISSUER_WIRE)
    assert spec.acme.skip_tls_verify is False
    assert spec.acme.external_account_binding is not None
    assert spec.acme.external_account_binding.key_id == "kid-1"
    assert spec.acme.solvers[1].http01 is not None
    assert spec.acme.solvers[1].http01.gateway_http_route is not None
    assert spec.acme.solvers[2].http01 is not None
    assert spec.acme.solvers[2].http01.ingress == IngressSolver(class_="nginx")
    assert spec.to_api() == ISSUER_WIRE


def test_order_status_round_trips_and_parses_times() -> None:
    status = OrderStatus.model_validate(ORDER_STATUS_WIRE)
    assert status.finalize_url == "https://acme.example/order/1/finalize"
    assert status.failure_time == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert status.to_api() == ORDER_STATUS_WIRE


def test_models_accept_python_names_too() -> None:
    spec = ChallengeSpec(
        url="https://acme.example/c/1",
        authorization_url="https://acme.example/authz/1",
        dns_name="example.com",
        type="HTTP-01",
        token="t",
        key="t.k",
        solver=AcmeSolver(http01=Http01Solver(ingress=IngressSolver())),
        issuer_ref={"name": "le"},  # type: ignore[arg-type]
    )
    wire = spec.to_api()
    assert wire["authorizationURL"] == "https://acme.example/authz/1"
    assert wire["dnsName"] == "example.com"
    assert wire["issuerRef"] == {"name": "le", "kind": "Issuer", "group": "acmeflow.io"}
    assert ChallengeSpec.model_validate(wire) == spec


def test_a_partial_status_patches_only_what_it_sets() -> None:
    """Status is written as a merge patch: an unset field must not appear, or it would clear."""
    assert OrderStatus(state="processing").to_api() == {"state": "processing"}


def test_readers_ignore_fields_they_do_not_know() -> None:
    status = OrderStatus.model_validate({"state": "pending", "addedInV2": {"x": 1}})
    assert status == OrderStatus(state="pending")


def test_whole_resource_reads_what_the_api_server_returns() -> None:
    order = Order.model_validate(
        {
            "apiVersion": "acmeflow.io/v1alpha1",
            "kind": "Order",
            "metadata": {
                "name": "web-123",
                "namespace": "team-a",
                "uid": "u-1",
                "generation": 1,
                "resourceVersion": "42",
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "managedFields": [{"manager": "kubectl"}],
            },
            "spec": {"request": "csr", "issuerRef": {"name": "le"}, "dnsNames": ["a.example"]},
        }
    )
    assert order.metadata.resource_version == "42"
    assert order.spec.issuer_ref.kind == "Issuer"
    assert order.status is None


# --- Generated CRDs -----------------------------------------------------------------------


def _schemas(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node under an openAPIV3Schema, with its path."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _schemas(child, f"{path}.{name}")
    if "items" in node:
        yield from _schemas(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _schemas(node["additionalProperties"], f"{path}{{}}")


def _root(kind_name: str) -> dict[str, Any]:
    kind = {k.resource.KIND: k for k in KINDS}[kind_name]
    schema: dict[str, Any] = crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.resource.KIND)
def test_schema_is_structural(kind: crd_generate.CrdKind) -> None:
    schema = crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    forbidden = {"$ref", "anyOf", "allOf", "oneOf", "not", "nullable", "title", "$defs", "const"}
    nodes = dict(_schemas(schema))
    refused = {
        f"{path}.{rule['rule'][len('!has(self.') : -1]}"
        for path, node in nodes.items()
        for rule in node.get("x-kubernetes-validations", [])
        if re.fullmatch(r"!has\(self\.\w+\)", rule["rule"])
    }
    for path, node in nodes.items():
        assert "type" in node, f"{path} has no type"
        assert not forbidden & node.keys(), f"{path} uses {forbidden & node.keys()}"
        # Kept as written only where admission refuses the field outright (cert-manager's
        # dialect), or where the object is a webhook's own config, handed to it unread.
        assert (
            "x-kubernetes-preserve-unknown-fields" not in node
            or path in refused
            or path.endswith(".dns01.webhook.config")
        ), path
        if "default" in node:
            assert node["default"] not in (None, False, "", 0), f"{path}: implied default"
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"].strip(), f"{path}: rule {rule['rule']} has no message"


def test_crd_names_scope_and_columns() -> None:
    manifests = {k.resource.KIND: crd_manifest(k) for k in KINDS}
    short = {kind: m["spec"]["names"]["shortNames"] for kind, m in manifests.items()}
    assert short == {
        "Order": ["aforder"],
        "Challenge": ["afchallenge"],
        "Issuer": ["afissuer"],
        "ClusterIssuer": ["afclusterissuer"],
        "Certificate": ["afcert"],
    }
    assert {m["spec"]["scope"] for k, m in manifests.items() if k != "ClusterIssuer"} == {
        "Namespaced"
    }
    assert manifests["ClusterIssuer"]["spec"]["scope"] == "Cluster"
    for m in manifests.values():
        assert m["spec"]["names"]["categories"] == ["acmeflow"]
        assert m["spec"]["versions"][0]["subresources"] == {"status": {}}

    def columns(kind: str) -> list[tuple[str, str, int]]:
        version = manifests[kind]["spec"]["versions"][0]
        return [
            (c["name"], c["jsonPath"], c.get("priority", 0))
            for c in version["additionalPrinterColumns"]
        ]

    age = ("Age", ".metadata.creationTimestamp", 0)
    assert columns("Order") == [
        ("State", ".status.state", 0),
        ("Issuer", ".spec.issuerRef.name", 1),
        ("Reason", ".status.reason", 1),
        age,
    ]
    assert columns("Challenge") == [
        ("State", ".status.state", 0),
        ("Domain", ".spec.dnsName", 0),
        ("Reason", ".status.reason", 1),
        age,
    ]
    ready = ('.status.conditions[?(@.type=="Ready")].status', 0)
    assert columns("Certificate")[:2] == [("Ready", *ready), ("Secret", ".spec.secretName", 0)]
    assert columns("Issuer")[0] == ("Ready", *ready)
    assert columns("Issuer") == columns("ClusterIssuer")


def test_required_fields_and_defaults() -> None:
    order_spec = _root("Order")["properties"]["spec"]
    assert order_spec["required"] == ["request", "issuerRef"]
    issuer_ref = order_spec["properties"]["issuerRef"]["properties"]
    assert issuer_ref["kind"]["default"] == "Issuer"
    assert issuer_ref["kind"]["enum"] == ["Issuer", "ClusterIssuer"]
    assert issuer_ref["group"]["default"] == "acmeflow.io"

    acme = _root("Issuer")["properties"]["spec"]["properties"]["acme"]
    assert set(acme["required"]) == {"server", "privateKeySecretRef"}
    account_key = acme["properties"]["privateKeySecretRef"]
    assert account_key["required"] == ["name"]
    assert account_key["properties"]["key"]["default"] == "tls.key"
    assert "default" not in acme["properties"]["skipTLSVerify"]

    certificate = _root("Certificate")["properties"]["spec"]
    assert certificate["properties"]["duration"]["default"] == "2160h"
    assert "secretName" in certificate["required"]


def test_immutable_kinds_carry_a_transition_rule() -> None:
    for kind, noun in (("Order", "Order"), ("Challenge", "Challenge")):
        rules = _root(kind)["properties"]["spec"]["x-kubernetes-validations"]
        assert {
            "rule": "self == oldSelf",
            "message": f"spec is immutable: create a new {noun} instead",
        } in rules
    assert "x-kubernetes-validations" not in _root("Certificate")["properties"]["spec"].get(
        "properties", {}
    ).get("secretTemplate", {})


def test_generator_refuses_a_schema_kubernetes_could_not_store() -> None:
    class Ambiguous(BaseModel):
        value: int | str

    class FreeForm(BaseModel):
        extra: dict[str, Any]

    with pytest.raises(SchemaError, match="unions"):
        crd_generate.structural_schema(Ambiguous)
    with pytest.raises(SchemaError, match="free-form maps need an explicit value type"):
        crd_generate.structural_schema(FreeForm)


def test_kustomization_lists_every_crd() -> None:
    files = render()
    assert "kustomization.yaml" in files
    for kind in KINDS:
        assert f"- {kind.file_name}" in files["kustomization.yaml"]
        assert files[kind.file_name].startswith("# Generated by")


def test_committed_crds_match_the_models() -> None:
    """Fails when deploy/crds was not regenerated after a model change (or was hand-edited)."""
    diffs = drift()
    assert not diffs, (
        "deploy/crds is out of date; run `python -m acmeflow.crds.generate`:\n" + "\n".join(diffs)
    )


def test_drift_detection_notices_edits_and_missing_files(tmp_path: Path) -> None:
    crd_generate.write(tmp_path)
    assert drift(tmp_path) == []
    assert crd_generate.main(["--check", "--output", str(tmp_path)]) == 0

    orders = tmp_path / "orders.acmeflow.io.yaml"
    orders.write_text(orders.read_text().replace("aforder", "order-short"))
    (tmp_path / "kustomization.yaml").unlink()

    diffs = drift(tmp_path)
    assert len(diffs) == 2
    assert "-    - order-short" in diffs[0] or "-    - order-short" in diffs[1]
    assert crd_generate.main(["--check", "--output", str(tmp_path)]) == 1


# --- Issuer translation -------------------------------------------------------------------


def _ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_issuer_translates_to_issuer_config() -> None:
    issuer = Issuer(
        metadata=ObjectMeta(name="letsencrypt", namespace="team-a"),
        spec=IssuerSpec.model_validate(ISSUER_WIRE),
    )
    assert issuer_config(issuer) == IssuerConfig(
        name="Issuer team-a/letsencrypt",
        server="https://acme.example/directory",
        account_key=SecretRef(namespace="team-a", name="acme-account", key="tls.key"),
        email="ops@example.com",
        external_account_binding=ExternalAccountBinding(
            key_id="kid-1",
            key_secret=SecretRef(namespace="team-a", name="eab", key="secret"),
            key_algorithm="HS256",
        ),
        preferred_chain="ISRG Root X1",
        profile="tlsserver",
        solvers=[
            SolverConfig(
                selector=SolverSelector(
                    dns_names=["*.example.com"],
                    dns_zones=["example.com"],
                    match_labels={"team": "web"},
                ),
                dns01=Rfc2136(
                    nameserver="127.0.0.1:5353",
                    tsig_key_name="acmeflow",
                    tsig_secret=SecretRef(namespace="team-a", name="tsig", key="secret"),
                    tsig_algorithm="HMACSHA512",
                ),
            ),
            SolverConfig(
                selector=SolverSelector(dns_zones=["internal.example"]),
                http01=Http01Ingress(
                    gateway_parent_refs=[
                        {"name": "gw", "namespace": "infra", "sectionName": "web"}
                    ],
                    route_labels={"gateway": "public"},
                ),
            ),
            SolverConfig(http01=Http01Ingress(ingress_class_name="nginx")),
        ],
    )


def test_cluster_issuer_secrets_live_in_the_cluster_resource_namespace() -> None:
    spec = IssuerSpec.model_validate(ISSUER_WIRE)
    cluster_issuer = ClusterIssuer(metadata=ObjectMeta(name="le"), spec=spec)

    default = issuer_config(cluster_issuer)
    assert default.name == "ClusterIssuer le"
    assert default.account_key == SecretRef(
        namespace="acmeflow", name="acme-account", key="tls.key"
    )

    custom = issuer_config(cluster_issuer, cluster_resource_namespace="cert-system")
    assert custom.account_key.namespace == "cert-system"
    assert custom.solvers[0].dns01 is not None
    assert custom.solvers[0].dns01.tsig_secret == SecretRef(
        namespace="cert-system", name="tsig", key="secret"
    )
    assert secret_namespace(issuer_kind="ClusterIssuer", issuer_namespace="x") == "acmeflow"
    assert secret_namespace(issuer_kind="Issuer", issuer_namespace="x") == "x"


def _acme(**changes: Any) -> IssuerSpec:
    acme: dict[str, Any] = {
        "server": "https://acme.example/directory",
        "private_key_secret_ref": AccountKeySecretRef(name="acct"),
        **changes,
    }
    return IssuerSpec(acme=AcmeIssuerSpec(**acme))


def _translate(spec: IssuerSpec) -> IssuerConfig:
    return issuer_config_from_spec(spec, name="Issuer ns/le", secret_namespace="ns")


def test_ca_bundle_is_decoded_to_pem_text() -> None:
    pem = _ca_pem()
    config = _translate(_acme(ca_bundle=base64.b64encode(pem.encode()).decode()))
    assert config.ca_bundle_pem == pem
    assert x509.load_pem_x509_certificate(
        config.ca_bundle_pem.encode()
    ).subject.rfc4514_string() == ("CN=Test CA")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ca_bundle": "not base64!"}, "caBundle must be base64 of PEM certificates"),
        (
            {"ca_bundle": base64.b64encode(b"hello").decode()},
            "caBundle decodes to no PEM certificate",
        ),
        ({"server": "http://acme.example/dir"}, "is not an https:// URL"),
        ({"skip_tls_verify": True, "ca_bundle": "AAAA"}, "set either skipTLSVerify or caBundle"),
        (
            {"solvers": [AcmeSolver()]},
            "solvers[0]: a solver needs exactly one of http01 or dns01",
        ),
        (
            {"solvers": [{"selector": {"dnsNames": ["*.a.example"]}, "http01": {"ingress": {}}}]},
            "selector lists wildcard *.a.example, which only dns01 can validate",
        ),
        (
            {"solvers": [{"http01": {"ingress": {"name": "web"}}}]},
            "editing an existing Ingress (name: web) is not supported",
        ),
        (
            {"solvers": [{"http01": {"ingress": {"serviceType": "NodePort"}}}]},
            "serviceType NodePort is not supported",
        ),
        (
            {"solvers": [{"http01": {}}]},
            "solvers[0].http01: set exactly one of ingress or gatewayHTTPRoute",
        ),
        (
            {"solvers": [{"dns01": {"rfc2136": {"nameserver": "ns.example:domain"}}}]},
            "nameserver 'ns.example:domain' must be host, host:port or [IPv6]:port",
        ),
        (
            {"solvers": [{"dns01": {"rfc2136": {"nameserver": "10.0.0.1:70000"}}}]},
            "must be host, host:port or [IPv6]:port",
        ),
        (
            {"solvers": [{"dns01": {"rfc2136": {"nameserver": "10.0.0.1", "tsigKeyName": "k"}}}]},
            "set tsigSecretSecretRef too",
        ),
        (
            {
                "solvers": [
                    {
                        "dns01": {
                            "rfc2136": {
                                "nameserver": "10.0.0.1",
                                "tsigSecretSecretRef": {"name": "t", "key": "k"},
                            }
                        }
                    }
                ]
            },
            "set tsigKeyName too",
        ),
    ],
)
def test_unusable_issuer_content_raises_a_value_error_saying_what_to_fix(
    changes: dict[str, Any], message: str
) -> None:
    spec = _acme(**changes)
    with pytest.raises(ValueError) as raised:
        _translate(spec)
    assert isinstance(raised.value, InvalidIssuerError)
    assert str(raised.value).startswith("Issuer ns/le")
    assert message in str(raised.value)


def test_rfc2136_defaults_and_ipv6_nameserver() -> None:
    solver = AcmeSolver(
        dns01=Dns01Solver(rfc2136=Rfc2136Provider(nameserver="[2001:db8::53]:5353"))
    )
    config = solver_config(solver, secret_namespace="ns")
    assert config.dns01 == Rfc2136(nameserver="[2001:db8::53]:5353", tsig_algorithm="HMACSHA256")
    assert config.challenge_type == "DNS-01"
    assert config.selector is None


def test_issuer_without_namespace_is_refused() -> None:
    issuer = Issuer(metadata=ObjectMeta(name="le"), spec=_acme())
    with pytest.raises(ValueError, match="Issuer le has no namespace"):
        issuer_config(issuer)


def test_certificate_defaults_match_the_crd() -> None:
    certificate = Certificate.model_validate(
        {
            "metadata": {"name": "web"},
            "spec": {"secretName": "web-tls", "issuerRef": {"name": "le"}, "privateKey": {}},
        }
    )
    assert certificate.spec.duration == "2160h"
    assert certificate.spec.private_key is not None
    assert certificate.spec.private_key.algorithm == "RSA"
    assert certificate.spec.private_key.rotation_policy == "Always"
    crd_private_key = _root("Certificate")["properties"]["spec"]["properties"]["privateKey"]
    assert crd_private_key["properties"]["algorithm"]["default"] == "RSA"
    assert crd_private_key["properties"]["rotationPolicy"]["default"] == "Always"


def test_order_spec_requires_its_csr_and_issuer() -> None:
    with pytest.raises(ValueError, match="request"):
        OrderSpec.model_validate({"issuerRef": {"name": "le"}})
