"""A cert-manager ACME issuer's spec pasted into acmeflow's Issuer, on the real kube-apiserver.

What a person does: copy ``spec`` from a cert-manager Issuer into an acmeflow one and
``kubectl create`` it (kubectl validates fields strictly by default). Every field acmeflow
carries must be accepted and read back as written; every field it lacks must be refused
with a reason, never pruned. The same specs are first created as cert-manager's own
Issuers, so they are specs cert-manager's schema accepts, not ones written for acmeflow.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from acmeflow.crds.models import API_VERSION
from acmeflow.devstack.go_builds import cert_manager_crds
from acmeflow.devstack.stack import StackInfo
from tests.k8s.cert_manager_dialect import (
    REALISTIC_SPECS,
    REFUSED_FIELDS,
    RefusedField,
    with_defaults,
    with_refused,
    zerossl_eab_dns01,
)
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace

pytestmark = pytest.mark.stack

CERT_MANAGER_ISSUER_CRDS = ("cert-manager.io_issuers.yaml", "cert-manager.io_clusterissuers.yaml")


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    crds = [path for path in cert_manager_crds() if path.name in CERT_MANAGER_ISSUER_CRDS]
    assert len(crds) == len(CERT_MANAGER_ISSUER_CRDS), crds
    for path in crds:
        kubectl("apply", "--server-side", "-f", str(path))
    # Discovery lists a CRD's resources once it is Established; ``kubectl wait`` right after
    # the create can fail on a CRD whose status has no conditions yet.
    kubectl.wait_until_served("cert-manager.io", ("issuers", "clusterissuers"))
    return kubectl


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "cm-dialect") as name:
        yield name


def manifest(api_version: str, kind: str, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    metadata: dict[str, str] = {"name": f"pasted-{uuid.uuid4().hex[:8]}"}
    if kind == "Issuer":
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def resource(kind: str, group: str) -> str:
    return f"{kind.lower()}s.{group}"


@pytest.mark.parametrize("kind", ["Issuer", "ClusterIssuer"])
@pytest.mark.parametrize("name", sorted(REALISTIC_SPECS))
def test_a_pasted_cert_manager_spec_is_accepted_and_reads_back_as_written(
    kubectl: Kubectl, namespace: str, name: str, kind: str
) -> None:
    spec = REALISTIC_SPECS[name]()
    theirs = manifest("cert-manager.io/v1", kind, copy.deepcopy(spec), namespace)
    kubectl.create(theirs)
    ours = manifest(API_VERSION, kind, copy.deepcopy(spec), namespace)
    created = kubectl.create(ours, check=False)
    assert created.returncode == 0, created.stderr
    assert "unknown field" not in created.stderr, created.stderr

    scope = ours["metadata"].get("namespace")
    stored = kubectl.get(resource(kind, "acmeflow.io"), ours["metadata"]["name"], namespace=scope)
    assert stored["spec"] == with_defaults(spec)


REFUSED = sorted(REFUSED_FIELDS)


@pytest.mark.parametrize("case", REFUSED)
def test_a_field_acmeflow_lacks_is_refused_with_its_reason(
    kubectl: Kubectl, namespace: str, case: str
) -> None:
    refused: RefusedField = REFUSED_FIELDS[case]
    spec = with_refused(refused)
    if case not in ("ca-issuer-beside-acme", "vault-issuer-beside-acme"):
        # cert-manager's schema holds the field (its webhook, absent here, judges the rest).
        kubectl.create(manifest("cert-manager.io/v1", "Issuer", copy.deepcopy(spec), namespace))

    answer = kubectl.create(manifest(API_VERSION, "Issuer", spec, namespace), check=False)

    assert answer.returncode != 0, f"{case} was accepted"
    assert refused.message in answer.stderr, answer.stderr
    assert refused.field_path in answer.stderr, answer.stderr
    assert "unknown field" not in answer.stderr, answer.stderr


RFC2136 = "spec.acme.solvers[0].dns01.rfc2136"
MISSPELT: dict[str, tuple[str, str, str]] = {
    "tsig-algorithm-bind-spelling": (
        "tsigAlgorithm",
        "hmac-sha256",
        "tsigAlgorithm must be one of",
    ),
    "protocol-lowercase": ("protocol", "tcp", 'Unsupported value: "tcp"'),
}


@pytest.mark.parametrize("case", sorted(MISSPELT))
def test_values_cert_manager_refuses_are_refused_too(
    kubectl: Kubectl, namespace: str, case: str
) -> None:
    """cert-manager takes tsigAlgorithm in any case but only its own names; protocol as spelt."""
    field, value, message = MISSPELT[case]
    spec = zerossl_eab_dns01()
    spec["acme"]["solvers"][0]["dns01"]["rfc2136"][field] = value

    answer = kubectl.create(manifest(API_VERSION, "Issuer", spec, namespace), check=False)

    assert answer.returncode != 0, f"{case} was accepted"
    assert f"{RFC2136}.{field}" in answer.stderr, answer.stderr
    assert message in answer.stderr, answer.stderr
