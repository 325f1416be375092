"""cert-manager CertificateRequests made and approved the way cert-manager makes them.

Without cert-manager's controllers: ``spec.request`` is base64 of a PEM CSR from a fresh
key, and approval is the ``Approved`` condition (reason ``cert-manager.io``) written to
the status subresource, as cert-manager's approver writes it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from acmeflow.activities.csr import PrivateKey, build_csr, generate_private_key
from acmeflow.contracts.names import RequestedNames
from acmeflow.crds.order_requests import order_name
from tests.bridge.bridge_harness import condition_of, wait_for
from tests.k8s.kube_helpers import Kubectl

REQUESTS = "certificaterequests.cert-manager.io"
"""cert-manager's kind, named fully (a bare name could mean another group's)."""
ORDERS = "orders.acmeflow.io"


@dataclass(frozen=True)
class MadeRequest:
    """A CertificateRequest as created, and what only the requester knows (its key)."""

    namespace: str
    name: str
    csr_pem: str
    key: PrivateKey

    @property
    def order_name(self) -> str:
        """The Order acmeflow names for it (no revision annotation: revision 0)."""
        return order_name(self.name, self.csr_pem, 0)


def certificate_request(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    names: list[str],
    *,
    issuer: str = "pebble",
    kind: str = "Issuer",
    group: str = "acmeflow.io",
    common_name: str = "",
) -> MadeRequest:
    """Create a CertificateRequest for ``names`` (not yet approved)."""
    key = generate_private_key("ECDSA")
    csr = build_csr(key, RequestedNames(common_name=common_name, dns_names=names))
    manifest: dict[str, Any] = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "request": base64.b64encode(csr.encode()).decode(),
            "issuerRef": {"name": issuer, "kind": kind, "group": group},
            "duration": "2160h0m0s",
            "usages": ["digital signature", "key encipherment"],
        },
    }
    kubectl.create(manifest)
    return MadeRequest(namespace, name, csr, key)


def _decide(kubectl: Kubectl, request: MadeRequest, type_: str, message: str) -> None:
    """Add the condition ``type_`` as an approver does: guarded by the resourceVersion read,
    so it neither erases nor duplicates what another writer (the bridge, cert-manager's own
    approver) wrote meanwhile; done already if someone set it first."""

    def decided() -> bool:
        current = get_request(kubectl, request)
        conditions = current.get("status", {}).get("conditions", [])
        if any(c["type"] == type_ and c["status"] == "True" for c in conditions):
            return True
        condition = {
            "type": type_,
            "status": "True",
            "reason": "cert-manager.io",
            "message": message,
            "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        patch = {
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "status": {"conditions": [*conditions, condition]},
        }
        scope = ("-n", request.namespace, "--subresource=status", "--type=merge")
        result = kubectl(
            "patch", REQUESTS, request.name, *scope, "-p", json.dumps(patch), check=False
        )
        return result.returncode == 0

    wait_for(decided, f"{type_} on CertificateRequest {request.namespace}/{request.name}")


def approve(kubectl: Kubectl, request: MadeRequest) -> None:
    _decide(
        kubectl, request, "Approved", "Certificate request has been approved by cert-manager.io"
    )


def deny(kubectl: Kubectl, request: MadeRequest) -> None:
    _decide(kubectl, request, "Denied", "Denied by policy: test1 is not for this team")


def requested(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    names: list[str],
    **issuer: str,
) -> MadeRequest:
    """A request created and approved at once, as cert-manager's approver would."""
    request = certificate_request(kubectl, namespace, name, names, **issuer)
    approve(kubectl, request)
    return request


def get_request(kubectl: Kubectl, request: MadeRequest) -> dict[str, Any]:
    return kubectl.get(REQUESTS, request.name, namespace=request.namespace)


def wait_for_reason(
    kubectl: Kubectl, request: MadeRequest, reason: str, timeout_s: float = 90.0
) -> dict[str, Any]:
    """The request once its Ready condition has ``reason`` (Issued, Failed, Denied)."""
    found: dict[str, Any] = wait_for(
        lambda: (
            obj
            if condition_of(obj := get_request(kubectl, request), "Ready").get("reason") == reason
            else None
        ),
        f"CertificateRequest {request.namespace}/{request.name} Ready reason {reason}",
        timeout_s,
    )
    return found


def orders_owned_by(kubectl: Kubectl, namespace: str, uid: str) -> list[dict[str, Any]]:
    """The acmeflow Orders in ``namespace`` whose owner references name ``uid``."""
    listing = json.loads(kubectl("get", ORDERS, "-n", namespace, "-o", "json").stdout)
    return [
        order
        for order in listing["items"]
        if any(o["uid"] == uid for o in order["metadata"].get("ownerReferences", []))
    ]


def order_names(kubectl: Kubectl, namespace: str) -> list[str]:
    listing = json.loads(kubectl("get", ORDERS, "-n", namespace, "-o", "json").stdout)
    return sorted(o["metadata"]["name"] for o in listing["items"])


def chain_of(obj: dict[str, Any]) -> str:
    """``status.certificate`` decoded: the PEM chain cert-manager puts into the Secret."""
    return base64.b64decode(obj["status"]["certificate"]).decode()
