"""The processes the cert-manager comparison runs on a servers-only stack, and their groups.

acmeflow's worker and bridge as ``acmeflow dev up`` runs them, the bridge with
``--external-issuer true`` so it signs cert-manager's CertificateRequests for acmeflow's
issuers too; and one ``cert-manager-controllers`` process with cert-manager's own ACME
issuer beside its Certificate lifecycle and approver, all six of its CRDs installed. Their
pid files go in the stack's ``pids/``, so every run measures their CPU and memory with the
stack's servers. A system's figures count the process groups that are its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

from harness.acmeflow_api import (
    ACME_ISSUER_CONTROLLERS,
    CertManagerInfo,
    StackInfo,
    component_processes,
    start_cert_manager,
    stop_pid_file,
)

START_TIMEOUT_S = 120.0

PROCESS_GROUPS: dict[str, tuple[str, ...]] = {
    "cert-manager": ("cert-manager",),
    "acmeflow": ("acmeflow-worker", "acmeflow-bridge"),
    "temporal": ("temporal",),
    "kubernetes": ("kube-apiserver", "etcd", "kube-controller-manager"),
    "ca+dns": ("pebble", "bind9", "http01-solver"),
}
"""Stack processes by what they belong to; Temporal and Kubernetes are shown apart."""


@dataclass(frozen=True)
class CertManagerTuning:
    """How cert-manager runs; defaults raised where its own would throttle a 500 run."""

    workers: int = 60
    """Workers per controller (cert-manager's default: 5). Its DNS-01 check sleeps 60 s
    inside a worker, so this bounds the challenges it finishes a minute."""
    max_concurrent_challenges: int = 60
    """Challenges it lets be processing at once (its default)."""
    kube_api_qps: int = 500
    kube_api_burst: int = 1000

    def args(self) -> list[str]:
        return [
            "--max-concurrent-challenges",
            str(self.max_concurrent_challenges),
            "--kube-api-qps",
            str(self.kube_api_qps),
            "--kube-api-burst",
            str(self.kube_api_burst),
        ]


def refuse_running_components(stack: StackInfo) -> None:
    """The comparison starts its own worker and bridge; a stack running others is refused."""
    running = [p.stem for p in (stack.state_dir / "pids").glob("acmeflow-*.pid")]
    if running or (stack.state_dir / "pids" / "cert-manager.pid").exists():
        raise SystemExit(
            f"{stack.state_dir} already runs {', '.join(running) or 'cert-manager'}: "
            "use a stack of `acmeflow dev up --servers-only` dedicated to this benchmark"
        )


@contextlib.contextmanager
def comparison_processes(stack: StackInfo, tuning: CertManagerTuning) -> Iterator[CertManagerInfo]:
    """cert-manager (its CRDs first), then acmeflow's worker and bridge; all stopped after."""
    refuse_running_components(stack)
    worker, bridge = component_processes(stack.state_dir, stack, stack.ports.dns)
    bridge = replace(bridge, argv=[*bridge.argv, "--external-issuer", "true"])
    started = []
    try:
        cert_manager = start_cert_manager(
            stack.state_dir,
            stack,
            controllers=ACME_ISSUER_CONTROLLERS,
            workers=tuning.workers,
            with_acme_kinds=True,
            extra_args=tuning.args(),
            timeout_s=START_TIMEOUT_S,
        )
        started.append(cert_manager.process.pid_path)
        for process in (worker, bridge):
            process.start()
            started.append(process.pid_path)
        for process in (worker, bridge):
            process.wait_healthy(START_TIMEOUT_S)
        yield cert_manager
    finally:
        for pid_path in reversed(started):
            stop_pid_file(pid_path)
