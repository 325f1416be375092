"""acmeflow's own processes on the embedded stack: worker, bridge, and the CRDs they need.

``acmeflow dev up`` runs them so the stack behaves like an installed cluster: apply an
Issuer and an Order with kubectl and they are served. Test sessions start the servers
only and run their own workers and bridges on their own task queues.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from acmeflow.crds.generate import render
from acmeflow.crds.models import GROUP, RESOURCES
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


def kubectl(info: StackAddresses, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(info.kubectl), "--kubeconfig", str(info.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def install_crds(info: StackAddresses) -> None:
    """The CRDs as the models generate them now, and the namespace acmeflow lives in."""
    with tempfile.TemporaryDirectory(prefix="acmeflow-crds-") as tmp:
        for name, text in render().items():
            (Path(tmp) / name).write_text(text)
        kubectl(info, "apply", "-k", tmp)
    crds = [f"crd/{resource.PLURAL}.{GROUP}" for resource in RESOURCES]
    kubectl(info, "wait", "--for=condition=Established", "--timeout=60s", *crds)
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


def _logged(process: ServerProcess, marker: str) -> bool:
    return marker in log_tail(process.log_path, 200)


def component_processes(
    state_dir: Path, info: StackAddresses, dns_port: int
) -> list[ServerProcess]:
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
        ],
        state_dir=state_dir,
        healthy=lambda: _logged(bridge, "bridge running"),
    )
    return [worker, bridge]
