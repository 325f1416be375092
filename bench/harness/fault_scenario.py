"""Faults at load: N Certificates in flight while the worker, the bridge and Temporal die.

The scenario that ``tests/k8s/test_faults_at_load.py`` asserts on (20 Certificates) and
``bench/faults.py`` measures (200):

1. its own Temporal dev server, an ``acmeflow worker`` and an ``acmeflow bridge`` as
   separate processes (``fault_processes``), an ACME proxy in front of the stack's Pebble
   that counts new-orders, and a fresh namespace with the Issuer of ``fault_plan``;
2. the Certificates created at once, HTTP-01, DNS-01 and wildcard-plus-apex in turn;
3. while they are in flight, the kills of ``fault_schedule.SCHEDULE``, each as soon as
   its progress threshold is reached, each followed by a start of the same command line;
4. once every Certificate is Ready or has failed (or the hang guard gave up) and no
   Order workflow runs, ``fault_findings.inspect_run`` looks at what is left.

Nothing is timed against a limit: ``timeout_s`` only ends a run that hangs.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.acmeflow_api import StackInfo, crds, create_ca
from harness.fault_findings import (
    Findings,
    has_failed,
    inspect_run,
    is_ready,
    list_objects,
    running_orders,
)
from harness.fault_plan import fault_issuer, planned_certificates, tsig_secret
from harness.fault_processes import FaultProcesses
from harness.fault_schedule import SCHEDULE, Kill, KillRecord, Progress
from harness.figures import NAN
from harness.kube import ISSUER, Kube, create_all, create_object, delete_namespace, kube_clients
from harness.suite_helpers import AcmeProxy, orders_created

POLL_S = 0.25
PROGRESS_EVERY_S = 10.0
SETTLE_TIMEOUT_S = 180.0
"""After all Ready, how long Order workflows may take to close: guards against a hang."""
ISSUER_TIMEOUT_S = 120.0
GONE_TIMEOUT_S = 300.0
CHALLENGE_PATH, FINALIZE_PATH = "/chalZ/", "/finalize-order/"
"""Pebble's challenge and finalize URL paths (``wfe.challengePath``, ``orderFinalizePath``)."""

Say = Callable[[str], None]


@dataclass
class FaultRun:
    """What one run did and found."""

    certificates: int
    namespace: str
    kills: list[KillRecord] = field(default_factory=list)
    missed_kills: list[str] = field(default_factory=list)
    """Kills of the schedule that never came due (everything was Ready first)."""
    started_at: float = NAN
    ready_at: dict[str, float] = field(default_factory=dict)
    """When each Certificate was first seen Ready (epoch seconds)."""
    timed_out: bool = False
    findings: Findings | None = None

    @property
    def all_ready_s(self) -> float:
        """First create -> the last Certificate seen Ready; NaN unless all were."""
        if len(self.ready_at) < self.certificates:
            return NAN
        return max(self.ready_at.values()) - self.started_at

    def times_to_ready(self) -> list[float]:
        """First create -> each Certificate seen Ready, in seconds."""
        return [at - self.started_at for at in self.ready_at.values()]

    def kills_by_target(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kill in self.kills:
            counts[kill.target] = counts.get(kill.target, 0) + 1
        return counts


@dataclass
class _Scene:
    stack: StackInfo
    kube: Kube
    proxy: AcmeProxy
    processes: FaultProcesses
    namespace: str


@contextlib.contextmanager
def _scene(stack: StackInfo, run_dir: Path, run_id: str, say: Say) -> Iterator[_Scene]:
    """Proxy, processes and namespace up; all of it gone again afterwards."""
    kube = kube_clients(stack)
    tls_ca = create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    namespace = f"faults-{run_id}"
    processes = FaultProcesses(stack, run_dir)
    with AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=run_dir) as proxy:
        try:
            processes.start()
            kube.core.create_namespace({"metadata": {"name": namespace}})
            kube.core.create_namespaced_secret(namespace, tsig_secret(stack, namespace))
            create_object(kube, fault_issuer(stack, namespace, server=proxy.directory_url))
            yield _Scene(stack, kube, proxy, processes, namespace)
        finally:
            try:
                _delete_namespace(kube, namespace, say)
            finally:
                processes.stop()


def _delete_namespace(kube: Kube, namespace: str, say: Say) -> None:
    """While the worker and bridge still run, so the Challenges' clean-up can finish."""
    started = time.monotonic()
    gone = delete_namespace(kube, namespace, timeout_s=GONE_TIMEOUT_S)
    state = "deleted" if gone else "still terminating"
    say(f"namespace {namespace} {state} after {time.monotonic() - started:.0f}s")


def run_faults(
    stack: StackInfo, run_dir: Path, *, certificates: int, timeout_s: float, say: Say = print
) -> FaultRun:
    """The whole scenario; the returned run says what happened and what was found."""
    run_id = uuid.uuid4().hex[:6]
    planned = planned_certificates(run_id, certificates)
    with _scene(stack, run_dir, run_id, say) as scene:
        run = FaultRun(certificates=certificates, namespace=scene.namespace)
        _wait_issuer_ready(scene)
        say(f"Issuer Ready; creating {certificates} Certificates in {scene.namespace}")
        run.started_at = time.time()
        created = create_all(scene.kube, [p.resource(scene.namespace) for p in planned])
        refused = [c for c in created.values() if c.error]
        if refused:
            raise RuntimeError(f"{len(refused)} Certificates refused: {refused[0].error}")
        _follow(scene, run, deadline=time.monotonic() + timeout_s, say=say)
        _settle(scene, say)
        run.findings = inspect_run(
            kube=scene.kube,
            stack=stack,
            namespace=scene.namespace,
            planned=planned,
            created_orders=orders_created(scene.proxy),
            temporal_address=scene.processes.temporal_address,
        )
    return run


def _wait_issuer_ready(scene: _Scene) -> None:
    deadline = time.monotonic() + ISSUER_TIMEOUT_S
    while time.monotonic() < deadline:
        scene.processes.check_alive()
        with contextlib.suppress(Exception):
            issuer = scene.kube.custom.get_namespaced_custom_object(
                crds.GROUP, crds.VERSION, scene.namespace, crds.Issuer.PLURAL, ISSUER
            )
            if is_ready(issuer):
                return
        time.sleep(0.5)
    raise RuntimeError(f"Issuer not Ready after {ISSUER_TIMEOUT_S:.0f}s\n{scene.processes.logs()}")


def _progress(scene: _Scene, run: FaultRun) -> Progress:
    """Counts now; notes when each Certificate was first seen Ready."""
    now, failed = time.time(), 0
    for certificate in list_objects(scene.kube, crds.Certificate, scene.namespace):
        if is_ready(certificate):
            run.ready_at.setdefault(certificate["metadata"]["name"], now)
        elif has_failed(certificate):
            failed += 1
    return Progress(
        new_orders=len(orders_created(scene.proxy)),
        challenge_requests=len(scene.proxy.posts_to(CHALLENGE_PATH)),
        finalize_requests=len(scene.proxy.posts_to(FINALIZE_PATH)),
        ready=len(run.ready_at),
        failed=failed,
    )


def _follow(scene: _Scene, run: FaultRun, *, deadline: float, say: Say) -> None:
    """Kill on schedule until every Certificate is Ready or failed (or the hang guard ends it).

    A failed Certificate backs off for an hour before it tries again: waiting for it
    would only end at the hang guard, so it counts as done (and is reported).
    """
    pending = list(SCHEDULE)
    since = Progress()  # counts just after the last restart: the next kill needs more
    last_said = time.monotonic()
    while True:
        scene.processes.check_alive()
        progress = _progress(scene, run)
        run.missed_kills = [f"{k.target} at {k.trigger(run.certificates)}" for k in pending]
        if progress.ready + progress.failed >= run.certificates:
            say(f"{time.time() - run.started_at:7.1f}s  done: {progress.shown()}")
            return
        if time.monotonic() > deadline:
            run.timed_out = True
            say(f"gave up waiting: {progress.shown()}\n{scene.processes.logs()}")
            return
        if pending and pending[0].due(progress, run.certificates) and progress.beyond(since):
            run.kills.append(_kill(scene, run, pending.pop(0), progress))
            say(run.kills[-1].shown())
            since = _progress(scene, run)
            continue
        if time.monotonic() - last_said >= PROGRESS_EVERY_S:
            last_said = time.monotonic()
            say(f"{time.time() - run.started_at:7.1f}s  {progress.shown()}")
        time.sleep(POLL_S)


def _kill(scene: _Scene, run: FaultRun, kill: Kill, progress: Progress) -> KillRecord:
    process = scene.processes.by_name(kill.target)
    killed_pid, at = process.pid, time.time()
    scene.processes.restart(kill.target)
    return KillRecord(
        target=kill.target,
        trigger=kill.trigger(run.certificates),
        at_s=at - run.started_at,
        progress=progress,
        killed_pid=killed_pid,
        started_pid=process.pid,
        restart_s=time.time() - at,
    )


def _settle(scene: _Scene, say: Say) -> None:
    """Wait until no Order workflow runs (clean-up after valid may still be going on)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while (running := running_orders(scene.processes.temporal_address, scene.namespace)) and (
        time.monotonic() < deadline
    ):
        time.sleep(1.0)
    if running:
        say(f"{running} Order workflows still running after {SETTLE_TIMEOUT_S:.0f}s")
