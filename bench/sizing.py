"""What one Certificate costs here, per issuance, per quiet round and per renewal, and what
10,000 and 100,000 Certificates need from it (``docs/sizing.md`` quotes the output).

One embedded stack runs acmeflow's worker and bridge as ``acmeflow dev up`` runs them;
the Certificates are bench/k8s_certificates.py's (HTTP-01 on the stack's Pebble, one name,
ECDSA P-256), in a namespace whose Issuer is Ready and whose warm-up Certificate is issued
before anything is measured. Three phases on the same N Certificates, one after another,
each until every Certificate shows the result and the stack is idle again (so the work
that follows a Ready status, such as the Challenge clean-up, counts in its phase):

1. **issuance**: N created at once, until every one is Ready;
2. **quiet rounds**: what a Certificate with nothing due costs each time it wakes. In
   production it wakes when the CA's ARI Retry-After passes (6 hours at Pebble and Let's
   Encrypt) and asks ARI again; here ``--rounds`` times the bench wakes every workflow
   with the ``secret_changed`` signal the bridge sends, which runs the same round (look
   at the Secret, ask ARI, sleep again; one signal instead of one timer);
3. **renewal**: ``acmeflow renew --all`` on the namespace, until every Certificate is
   Ready at revision 2.

Per Certificate (per round in phase 2): CPU seconds of every stack process, Temporal
actions and history bytes written (``harness/history_footprint.py``), kube-apiserver
requests; the bridge's and the worker's RSS after each phase. The end derives 10,000 and
100,000 Certificates from those figures (``--lifetime-days``, ``--ari-hours``) and the
last line is one JSON object.

    .venv/bin/python bench/sizing.py [--certificates 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.acmeflow_api import StackInfo, crds, workflow_id
from harness.history_footprint import Footprint, Window, footprints
from harness.kube import Kube, create_all, group_version, kube_clients, run_namespace
from harness.processes import cpu_sample, record_cpu, rss_mb
from harness.server_counters import scrape_counters
from harness.stack import (
    acmeflow_stack,
    argument_parser,
    print_json_line,
    stack_pids,
    stop_on_sigterm,
)
from k8s_certificates import Certificates, certificate_state, settle
from temporalio.client import Client

WORKFLOW_TYPES = ("CertificateWorkflow", "OrderWorkflow")
MAIN_PROCESSES = ("acmeflow-worker", "acmeflow-bridge", "temporal")
SCALES = (10_000, 100_000)
MB = 1024 * 1024


@dataclass
class Phase:
    """One phase's measures (``record_cpu`` fills the CPU fields)."""

    name: str
    start: float = math.nan
    end: float = math.nan
    per: int = 1
    """What the figures are divided by: Certificates, or rounds in the quiet phase."""
    cpu_s: dict[str, float] = field(default_factory=dict)
    other_cpu_s: float = math.nan
    machine_busy: float = math.nan
    api_requests: float = 0.0
    rss_after_mb: dict[str, float] = field(default_factory=dict)
    footprint: Footprint = field(default_factory=Footprint)

    @property
    def wall_s(self) -> float:
        return self.end - self.start

    def cpu_ms_per(self, names: tuple[str, ...] = MAIN_PROCESSES) -> float:
        return 1000 * sum(self.cpu_s.get(n, 0.0) for n in names) / max(1, self.per)

    def stack_cpu_ms_per(self) -> float:
        return 1000 * sum(self.cpu_s.values()) / max(1, self.per)

    def actions_per(self) -> float:
        return self.footprint.total_actions() / max(1, self.per)

    def history_kb_per(self) -> float:
        return self.footprint.total_bytes() / 1024 / max(1, self.per)


class Measured:
    """CPU and server counters around one phase of the same namespace."""

    def __init__(self, stack: StackInfo, kube: Kube, phase: Phase) -> None:
        self._stack, self._kube, self._phase = stack, kube, phase
        self._pids = stack_pids(stack)

    def __enter__(self) -> Phase:
        self._counters = scrape_counters(self._stack, self._kube)
        self._before = cpu_sample(self._pids)
        self._phase.start = time.time()
        return self._phase

    def __exit__(self, *_: object) -> None:
        self._phase.end = time.time()
        record_cpu(self._phase, self._before, cpu_sample(self._pids))
        grown = self._counters.increase_to(scrape_counters(self._stack, self._kube))
        self._phase.api_requests = grown.api_requests()
        self._phase.rss_after_mb = rss_mb(self._pids, "VmRSS")


def revisions(kube: Kube, namespace: str, names: set[str]) -> dict[str, int]:
    """Each Ready Certificate's status.revision (0 while not Ready)."""
    listed = kube.custom.list_namespaced_custom_object(
        *group_version(crds.Certificate), namespace, crds.Certificate.PLURAL
    )
    found = {}
    for obj in listed["items"]:
        name = obj["metadata"]["name"]
        if name in names:
            ready = certificate_state(obj)[0] == "Ready"
            found[name] = int((obj.get("status") or {}).get("revision") or 0) if ready else 0
    return found


def wait_for_revision(
    kube: Kube, namespace: str, names: set[str], revision: int, timeout_s: float
) -> None:
    """Until every Certificate is Ready at ``revision`` (its certificate in the Secret)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = sum(1 for r in revisions(kube, namespace, names).values() if r >= revision)
        if done == len(names):
            return
        print(f"  {done}/{len(names)} Ready at revision {revision}", flush=True)
        time.sleep(2.0)
    raise SystemExit(f"not every Certificate Ready at revision {revision} after {timeout_s:.0f}s")


def renew_all(stack: StackInfo, namespace: str) -> None:
    """``acmeflow renew --all`` on the namespace, as an operator runs it."""
    acmeflow = Path(sys.executable).with_name("acmeflow")
    subprocess.run(
        [
            str(acmeflow), "renew", "--all", "-n", namespace,
            "--kubeconfig", str(stack.kubeconfig),
            "--temporal-address", stack.temporal_address,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


async def wake_all(stack: StackInfo, namespace: str, names: set[str]) -> None:
    """The bridge's ``secret_changed`` to every Certificate's workflow: one quiet round each."""
    temporal = await Client.connect(stack.temporal_address, namespace=stack.temporal_namespace)
    await asyncio.gather(
        *(
            temporal.get_workflow_handle(workflow_id(crds.Certificate.KIND, namespace, n)).signal(
                "secret_changed", f"{n}-tls"
            )
            for n in names
        )
    )


def print_phase(phase: Phase, noun: str) -> None:
    print(
        f"{phase.name}: {phase.per} {noun} in {phase.wall_s:.1f}s "
        f"(machine {phase.machine_busy:.0%} busy)"
    )
    shown = sorted(phase.cpu_s.items(), key=lambda item: -item[1])
    print(
        f"  CPU ms per {noun}: "
        + ", ".join(f"{n} {1000 * s / max(1, phase.per):.0f}" for n, s in shown)
    )
    footprint = phase.footprint
    print(
        f"  Temporal per {noun}: {phase.actions_per():.1f} actions ("
        + ", ".join(f"{k} {v / max(1, phase.per):.1f}" for k, v in footprint.actions.most_common())
        + f"), {phase.history_kb_per():.1f} KiB of history in "
        + ", ".join(
            f"{footprint.events[t] / max(1, phase.per):.1f} events of {t} "
            f"({footprint.bytes[t] / 1024 / max(1, phase.per):.1f} KiB)"
            for t in sorted(footprint.events)
        )
    )
    print(
        f"  activities per {noun}: "
        + ", ".join(
            f"{name} {n / max(1, phase.per):.1f}" for name, n in footprint.activities.most_common()
        )
    )
    print(f"  kube-apiserver requests per {noun}: {phase.api_requests / max(1, phase.per):.1f}")
    print(
        "  RSS after (MB): "
        + ", ".join(f"{n} {phase.rss_after_mb.get(n, math.nan):.0f}" for n in MAIN_PROCESSES)
    )


@dataclass(frozen=True)
class Workload:
    """What a fleet of Certificates asks for in a day, in the steady state."""

    certificates: int
    lifetime_days: float
    ari_hours: float

    @property
    def renewals_per_day(self) -> float:
        return self.certificates / (self.lifetime_days * 2 / 3)

    @property
    def rounds_per_day(self) -> float:
        return self.certificates * 24 / self.ari_hours


def derive(
    phases: dict[str, Phase], workload: Workload, bridge_kb_per_certificate: float
) -> dict[str, float]:
    issuance, quiet, renewal = (phases[n] for n in ("issuance", "quiet", "renewal"))
    per_day_s = (
        workload.renewals_per_day * renewal.cpu_ms_per()
        + workload.rounds_per_day * quiet.cpu_ms_per()
    ) / 1000
    actions_per_day = (
        workload.renewals_per_day * renewal.actions_per()
        + workload.rounds_per_day * quiet.actions_per()
    )
    return {
        "certificates": workload.certificates,
        "renewals_per_day": workload.renewals_per_day,
        "ari_rounds_per_day": workload.rounds_per_day,
        "steady_cores": per_day_s / 86400,
        "actions_per_month": 30 * actions_per_day,
        "actions_per_s_mean": actions_per_day / 86400,
        "history_mb_per_day": (
            workload.renewals_per_day * renewal.footprint.total_bytes() / max(1, renewal.per)
            + workload.rounds_per_day * quiet.footprint.total_bytes() / max(1, quiet.per)
        )
        / MB,
        "burst_core_s": workload.certificates * issuance.cpu_ms_per() / 1000,
        "burst_actions": workload.certificates * issuance.actions_per(),
        "bridge_cache_mb": workload.certificates * bridge_kb_per_certificate / 1024,
    }


def print_derivation(d: dict[str, float]) -> None:
    print(
        f"{d['certificates']:,} Certificates: {d['renewals_per_day']:.0f} renewals and "
        f"{d['ari_rounds_per_day']:,.0f} ARI rounds a day -> {d['steady_cores']:.3f} cores "
        f"(worker + bridge + Temporal), {d['actions_per_month'] / 1e6:.2f} M actions a month "
        f"({d['actions_per_s_mean']:.2f}/s), {d['history_mb_per_day']:.0f} MB of history a "
        f"day; all issued at once: {d['burst_core_s'] / 3600:.2f} core-hours, "
        f"{d['burst_actions'] / 1e6:.2f} M actions; bridge cache ~{d['bridge_cache_mb']:.0f} MB"
    )


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--certificates", type=int, default=100, help="Certificates at once")
    parser.add_argument("--rounds", type=int, default=3, help="quiet rounds per Certificate")
    parser.add_argument("--lifetime-days", type=float, default=90.0, help="for the derivation")
    parser.add_argument("--ari-hours", type=float, default=6.0, help="ARI Retry-After, derivation")
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per phase")
    args = parser.parse_args()
    stop_on_sigterm()
    with acmeflow_stack(args.state_dir, with_acmeflow=True) as stack:
        kube = kube_clients(stack)
        run_id = uuid.uuid4().hex[:6]
        namespace = f"sizing-{run_id}"
        with run_namespace(kube, stack, namespace, gone_timeout_s=600.0):
            phases, bridge_kb = measure_phases(stack, kube, namespace, run_id, args)
    report(phases, bridge_kb, args)
    return 0


def measure_phases(
    stack: StackInfo, kube: Kube, namespace: str, run_id: str, args: argparse.Namespace
) -> tuple[dict[str, Phase], float]:
    """The three phases, each until its result shows and the stack is idle; then what each
    wrote to Temporal, and the bridge's RSS growth per Certificate it holds."""
    scenario = Certificates()
    scenario.prepare(kube, namespace, run_id)
    objects = scenario.objects(namespace, run_id, args.certificates)
    names = {o.metadata.name for o in objects}
    count = len(names)
    settle(stack_pids(stack))
    bridge_before = rss_mb(stack_pids(stack, ["acmeflow-bridge"]), "VmRSS")["acmeflow-bridge"]
    with Measured(stack, kube, Phase("issuance", per=count)) as issuance:
        refused = [n for n, c in create_all(kube, objects).items() if c.error]
        if refused:
            raise SystemExit(f"{len(refused)} Certificates refused, e.g. {refused[0]}")
        wait_for_revision(kube, namespace, names, 1, args.timeout_s)
        settle(stack_pids(stack))
    with Measured(stack, kube, Phase("quiet")) as quiet:
        for _ in range(args.rounds):
            asyncio.run(wake_all(stack, namespace, names))
            settle(stack_pids(stack))
    with Measured(stack, kube, Phase("renewal", per=count)) as renewal:
        renew_all(stack, namespace)
        wait_for_revision(kube, namespace, names, 2, args.timeout_s)
        settle(stack_pids(stack))
    phases = {p.name: p for p in (issuance, quiet, renewal)}
    windows = [Window(p.name, p.start, p.end) for p in phases.values()]
    found = asyncio.run(footprints(stack.temporal_address, stack.temporal_namespace, windows))
    for phase in phases.values():
        phase.footprint = found[phase.name]
    quiet.per = max(1, found["quiet"].runs_started["CertificateWorkflow"])
    bridge_kb = 1024 * (issuance.rss_after_mb["acmeflow-bridge"] - bridge_before) / count
    return phases, bridge_kb


def report(phases: dict[str, Phase], bridge_kb: float, args: argparse.Namespace) -> None:
    issuance = phases["issuance"]
    print()
    print_phase(issuance, "Certificate")
    print_phase(phases["quiet"], "ARI round")
    print_phase(phases["renewal"], "Certificate")
    print(f"bridge RSS growth per Certificate held: {bridge_kb:.1f} KB")
    derived = [
        derive(phases, Workload(n, args.lifetime_days, args.ari_hours), bridge_kb) for n in SCALES
    ]
    for one in derived:
        print_derivation(one)
    figures: dict[str, Any] = {"certificates": args.certificates, "rounds": args.rounds}
    for name, phase in phases.items():
        figures[name] = {
            "per": phase.per,
            "wall_s": round(phase.wall_s, 2),
            "cpu_ms_per": round(phase.cpu_ms_per(), 1),
            "stack_cpu_ms_per": round(phase.stack_cpu_ms_per(), 1),
            "cpu_ms_per_process": {
                n: round(1000 * s / max(1, phase.per), 1) for n, s in phase.cpu_s.items()
            },
            "actions_per": round(phase.actions_per(), 2),
            "history_kb_per": round(phase.history_kb_per(), 2),
            "apiserver_requests_per": round(phase.api_requests / max(1, phase.per), 2),
            "rss_after_mb": {
                n: round(v, 1) for n, v in phase.rss_after_mb.items() if n in MAIN_PROCESSES
            },
        }
    figures["bridge_kb_per_certificate"] = round(bridge_kb, 1)
    figures["derived"] = derived
    print_json_line(figures)


if __name__ == "__main__":
    sys.exit(main())
