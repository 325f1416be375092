"""cert-manager's own kinds as a user writes them, and what cert-manager's controllers and
acmeflow's bridge made of them.

Kinds are named in full (``certificates.cert-manager.io``): with acmeflow's CRDs installed
too, a bare ``certificate`` means acmeflow's Certificate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from acmeflow.activities.csr import load_private_key
from tests.bridge.bridge_harness import condition_of, describe_events, tls_secret, wait_for
from tests.cert_manager.request_harness import REQUESTS, orders_owned_by
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate

CERTIFICATES = "certificates.cert-manager.io"
Obj = dict[str, Any]


def certificate_manifest(
    namespace: str, name: str, names: list[str], *, issuer: str = "pebble", kind: str = "Issuer"
) -> Obj:
    """A cert-manager Certificate whose issuerRef names an acmeflow Issuer or ClusterIssuer."""
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": f"{name}-tls",
            "dnsNames": names,
            "issuerRef": {"group": "acmeflow.io", "kind": kind, "name": issuer},
            "privateKey": {"algorithm": "ECDSA"},
        },
    }


def ingress_manifest(namespace: str, name: str, host: str, *, issuer: str, secret: str) -> Obj:
    """An Ingress annotated for cert-manager's ingress-shim, pointing at an acmeflow Issuer."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {
                "cert-manager.io/issuer": issuer,
                "cert-manager.io/issuer-kind": "Issuer",
                "cert-manager.io/issuer-group": "acmeflow.io",
            },
        },
        "spec": {
            "tls": [{"hosts": [host], "secretName": secret}],
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": name, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def wait_for_certificate(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    *,
    condition: str,
    status: str,
    revision: int | None = None,
    timeout_s: float = 120.0,
) -> Obj:
    """The cert-manager Certificate once ``condition`` has ``status`` (and, if given, its
    status.revision is ``revision``)."""

    def reached() -> Obj | None:
        result = kubectl("get", CERTIFICATES, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        obj: Obj = json.loads(result.stdout)
        if condition_of(obj, condition).get("status") != status:
            return None
        if revision is not None and obj.get("status", {}).get("revision") != revision:
            return None
        return obj

    shown = f"{CERTIFICATES} {namespace}/{name} {condition}={status}"
    if revision is not None:
        shown += f" at revision {revision}"
    found: Obj = wait_for(reached, shown, timeout_s)
    return found


def requests_of(kubectl: Kubectl, certificate: Obj) -> list[Obj]:
    """The CertificateRequests cert-manager made for ``certificate``, oldest revision first."""
    namespace = certificate["metadata"]["namespace"]
    listing = json.loads(kubectl("get", REQUESTS, "-n", namespace, "-o", "json").stdout)
    owned = [
        request
        for request in listing["items"]
        if any(
            owner["uid"] == certificate["metadata"]["uid"]
            for owner in request["metadata"].get("ownerReferences", [])
        )
    ]
    return sorted(
        owned,
        key=lambda r: int(r["metadata"]["annotations"]["cert-manager.io/certificate-revision"]),
    )


def order_of(kubectl: Kubectl, request: Obj) -> Obj:
    """The one acmeflow Order that signs ``request``."""
    namespace = request["metadata"]["namespace"]
    [order] = orders_owned_by(kubectl, namespace, request["metadata"]["uid"])
    return order


def issued_leaf(
    kubectl: Kubectl, certificate: Obj, names: list[str], roots_path: Path
) -> x509.Certificate:
    """The certificate's Secret: its key matches its chain, which covers ``names`` and
    chains to the CA's root. Returns the leaf."""
    namespace = certificate["metadata"]["namespace"]
    secret = tls_secret(kubectl, namespace, certificate["spec"]["secretName"])
    assert secret is not None, f"Secret {certificate['spec']['secretName']} is missing"
    chain = secret["tls.crt"].decode()
    assert_certificate(chain, load_private_key(secret["tls.key"]), names, roots_path)
    return x509.load_pem_x509_certificate(secret["tls.crt"])


def renew(kubectl: Kubectl, namespace: str, name: str) -> None:
    """What ``cmctl renew`` does: set the Issuing condition on the Certificate's status."""
    current = kubectl.get(CERTIFICATES, name, namespace=namespace)
    conditions = [
        c for c in current.get("status", {}).get("conditions", []) if c["type"] != "Issuing"
    ]
    issuing = {
        "type": "Issuing",
        "status": "True",
        "reason": "ManuallyTriggered",
        "message": "Certificate re-issuance manually triggered",
        "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "observedGeneration": current["metadata"]["generation"],
    }
    kubectl.patch_status(
        CERTIFICATES, name, {"conditions": [*conditions, issuing]}, namespace=namespace
    )


def certificate_events(described: str) -> list[tuple[str, str, str]]:
    """The Events of ``kubectl describe certificates.cert-manager.io``, less one of
    cert-manager's own races: its request manager, acting on a stale cache, sometimes creates
    the request a second time, says so (``RequestFailed ... already exists``) and goes on.
    Any other failure still shows."""
    return [
        event
        for event in describe_events(described)
        if not (event[1] == "RequestFailed" and event[2].endswith("already exists"))
    ]
