"""Issuers as a user meets them: a ClusterIssuer whose Secrets live in the cluster resource
namespace, an EAB key read from a Secret (missing, wrong, then right), an Issuer deleted
under a Ready Certificate and restored, and an account key replaced in its Secret.

Each test reads what a person would read: ``kubectl get`` of the Issuer, the Certificate
and their Events, and the TLS Secret.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import Client

from acmeflow.devstack.pebble import PebbleEndpoints
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    condition_of,
    describe_events,
    dns01_solver,
    http01_solver,
    issuer_manifest,
    tls_secret,
    tsig_secret,
    unique,
    wait_for,
    wait_for_ready,
)
from tests.certificates.issuer_fixtures import ISSUERS_EAB_HMAC, ISSUERS_EAB_KEY_ID
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack


def _cluster_issuer(
    stack: StackInfo,
    name: str,
    *,
    server: str = "",
    solvers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    manifest = issuer_manifest(stack, "", name, server=server, solvers=solvers or [http01_solver()])
    manifest["kind"] = "ClusterIssuer"
    del manifest["metadata"]["namespace"]
    return manifest


@pytest.fixture
def cluster_issuers(kubectl: Kubectl) -> Iterator[list[str]]:
    """Names of ClusterIssuers a test creates (cluster-scoped: deleted afterwards)."""
    names: list[str] = []
    yield names
    for name in names:
        kubectl("delete", "clusterissuer", name, "--wait=false", check=False)


def _secret(namespace: str, name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def _secret_exists(kubectl: Kubectl, namespace: str, name: str) -> bool:
    return kubectl("get", "secret", name, "-n", namespace, check=False).returncode == 0


def _get(kubectl: Kubectl, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    scope = ["-n", namespace] if namespace else []
    result = kubectl("get", kind, name, *scope, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _ready(kubectl: Kubectl, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    return condition_of(_get(kubectl, kind, name, namespace), "Ready")


def _events(kubectl: Kubectl, kind: str, name: str, namespace: str = "") -> list[dict[str, Any]]:
    """Events about the object, as ``kubectl describe`` finds them."""
    scope = ["-n", namespace] if namespace else ["--all-namespaces"]
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    result = kubectl("get", "events", *scope, "--field-selector", selector, "-o", "json")
    return list(json.loads(result.stdout)["items"])


def _orders_of(kubectl: Kubectl, namespace: str, certificate: str) -> list[str]:
    selector = f"acmeflow.io/certificate={certificate}"
    result = kubectl("get", "orders", "-n", namespace, "-l", selector, "-o", "name")
    return result.stdout.split()


def _ec_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_cluster_issuer_reads_its_secrets_in_the_cluster_resource_namespace(
    stack: StackInfo,
    kubectl: Kubectl,
    issuers_bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    cluster_resource_namespace: str,
    cluster_issuers: list[str],
) -> None:
    """A ClusterIssuer's account key Secret is made, and its TSIG Secret read, in the
    cluster resource namespace; a wildcard Certificate (DNS-01) in another namespace
    through it is Ready with its Secret beside it."""
    name = unique("cluster")
    cluster_issuers.append(name)
    tsig = tsig_secret(stack, cluster_resource_namespace)
    tsig["metadata"]["name"] = f"{name}-tsig"  # only there: the Certificate's has "tsig"
    kubectl.create(tsig)
    solver = dns01_solver(stack)
    solver["dns01"]["rfc2136"]["tsigSecretSecretRef"]["name"] = f"{name}-tsig"
    kubectl.create(_cluster_issuer(stack, name, solvers=[solver]))
    issuer = wait_for_ready(kubectl, "clusterissuer", "", name)
    assert issuer["status"]["acme"]["uri"].startswith("https://")
    assert _secret_exists(kubectl, cluster_resource_namespace, f"{name}-account")
    assert not _secret_exists(kubectl, namespace, f"{name}-account")

    dns_names = [f"*.{name}.example.com"]
    manifest = certificate_manifest(namespace, "through-cluster", dns_names)
    manifest["spec"]["issuerRef"] = {"name": name, "kind": "ClusterIssuer"}
    kubectl.create(manifest)
    wait_for_ready(kubectl, "certificate", namespace, "through-cluster", timeout_s=120)
    tls = tls_secret(kubectl, namespace, "through-cluster-tls")
    assert tls is not None and tls["tls.crt"].startswith(b"-----BEGIN CERTIFICATE-----")
    assert not _secret_exists(kubectl, cluster_resource_namespace, "through-cluster-tls")


def test_eab_key_from_a_secret_missing_then_wrong_then_right(
    stack: StackInfo,
    kubectl: Kubectl,
    issuers_bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    cluster_resource_namespace: str,
    cluster_issuers: list[str],
    issuers_eab_pebble: PebbleEndpoints,
) -> None:
    """The ClusterIssuer says which Secret is missing, then that the CA refused the key;
    a Certificate waits meanwhile, saying why; fixing the Secret is all it takes."""
    name = unique("eab")
    cluster_issuers.append(name)
    manifest = _cluster_issuer(stack, name, server=issuers_eab_pebble.directory_url)
    manifest["spec"]["acme"]["externalAccountBinding"] = {
        "keyID": ISSUERS_EAB_KEY_ID,
        "keySecretRef": {"name": f"{name}-eab", "key": "secret"},
    }
    kubectl.create(manifest)
    missing = wait_for_ready(kubectl, "clusterissuer", "", name, status="False")
    message = condition_of(missing, "Ready")["message"]
    assert f"Secret {cluster_resource_namespace}/{name}-eab does not exist" in message
    assert "External Account Binding HMAC key" in message

    certificate = certificate_manifest(namespace, "eab-user", [f"{name}.example.com"])
    certificate["spec"]["issuerRef"] = {"name": name, "kind": "ClusterIssuer"}
    kubectl.create(certificate)
    waiting = wait_for_ready(kubectl, "certificate", namespace, "eab-user", status="False")
    assert condition_of(waiting, "Ready")["reason"] == "IssuerNotReady"
    assert f'ClusterIssuer "{name}" is not Ready' in condition_of(waiting, "Ready")["message"]

    wrong = base64.urlsafe_b64encode(b"w" * 32).rstrip(b"=")
    kubectl.create(_secret(cluster_resource_namespace, f"{name}-eab", {"secret": wrong}))
    refused = wait_for(
        lambda: (
            "refused the External Account Binding"
            in _ready(kubectl, "clusterissuer", name).get("message", "")
        ),
        "the ClusterIssuer to say the CA refused the EAB key",
        timeout_s=120,
    )
    assert refused

    right = {"secret": base64.b64encode(ISSUERS_EAB_HMAC.encode()).decode()}
    patch = json.dumps({"data": right})
    kubectl("patch", "secret", f"{name}-eab", "-n", cluster_resource_namespace, "-p", patch)
    wait_for_ready(kubectl, "clusterissuer", "", name, timeout_s=180)
    wait_for_ready(kubectl, "certificate", namespace, "eab-user", timeout_s=120)
    assert tls_secret(kubectl, namespace, "eab-user-tls") is not None


def _signal_renew(stack: StackInfo, workflow_id: str) -> None:
    async def signal() -> None:
        client = await Client.connect(stack.temporal_address)
        await client.get_workflow_handle(workflow_id).signal("renew", "asked while away")

    asyncio.run(signal())


@pytest.mark.parametrize("kind", ["Issuer", "ClusterIssuer"])
def test_issuer_deleted_then_restored_and_its_certificate_recovers(
    stack: StackInfo,
    kubectl: Kubectl,
    issuers_bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    cluster_issuers: list[str],
    kind: str,
) -> None:
    """Without its issuer a Ready Certificate says so (condition and Warning Event), keeps
    its Secret and holds a renewal asked meanwhile; with the issuer back it is Ready again
    and the held renewal runs."""
    if kind == "ClusterIssuer":
        name, scope = unique("away"), ""
        shown = f'ClusterIssuer "{name}"'
        cluster_issuers.append(name)
        kubectl.create(_cluster_issuer(stack, name))
    else:
        name, scope, shown = "pebble", namespace, f'Issuer "{namespace}/pebble"'
    manifest = certificate_manifest(namespace, "orphan", [f"orphan-{kind.lower()}.example.com"])
    manifest["spec"]["issuerRef"] = {"name": name, "kind": kind}
    kubectl.create(manifest)
    wait_for_ready(kubectl, "certificate", namespace, "orphan", timeout_s=120)
    issued = tls_secret(kubectl, namespace, "orphan-tls")
    assert issued is not None
    issuer = _get(kubectl, kind.lower(), name, scope)

    kubectl("delete", kind.lower(), name, *(["-n", scope] if scope else []))
    gone = wait_for_ready(kubectl, "certificate", namespace, "orphan", status="False")
    ready = condition_of(gone, "Ready")
    assert ready["reason"] == "IssuerNotReady"
    assert f"Waiting for {shown} to exist" in ready["message"]
    warnings = [
        e
        for e in _events(kubectl, "Certificate", "orphan", namespace)
        if e["reason"] == "IssuerNotReady"
    ]
    assert [e["type"] for e in warnings] == ["Warning"]
    assert shown in warnings[0]["message"]
    _signal_renew(stack, f"certificate/{namespace}/orphan")
    assert tls_secret(kubectl, namespace, "orphan-tls") == issued
    assert len(_orders_of(kubectl, namespace, "orphan")) == 1

    restored = {k: issuer[k] for k in ("apiVersion", "kind", "spec")}
    restored["metadata"] = {"name": name, **({"namespace": scope} if scope else {})}
    kubectl.create(restored)
    renewed = wait_for(
        lambda: (
            (_get(kubectl, "certificate", "orphan", namespace).get("status") or {}).get("revision")
            == 2
        ),
        "the renewal asked while the issuer was gone to run once it is back",
        timeout_s=120,
    )
    assert renewed
    wait_for_ready(kubectl, "certificate", namespace, "orphan")
    assert len(_orders_of(kubectl, namespace, "orphan")) == 2
    assert tls_secret(kubectl, namespace, "orphan-tls") != issued


@pytest.mark.parametrize("kind", ["Issuer", "ClusterIssuer"])
def test_account_key_replaced_in_its_secret_registers_a_new_account(
    stack: StackInfo,
    kubectl: Kubectl,
    issuers_bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    cluster_resource_namespace: str,
    cluster_issuers: list[str],
    kind: str,
) -> None:
    """A user replaces ``tls.key`` in the account key Secret: the issuer says a new account
    was registered because the key changed (condition, account URI, and an Event that
    ``kubectl describe`` shows), and a Certificate issues through the new account."""
    if kind == "ClusterIssuer":
        name, scope, secrets_in = unique("rekeyed"), "", cluster_resource_namespace
        cluster_issuers.append(name)
        kubectl.create(_cluster_issuer(stack, name))
    else:
        name, scope, secrets_in = "pebble", namespace, namespace
    first = wait_for_ready(kubectl, kind.lower(), scope, name)
    first_uri = first["status"]["acme"]["uri"]
    new_key = base64.b64encode(_ec_key_pem()).decode()
    patch = json.dumps({"data": {"tls.key": new_key}})
    kubectl("patch", "secret", f"{name}-account", "-n", secrets_in, "-p", patch)

    def new_account() -> dict[str, Any] | None:
        issuer = _get(kubectl, kind.lower(), name, scope)
        uri = ((issuer.get("status") or {}).get("acme") or {}).get("uri", first_uri)
        return issuer if uri != first_uri else None

    issuer = wait_for(new_account, f"the {kind} to show a new account URI", timeout_s=60)
    ready = condition_of(issuer, "Ready")
    assert ready["status"] == "True"
    assert "because the account key in" in ready["message"]
    assert f"Secret {secrets_in}/{name}-account changed" in ready["message"]
    described = kubectl("describe", kind.lower(), name, *(["-n", scope] if scope else [])).stdout
    changed = [row for row in describe_events(described) if row[1] == "AccountKeyChanged"]
    assert [row[0] for row in changed] == ["Normal"]
    assert "Registered a new ACME account" in changed[0][2]

    manifest = certificate_manifest(
        namespace, "new-account", [f"rekeyed-{kind.lower()}.example.com"]
    )
    manifest["spec"]["issuerRef"] = {"name": name, "kind": kind}
    kubectl.create(manifest)
    wait_for_ready(kubectl, "certificate", namespace, "new-account", timeout_s=120)
