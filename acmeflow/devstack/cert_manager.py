"""cert-manager's real controllers on the embedded stack: its CRDs, then one process.

The program in ``deploy/cert-manager-controllers`` wires controllers from cert-manager's
root module (see docs/cert-manager.md). acmeflow as an external issuer needs only
cert-manager's Certificate lifecycle, its approver and its shims, so that is the default
set. Only four of cert-manager's six CRDs go in by default: with ``orders`` and
``challenges`` of ``acme.cert-manager.io`` installed, a bare ``kubectl get order`` would
stop meaning acmeflow's Order. The benchmark, which also runs cert-manager's own ACME
issuer on a stack of its own, asks for all six.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from acmeflow.devstack.components import StackAddresses, kubectl, wait_established
from acmeflow.devstack.go_builds import cert_manager_binary, cert_manager_crds, gateway_api_crds
from acmeflow.devstack.processes import ServerProcess, free_port, stop_pid_file

EXTERNAL_ISSUER_CONTROLLERS = (
    "certificates-issuing",
    "certificates-key-manager",
    "certificates-trigger",
    "certificates-readiness",
    "certificates-request-manager",
    "certificates-revision-manager",
    "certificaterequests-approver",
    "ingress-shim",
    "gateway-shim",
)
"""cert-manager's Certificate lifecycle, approver and shims: all acmeflow's signer needs."""

ACME_ISSUER_CONTROLLERS = (
    *EXTERNAL_ISSUER_CONTROLLERS,
    "issuers",
    "clusterissuers",
    "certificaterequests-issuer-acme",
    "orders",
    "challenges",
)
"""Also cert-manager's own ACME issuer, for the benchmark against it."""

EXTERNAL_ISSUER_CRDS = (
    "certificates.cert-manager.io",
    "certificaterequests.cert-manager.io",
    "issuers.cert-manager.io",
    "clusterissuers.cert-manager.io",
)
ACME_CRDS = ("orders.acme.cert-manager.io", "challenges.acme.cert-manager.io")
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
"""Where ClusterIssuers' Secrets live; cert-manager's chart default."""

PROCESS_NAME = "cert-manager"
DEFAULT_WORKERS = 5
"""cert-manager's own default per controller."""


@dataclass(frozen=True)
class CertManagerInfo:
    """A running cert-manager-controllers process and what callers read from it."""

    process: ServerProcess
    controllers: tuple[str, ...]
    cluster_resource_namespace: str
    healthz_url: str

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def pid(self) -> int:
        """For CPU and RSS from ``/proc/<pid>`` (the benchmark)."""
        if self.process.popen is not None:
            return self.process.popen.pid
        return int(self.process.pid_path.read_text())

    def stop(self) -> bool:
        return stop_pid_file(self.process.pid_path)


def _crd_name(path: Path) -> str:
    """``cert-manager.io_certificates.yaml`` -> ``certificates.cert-manager.io``."""
    group, plural = path.stem.split("_", 1)
    return f"{plural}.{group}"


def install_cert_manager_crds(
    info: StackAddresses,
    *,
    with_acme_kinds: bool = False,
    cluster_resource_namespace: str = CLUSTER_RESOURCE_NAMESPACE,
    log: Path | None = None,
) -> None:
    """cert-manager's CRDs, the Gateway API's, and the cluster resource namespace."""
    wanted = {*EXTERNAL_ISSUER_CRDS, *(ACME_CRDS if with_acme_kinds else ())}
    _apply_crds(info, [path for path in cert_manager_crds(log) if _crd_name(path) in wanted])
    install_gateway_api_crds(info, log=log)
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": cluster_resource_namespace},
    }
    kubectl(info, "apply", "-f", "-", stdin=json.dumps(namespace))


def install_gateway_api_crds(info: StackAddresses, *, log: Path | None = None) -> None:
    """The Gateway API standard CRDs at the version cert-manager's module requires.

    cert-manager decides at start-up whether the Gateway API is there, so this returns
    only once discovery serves every kind. The API server defaults fields of what is
    stored (a parentRef's group and kind, a backendRef's weight).
    """
    _apply_crds(info, gateway_api_crds(log))


def _apply_crds(info: StackAddresses, crds: Sequence[Path]) -> None:
    """Server-side apply, taking over fields another manager set, then wait until served."""
    files = [arg for path in crds for arg in ("-f", str(path))]
    kubectl(info, "apply", "--server-side", "--force-conflicts", *files)
    names = [_crd_name(path) for path in crds]
    wait_established(info, names)
    _wait_served(info, names)


def _wait_served(info: StackAddresses, crd_names: Sequence[str], timeout_s: float = 30.0) -> None:
    """Block until the API server's discovery lists each CRD's plural in its group."""
    by_group: dict[str, set[str]] = {}
    for name in crd_names:
        plural, group = name.split(".", 1)
        by_group.setdefault(group, set()).add(plural)
    deadline = time.monotonic() + timeout_s
    missing: set[str] = set(crd_names)
    while time.monotonic() < deadline:
        missing = set()
        for group, plurals in by_group.items():
            served = _served_plurals(info, group)
            missing |= {f"{plural}.{group}" for plural in plurals - served}
        if not missing:
            return
        time.sleep(0.5)
    raise RuntimeError(f"discovery does not serve {sorted(missing)} after {timeout_s:.0f}s")


def _served_plurals(info: StackAddresses, group: str) -> set[str]:
    listing = kubectl(info, "api-resources", f"--api-group={group}", "-o", "name")
    return {line.split(".", 1)[0] for line in listing.split()}


def cert_manager_process(
    state_dir: Path,
    info: StackAddresses,
    *,
    controllers: Sequence[str] = EXTERNAL_ISSUER_CONTROLLERS,
    workers: int = DEFAULT_WORKERS,
    healthz_port: int,
    cluster_resource_namespace: str = CLUSTER_RESOURCE_NAMESPACE,
    name: str = PROCESS_NAME,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """The controllers process, healthy once cert-manager's informers have synced.

    It runs controllers only while it holds cert-manager's leader Lease, so two test
    sessions sharing one stack take turns instead of both reconciling every Certificate;
    a standby is healthy while another process holds a live Lease. DNS-01 self-checks ask
    only the stack's BIND9: its NS records do not name its port, so cert-manager's
    authoritative lookup would never reach it.
    """
    healthz = f"127.0.0.1:{healthz_port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"http://{healthz}/healthz", timeout=2) as response:
            return int(response.status) == 200

    return ServerProcess(
        name=name,
        argv=[
            str(cert_manager_binary()),
            "--kubeconfig",
            str(info.kubeconfig),
            "--controllers",
            ",".join(controllers),
            "--workers",
            str(workers),
            "--cluster-resource-namespace",
            cluster_resource_namespace,
            "--enable-gateway-api",
            "--dns01-recursive-nameservers",
            info.dns_address,
            "--dns01-recursive-nameservers-only",
            "--dns01-check-retry-period",
            "1s",
            "--healthz-address",
            healthz,
            "--leader-elect",
            *extra_args,
        ],
        state_dir=state_dir,
        healthy=healthy,
    )


def start_cert_manager(
    state_dir: Path,
    info: StackAddresses,
    *,
    controllers: Sequence[str] = EXTERNAL_ISSUER_CONTROLLERS,
    workers: int = DEFAULT_WORKERS,
    with_acme_kinds: bool = False,
    cluster_resource_namespace: str = CLUSTER_RESOURCE_NAMESPACE,
    name: str = PROCESS_NAME,
    extra_args: Sequence[str] = (),
    timeout_s: float = 60.0,
) -> CertManagerInfo:
    """Install the CRDs and run the controllers until healthy; stop them if they never are."""
    log = state_dir / "logs" / "go-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    binary = cert_manager_binary()
    if not binary.is_file():
        raise FileNotFoundError(
            f"{binary} is missing: run `make kube` (python -m acmeflow.devstack.go_builds)"
        )
    install_cert_manager_crds(
        info,
        with_acme_kinds=with_acme_kinds,
        cluster_resource_namespace=cluster_resource_namespace,
        log=log,
    )
    port = free_port()
    process = cert_manager_process(
        state_dir,
        info,
        controllers=controllers,
        workers=workers,
        healthz_port=port,
        cluster_resource_namespace=cluster_resource_namespace,
        name=name,
        extra_args=extra_args,
    )
    process.start()
    try:
        process.wait_healthy(timeout_s)
    except BaseException:
        stop_pid_file(process.pid_path)
        raise
    return CertManagerInfo(
        process=process,
        controllers=tuple(controllers),
        cluster_resource_namespace=cluster_resource_namespace,
        healthz_url=f"http://127.0.0.1:{port}/healthz",
    )
