"""A Certificate's names at admission: what an ACME CA can certify is admitted, the rest refused.

A person pastes a cert-manager Certificate's spec. Each field no ACME CA would honour
(email addresses, URIs, a subject, isCA, keystores, ...) is refused with a reason that says
what to do, never pruned; the same spec is first created as cert-manager's own Certificate,
so it is one cert-manager's schema accepts. Helpers and fixtures come from
``test_crd_admission``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from acmeflow.devstack.go_builds import cert_manager_crds
from acmeflow.devstack.stack import StackInfo
from tests.k8s import test_crd_admission as admission
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack

kubectl = admission.kubectl
namespace = admission.namespace

NAMES_ONLY = "ACME CAs certify only DNS names and IP addresses (RFC 8555, RFC 8738)"


@dataclass(frozen=True)
class RefusedField:
    """A cert-manager Certificate field with a value, and what acmeflow's admission says."""

    value: Any
    message: str


REFUSED_FIELDS: dict[str, RefusedField] = {
    "emailAddresses": RefusedField(
        ["ops@example.com"], f"emailAddresses is not supported: {NAMES_ONLY}"
    ),
    "uris": RefusedField(
        ["spiffe://example.com/ns/default/sa/web"], f"uris is not supported: {NAMES_ONLY}"
    ),
    "otherNames": RefusedField(
        [{"oid": "1.3.6.1.4.1.311.20.2.3", "utf8Value": "web@example.com"}],
        f"otherNames is not supported: {NAMES_ONLY}",
    ),
    "subject": RefusedField(
        {"organizations": ["Example Ltd"], "countries": ["GB"]},
        "subject is not supported: ACME CAs issue domain-validated certificates and write no "
        "organization, country or other subject attribute into them; remove subject",
    ),
    "literalSubject": RefusedField(
        "CN=www.example.com,O=Example Ltd",
        "literalSubject is not supported: ACME CAs write no subject attribute but the common "
        "name; remove literalSubject and set commonName",
    ),
    "isCA": RefusedField(True, "isCA true is not supported: ACME CAs issue only leaf certificates"),
    "nameConstraints": RefusedField(
        {"critical": True, "permitted": {"dnsDomains": ["example.com"]}},
        "nameConstraints is not supported: ACME CAs issue only leaf certificates",
    ),
    "keystores": RefusedField(
        {"pkcs12": {"create": True, "passwordSecretRef": {"name": "p12", "key": "password"}}},
        "keystores is not supported: acmeflow writes no JKS or PKCS#12 keystore; remove "
        "keystores and read the key pair as PEM, or add additionalOutputFormats",
    ),
    "usages": RefusedField(
        ["digital signature", "client auth"],
        "usages may list only digital signature, key encipherment, server auth: an ACME CA "
        "decides the usages",
    ),
}

IGNORED_FIELDS: dict[str, Any] = {
    "isCA": False,
    "usages": ["digital signature", "key encipherment", "server auth"],
    "signatureAlgorithm": "SHA384WithRSA",
    "encodeUsagesInRequest": False,
}
"""Accepted as written: harmless, since the CA decides what they would change."""


@pytest.fixture(scope="module")
def cert_manager_kubectl(kubectl: Kubectl) -> Kubectl:
    [crd] = [p for p in cert_manager_crds() if p.name == "cert-manager.io_certificates.yaml"]
    kubectl("apply", "--server-side", "-f", str(crd))
    kubectl.wait_until_served("cert-manager.io", ("certificates",))
    return kubectl


def _pasted(namespace: str, stack: StackInfo, **fields: Any) -> dict[str, Any]:
    manifest = admission._valid_manifest("Certificate", namespace, stack)
    manifest["spec"] |= copy.deepcopy(fields)
    return manifest


def _as_cert_manager(manifest: dict[str, Any]) -> dict[str, Any]:
    """The same Certificate in cert-manager's group, with only the fields its schema has."""
    ours = copy.deepcopy(manifest)
    ours["apiVersion"] = "cert-manager.io/v1"
    ours["metadata"]["name"] += "-cm"
    ours["spec"].pop("profile", None)
    return ours


@pytest.mark.parametrize("field", sorted(REFUSED_FIELDS))
def test_a_field_no_acme_ca_honours_is_refused_with_its_reason(
    cert_manager_kubectl: Kubectl,
    namespace: str,
    stack: StackInfo,
    field: str,
) -> None:
    refused = REFUSED_FIELDS[field]
    manifest = _pasted(namespace, stack, **{field: refused.value})
    cert_manager_kubectl.create(_as_cert_manager(manifest))

    answer = cert_manager_kubectl.create(manifest, check=False)

    assert answer.returncode != 0, f"{field} was accepted"
    assert refused.message in answer.stderr, answer.stderr
    assert f"spec.{field}: " in answer.stderr, answer.stderr
    assert "unknown field" not in answer.stderr, answer.stderr


def test_harmless_fields_are_accepted_and_kept_as_written(
    cert_manager_kubectl: Kubectl,
    namespace: str,
    stack: StackInfo,
) -> None:
    manifest = _pasted(namespace, stack, **IGNORED_FIELDS)
    cert_manager_kubectl.create(_as_cert_manager(manifest))

    cert_manager_kubectl.create(manifest)

    stored = json.loads(
        cert_manager_kubectl(
            "get",
            "certificate.acmeflow.io",
            manifest["metadata"]["name"],
            "-n",
            namespace,
            "-o",
            "json",
        ).stdout
    )
    assert {k: stored["spec"][k] for k in IGNORED_FIELDS} == IGNORED_FIELDS


@pytest.mark.parametrize(
    ("common_name", "names", "listed"),
    [
        ("www.example.com", {"dnsNames": ["example.com"]}, {"dnsNames": ["www.example.com"]}),
        ("2001:db8::7", {"ipAddresses": ["2001:db8::8"]}, {"ipAddresses": ["2001:db8::7"]}),
    ],
    ids=["dns-name", "ip-address"],
)
def test_a_common_name_outside_the_names_is_refused(
    kubectl: Kubectl,
    namespace: str,
    stack: StackInfo,
    common_name: str,
    names: dict[str, list[str]],
    listed: dict[str, list[str]],
) -> None:
    """cert-manager fails such a request after the fact (InvalidOrder); here it is never
    stored, since no ACME CA would certify a name outside the order."""
    manifest = _pasted(namespace, stack, commonName=common_name, dnsNames=[], ipAddresses=[])
    manifest["spec"] |= names
    answer = kubectl.create(manifest, check=False)
    assert answer.returncode != 0, "admitted"
    assert "spec.commonName: " in answer.stderr, answer.stderr
    assert "commonName must also be listed in dnsNames or ipAddresses" in answer.stderr

    for field, more in listed.items():
        manifest["spec"][field] = [*names[field], *more]
    kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest))


def test_an_ip_address_is_a_challenge_identifier(
    kubectl: Kubectl,
    namespace: str,
    stack: StackInfo,
) -> None:
    """An order for an IP address (RFC 8738) gets a Challenge whose dnsName is the address."""
    challenge = admission._valid_manifest("Challenge", namespace, stack)
    challenge["spec"] |= {"dnsName": "2001:db8::7", "wildcard": False}
    kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(challenge))
    challenge["spec"]["dnsName"] = "2001:db8::zz"
    answer = kubectl.create(challenge, check=False)
    assert answer.returncode != 0, "admitted"
    assert "spec.dnsName: " in answer.stderr, answer.stderr


def test_renew_before_percentage_is_admitted_alone_and_refused_beside_renew_before(
    kubectl: Kubectl,
    namespace: str,
    stack: StackInfo,
) -> None:
    """cert-manager's two ways to say when to renew exclude each other."""
    manifest = _pasted(namespace, stack, renewBeforePercentage=25)
    manifest["spec"].pop("renewBefore", None)
    kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest))
    manifest["spec"]["renewBefore"] = "240h"
    answer = kubectl.create(manifest, check=False)
    assert answer.returncode != 0, "admitted"
    assert "spec.renewBeforePercentage: " in answer.stderr, answer.stderr
    assert "set renewBefore or renewBeforePercentage, not both" in answer.stderr
