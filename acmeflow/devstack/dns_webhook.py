"""acmeflow's own cert-manager DNS webhook on the stack, registered through the aggregation layer.

The program (``deploy/dns01-webhook``) is built on cert-manager's webhook library and
writes TXT values into the stack's BIND9 by RFC 2136, so the webhook solver path is tested
against the server every third-party webhook runs. It listens on 127.0.0.1 and is
registered the way a webhook's Helm chart registers it in a cluster:

- an APIService ``v1alpha1.<group>`` with a ``caBundle`` (the stack's local CA, which
  signs its serving certificate): the API server verifies the webhook as it would in a
  cluster, which ``insecureSkipTLSVerify`` would not;
- a Service of type ``ExternalName`` pointing at ``localhost``: the API server, with
  aggregator routing off, dials an ExternalName Service by its name, while Endpoints may not
  hold loopback addresses (and a ClusterIP needs a kube-proxy this stack does not run);
- the RBAC the webhook itself needs, as its own user (a client certificate): reading
  ``extension-apiserver-authentication`` in kube-system, delegated authentication and
  authorization (``system:auth-delegator``), and ``get`` on Secrets for its TSIG key.

Registration happens as the process starts, so the webhook never starts without the rights
it reads its configuration with. The webhook logs each request it receives as one JSON
line to ``DnsWebhookEndpoints.requests_log``.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from acmeflow.devstack.go_builds import dns01_webhook_binary
from acmeflow.devstack.kube import KubeEndpoints, client_kubeconfig, run_kubectl
from acmeflow.devstack.processes import ServerProcess
from acmeflow.devstack.tls import KeyPair, create_ca, issue_leaf

GROUP_NAME: Final = "acme.dns01-webhook.acmeflow.test"
SOLVER_NAME: Final = "bind-rfc2136"
"""The solver the program serves (``solverName`` in an Issuer)."""
NAMESPACE: Final = "acmeflow-dns01-webhook"
SERVICE: Final = "acmeflow-dns01-webhook"
WEBHOOK_USER: Final = "acmeflow-dns01-webhook"
"""The webhook's own identity on the API server (a client certificate's common name)."""
VERSION: Final = "v1alpha1"


class DnsWebhookEndpoints(BaseModel):
    """What an Issuer names to reach the stack's webhook, and where it logs requests."""

    group_name: str = GROUP_NAME
    solver_name: str = SOLVER_NAME
    api_service: str = f"{VERSION}.{GROUP_NAME}"
    requests_log: Path


def _registration(ca_pem: bytes, port: int) -> list[dict[str, Any]]:
    """Namespace, Service, APIService and the webhook's RBAC, as one list to apply."""
    user = [{"kind": "User", "name": WEBHOOK_USER, "apiGroup": "rbac.authorization.k8s.io"}]
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"{VERSION}.{GROUP_NAME}"},
            "spec": {
                "group": GROUP_NAME,
                "version": VERSION,
                "groupPriorityMinimum": 1000,
                "versionPriority": 15,
                "service": {"name": SERVICE, "namespace": NAMESPACE, "port": port},
                "caBundle": base64.b64encode(ca_pem).decode(),
            },
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": WEBHOOK_USER},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        },
        *(
            {
                "apiVersion": rbac,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{WEBHOOK_USER}:{role}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": user,
            }
            for role in (WEBHOOK_USER, "system:auth-delegator")
        ),
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": f"{WEBHOOK_USER}:auth-reader", "namespace": "kube-system"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": user,
        },
    ]


def _kubectl(kube: KubeEndpoints, *args: str, stdin: str | None = None) -> str:
    return run_kubectl(kube.kubectl, kube.kubeconfig, *args, stdin=stdin)


def api_service_available(kube: KubeEndpoints) -> bool:
    """Whether the API server reaches the webhook (the APIService's Available condition)."""
    shown = json.loads(_kubectl(kube, "get", "apiservice", f"{VERSION}.{GROUP_NAME}", "-o", "json"))
    return any(
        c.get("type") == "Available" and c.get("status") == "True"
        for c in shown.get("status", {}).get("conditions") or []
    )


def _serving_ok(port: int, ca: KeyPair) -> bool:
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    with urllib.request.urlopen(
        f"https://localhost:{port}/healthz", context=context, timeout=3
    ) as r:
        return int(r.status) == 200


@dataclass
class RegisteredWebhookProcess(ServerProcess):
    """A server that registers itself with the API server before it starts.

    Its binary is looked up only then: it is built from the program's sources, which an
    installed wheel lacks, and ``dev status`` or ``dev down`` must work without them.
    """

    register: Callable[[], None] = field(default=lambda: None)
    options: Sequence[str] = ()

    def start(self) -> None:
        self.argv = [str(dns01_webhook_binary()), *self.options]
        self.register()
        super().start()


def dns_webhook_process(
    state_dir: Path, kube: KubeEndpoints, *, port: int, depends_on: tuple[ServerProcess, ...]
) -> tuple[ServerProcess, DnsWebhookEndpoints]:
    """The webhook on 127.0.0.1:``port``; healthy once the API server reaches it."""
    directory = state_dir / "dns01-webhook"
    tls_ca = create_ca(state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    serving = issue_leaf(
        tls_ca,
        directory,
        "serving",
        common_name=f"{SERVICE}.{NAMESPACE}.svc",
        dns_names=("localhost", f"{SERVICE}.{NAMESPACE}.svc"),
        ip_addresses=("127.0.0.1",),
    )
    kubeconfig = client_kubeconfig(state_dir, user=WEBHOOK_USER, server=kube.server)
    endpoints = DnsWebhookEndpoints(
        requests_log=state_dir / "logs" / "dns01-webhook-requests.jsonl"
    )

    def register() -> None:
        manifest = {
            "apiVersion": "v1",
            "kind": "List",
            "items": _registration(tls_ca.cert_path.read_bytes(), port),
        }
        _kubectl(kube, "apply", "-f", "-", stdin=json.dumps(manifest))

    def healthy() -> bool:
        return _serving_ok(port, tls_ca) and api_service_available(kube)

    process = RegisteredWebhookProcess(
        name="dns01-webhook",
        argv=[],
        options=[
            *("--secure-port", str(port)),
            *("--bind-address", "127.0.0.1"),
            *("--tls-cert-file", str(serving.cert_path)),
            *("--tls-private-key-file", str(serving.key_path)),
            *("--cert-dir", str(directory)),
            *("--kubeconfig", str(kubeconfig)),
            *("--authentication-kubeconfig", str(kubeconfig)),
            *("--authorization-kubeconfig", str(kubeconfig)),
        ],
        state_dir=state_dir,
        healthy=healthy,
        env={
            "GROUP_NAME": GROUP_NAME,
            "ACMEFLOW_DNS01_WEBHOOK_REQUEST_LOG": str(endpoints.requests_log),
        },
        depends_on=depends_on,
        register=register,
    )
    return process, endpoints
