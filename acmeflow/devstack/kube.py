"""etcd, kube-apiserver (RBAC on) and kube-controller-manager (garbage collection).

The binaries come from :mod:`acmeflow.devstack.go_builds`; etcd is Debian's. The admin
identity is a client certificate in ``system:masters``; everything else a test needs
(an unprivileged user, a service account) is reached by impersonation, and a process that
must be someone else (the DNS webhook) gets a client certificate of its own
(``client_kubeconfig``).

The aggregation layer is on (``--requestheader-*``, ``--proxy-client-*``), so extension
API servers registered by an APIService (cert-manager DNS webhooks) are served. Aggregator
routing (``--enable-aggregator-routing``) stays off: with it the API server dials an
endpoint address, and Endpoints may not hold loopback addresses; without it, an
``ExternalName`` Service is dialled by its name (``localhost``), which reaches a process
on this machine (docs/dns01-webhook.md).
"""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmeflow.devstack.go_builds import binary_path
from acmeflow.devstack.processes import ServerProcess
from acmeflow.devstack.tls import KeyPair, create_ca, issue_leaf

SERVICE_CIDR = "10.0.0.0/24"
GC_CONTROLLERS = "garbagecollector,namespace,serviceaccount,serviceaccount-token"


@dataclass(frozen=True)
class KubeEndpoints:
    server: str
    kubeconfig: Path
    kubectl: Path
    ca_path: Path


def run_kubectl(kubectl: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    """``kubectl <args>`` against the stack; a failure raises with what kubectl said."""
    result = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        raise FileNotFoundError("etcd is missing: apt-get install etcd-server")
    return found


def _https_ok(url: str, ca: Path | None, client: KeyPair | None = None) -> bool:
    context = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
    if client is not None:
        context.load_cert_chain(str(client.cert_path), str(client.key_path))
    with urllib.request.urlopen(url, context=context, timeout=3) as response:
        return int(response.status) == 200


def etcd_process(state_dir: Path, *, client_port: int, peer_port: int) -> ServerProcess:
    peer = f"http://127.0.0.1:{peer_port}"
    client = f"http://127.0.0.1:{client_port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{client}/health", timeout=2) as response:
            return b'"true"' in response.read()

    return ServerProcess(
        name="etcd",
        argv=[
            etcd_binary(),
            "--name",
            "acmeflow-dev",
            "--data-dir",
            str(state_dir / "etcd"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"acmeflow-dev={peer}",
            "--log-level",
            "warn",
        ],
        state_dir=state_dir,
        healthy=healthy,
        env={"ETCD_UNSUPPORTED_ARCH": ""},
    )


def _write_kubeconfig(
    path: Path, server: str, ca: KeyPair, client: KeyPair, *, user: str = "admin"
) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "acmeflow-dev",
                "cluster": {"server": server, "certificate-authority-data": b64(ca.cert_path)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert_path),
                    "client-key-data": b64(client.key_path),
                },
            }
        ],
        "contexts": [
            {
                "name": "acmeflow-dev",
                "context": {"cluster": "acmeflow-dev", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "acmeflow-dev",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _service_account_keys(pki: Path) -> tuple[Path, Path]:
    private_path, public_path = pki / "sa.key", pki / "sa.pub"
    if not private_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private_path, public_path


def _kube_ca(pki: Path) -> KeyPair:
    return create_ca(pki, "ca", "acmeflow-dev-kube-ca")


def client_kubeconfig(state_dir: Path, *, user: str, server: str) -> Path:
    """A kubeconfig that authenticates as ``user`` (no groups) with a client certificate
    from the stack's cluster CA; RBAC decides what it may do."""
    pki = state_dir / "kube-pki"
    identity = issue_leaf(_kube_ca(pki), pki, user, common_name=user, server=False, client=True)
    path = state_dir / f"kubeconfig-{user}"
    _write_kubeconfig(path, server, _kube_ca(pki), identity, user=user)
    return path


def kube_processes(
    state_dir: Path, *, etcd_url: str, api_port: int, cm_port: int
) -> tuple[list[ServerProcess], KubeEndpoints]:
    pki = state_dir / "kube-pki"
    ca = _kube_ca(pki)
    serving = issue_leaf(
        ca,
        pki,
        "apiserver",
        common_name="kube-apiserver",
        dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        ip_addresses=("127.0.0.1", "10.0.0.1"),
    )
    admin = issue_leaf(
        ca,
        pki,
        "admin",
        common_name="acmeflow-admin",
        organization="system:masters",
        server=False,
        client=True,
    )
    front_proxy = issue_leaf(
        ca, pki, "front-proxy-client", common_name="front-proxy-client", server=False, client=True
    )
    sa_private, sa_public = _service_account_keys(pki)
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = state_dir / "kubeconfig"
    _write_kubeconfig(kubeconfig, server, ca, admin)

    apiserver = ServerProcess(
        name="kube-apiserver",
        argv=[
            str(binary_path("kube-apiserver")),
            "--etcd-servers",
            etcd_url,
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(api_port),
            "--cert-dir",
            str(pki),
            "--tls-cert-file",
            str(serving.cert_path),
            "--tls-private-key-file",
            str(serving.key_path),
            "--client-ca-file",
            str(ca.cert_path),
            "--service-account-issuer",
            "https://kubernetes.default.svc",
            "--service-account-key-file",
            str(sa_public),
            "--service-account-signing-key-file",
            str(sa_private),
            "--service-cluster-ip-range",
            SERVICE_CIDR,
            "--authorization-mode",
            "RBAC",
            # The aggregation layer: extension API servers trust requests the API server
            # proxies when they carry this client certificate (front-proxy-client).
            *("--requestheader-client-ca-file", str(ca.cert_path)),
            *("--requestheader-allowed-names", "front-proxy-client"),
            *("--requestheader-username-headers", "X-Remote-User"),
            *("--requestheader-group-headers", "X-Remote-Group"),
            *("--requestheader-extra-headers-prefix", "X-Remote-Extra-"),
            *("--proxy-client-cert-file", str(front_proxy.cert_path)),
            *("--proxy-client-key-file", str(front_proxy.key_path)),
            "--profiling=false",
        ],
        state_dir=state_dir,
        healthy=lambda: _https_ok(f"{server}/readyz", ca.cert_path, admin),
    )
    controller_manager = ServerProcess(
        name="kube-controller-manager",
        argv=[
            str(binary_path("kube-controller-manager")),
            "--kubeconfig",
            str(kubeconfig),
            "--authentication-kubeconfig",
            str(kubeconfig),
            "--authorization-kubeconfig",
            str(kubeconfig),
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            str(cm_port),
            "--controllers",
            GC_CONTROLLERS,
            "--leader-elect=false",
            "--service-account-private-key-file",
            str(sa_private),
            "--root-ca-file",
            str(ca.cert_path),
            "--cert-dir",
            str(pki / "controller-manager"),
        ],
        state_dir=state_dir,
        healthy=lambda: _https_ok(f"https://127.0.0.1:{cm_port}/healthz", None),
        depends_on=(apiserver,),
    )
    endpoints = KubeEndpoints(
        server=server, kubeconfig=kubeconfig, kubectl=binary_path("kubectl"), ca_path=ca.cert_path
    )
    return [apiserver, controller_manager], endpoints
