"""acmeflow's own processes on the embedded stack: worker, bridge, and the CRDs they need.

``acmeflow dev up`` runs them so the stack behaves like an installed cluster: apply an
Issuer and an Order with kubectl and they are served. Test sessions start the servers
only and run their own workers and bridges on their own task queues.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from acmeflow.crds.generate import render
from acmeflow.crds.models import GROUP, RESOURCES
from acmeflow.devstack.bind import self_check_nameserver_flags
from acmeflow.devstack.kube import run_kubectl
from acmeflow.devstack.processes import ServerProcess, log_tail

SOLVER_NAMESPACE = "acmeflow"


class StackAddresses(Protocol):
    """The part of ``StackInfo`` the components need (avoids an import cycle)."""

    @property
    def temporal_address(self) -> str: ...
    @property
    def kubeconfig(self) -> Path: ...
    @property
    def kubectl(self) -> Path: ...
    @property
    def dns_address(self) -> str: ...
    @property
    def http01_port(self) -> int: ...
    @property
    def moto_url(self) -> str: ...


def kubectl(info: StackAddresses, *args: str, stdin: str | None = None) -> str:
    return run_kubectl(info.kubectl, info.kubeconfig, *args, stdin=stdin)


def install_crds(info: StackAddresses) -> None:
    """The CRDs as the models generate them now, and the namespace acmeflow lives in."""
    with tempfile.TemporaryDirectory(prefix="acmeflow-crds-") as tmp:
        for name, text in render().items():
            (Path(tmp) / name).write_text(text)
        kubectl(info, "apply", "-k", tmp)
    wait_established(info, [f"{resource.PLURAL}.{GROUP}" for resource in RESOURCES])
    kubectl(
        info,
        "apply",
        "-f",
        "-",
        stdin=(
            '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "'
            + SOLVER_NAMESPACE
            + '"}}'
        ),
    )


def wait_established(info: StackAddresses, crds: Sequence[str], timeout_s: float = 60.0) -> None:
    """Block until every named CRD is Established.

    Not ``kubectl wait``: on a CRD created a moment ago it fails outright, with
    ``.status.conditions accessor error``, instead of waiting.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(crds)
    while time.monotonic() < deadline:
        listed = json.loads(kubectl(info, "get", "crd", *pending, "-o", "json"))
        pending = [
            item["metadata"]["name"]
            for item in listed.get("items", [listed])
            if not any(
                c["type"] == "Established" and c["status"] == "True"
                for c in item.get("status", {}).get("conditions") or []
            )
        ]
        if not pending:
            return
        time.sleep(0.2)
    raise RuntimeError(f"CRDs not Established after {timeout_s:.0f}s: {', '.join(pending)}")


def _logged(process: ServerProcess, marker: str) -> bool:
    return marker in log_tail(process.log_path, 200)


def component_processes(
    state_dir: Path,
    info: StackAddresses,
    dns_port: int,
    *,
    external_issuer: bool = False,
    powerdns_port: int = 0,
) -> list[ServerProcess]:
    """Worker and bridge; with ``external_issuer`` the bridge signs cert-manager's requests;
    the worker's self-check reaches PowerDNS's nameserver at ``powerdns_port``."""
    cli = [sys.executable, "-m", "acmeflow.cli"]
    worker = ServerProcess(
        name="acmeflow-worker",
        argv=[
            *cli,
            "worker",
            "--temporal-address",
            info.temporal_address,
            "--kubernetes",
            "true",
            "--kubeconfig",
            str(info.kubeconfig),
            "--solver-namespace",
            SOLVER_NAMESPACE,
            "--self-check-resolver",
            info.dns_address,
            "--self-check-http01-port",
            str(info.http01_port),
            "--self-check-dns-port",
            str(dns_port),
            *self_check_nameserver_flags(powerdns_port),
            "--route53-endpoint",
            info.moto_url,
        ],
        state_dir=state_dir,
        healthy=lambda: _logged(worker, "worker polling"),
    )
    bridge = ServerProcess(
        name="acmeflow-bridge",
        argv=[
            *cli,
            "bridge",
            "--temporal-address",
            info.temporal_address,
            "--kubeconfig",
            str(info.kubeconfig),
            *(["--external-issuer", "true"] if external_issuer else []),
        ],
        state_dir=state_dir,
        healthy=lambda: _logged(bridge, "bridge running"),
    )
    return [worker, bridge]
