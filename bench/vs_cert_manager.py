"""cert-manager against acmeflow: N DNS-01 Certificates at once, three systems, one stack.

One servers-only stack (its own state directory, ``acmeflow dev up`` servers): one Pebble,
one BIND9, one Temporal, one kube-apiserver. On it run acmeflow's worker and bridge (the
bridge with ``--external-issuer true``) and one ``cert-manager-controllers`` process with
cert-manager's Certificate lifecycle, approver and its own ACME issuer (issuers, orders,
challenges, the ACME CertificateRequest signer), all six cert-manager CRDs installed
(bench/harness/comparison_processes.py). Three systems take turns at every size, each run
in a fresh namespace of its own:

- ``cm_acme``: cert-manager's Certificates signed by cert-manager's own ACME Issuer;
- ``cm_external``: cert-manager's Certificates whose issuerRef is ``{group: acmeflow.io,
  kind: Issuer}``: cert-manager makes the CertificateRequest, acmeflow signs it through
  an Order workflow;
- ``acmeflow``: acmeflow's own Certificates.

Every Issuer is the same ``spec.acme`` (acmeflow's Issuer speaks cert-manager's dialect):
the stack's Pebble, DNS-01 by RFC 2136 to the stack's BIND9 with its TSIG key. Each
Certificate asks for one name, ``<system>-<run>-<i>.example.com`` (one DNS-01 challenge,
the case of the issue's 61 s), with an ECDSA P-256 key. Before a run is measured its
Issuer is Ready and one warm-up Certificate is issued, so account registration and
first-use costs stay out; then N Certificates are created at once and a watch notes when
each first shows ``Ready=True`` (bench/harness/kube_run.py, as bench/k8s_certificates.py).

Printed per system and size: time to Ready (create acknowledged -> watch saw Ready) p50,
p95, max; CPU seconds of each process group during the run (the system's own: the
cert-manager process, acmeflow's worker + bridge; Temporal and Kubernetes apart) and peak
RSS (VmHWM, reset before the creates); the ratios to cert-manager's own issuer; and where
the time goes: every Certificate's Events traced through its CertificateRequest, Order and
Challenge, in order (bench/harness/event_timeline.py), plus acmeflow's Order workflow
histories. The last line is one JSON object: ``<system>_<figure>`` keys for every size in
``sizes``, the largest size's also at the top level.

    .venv/bin/python bench/vs_cert_manager.py [--sizes 1 50 500] [--cm-workers 60]
                                              [--state-dir DIR] [--timeout-s 1800]

``--state-dir`` names a stack of ``acmeflow dev up --servers-only`` given to this benchmark
alone (it installs all six cert-manager CRDs, after which ``kubectl get order`` means
cert-manager's Order); without it an embedded stack is started and stopped.
"""

from __future__ import annotations

import sys
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from harness import figures, kube_run
from harness.acmeflow_api import (
    CertManagerIssuerRef,
    StackInfo,
    crds,
    workflow_id,
)
from harness.cert_manager_kinds import (
    CertManagerCertificate,
    CertManagerCertificateSpec,
    CertManagerIssuer,
)
from harness.comparison_processes import PROCESS_GROUPS, CertManagerTuning, comparison_processes
from harness.event_timeline import (
    READY_SEEN,
    EventWatch,
    Milestones,
    certificate_of,
    offsets,
    presented_to_verified_p50,
    print_timeline,
    timeline,
)
from harness.fault_plan import fault_issuer, tsig_secret
from harness.figures import NAN, p50, p95, spans
from harness.histories import OrderTimes, order_times
from harness.kube import ISSUER, Kube, Watched, create_object, group_version, metadata, read_object
from harness.stack import (
    acmeflow_stack,
    argument_parser,
    print_json_line,
    stack_pids,
    stop_on_sigterm,
)
from k8s_certificates import (
    FAILED,
    READY,
    Certificates,
    certificate,
    certificate_intervals,
    certificate_state,
    print_breakdowns,
    settle,
    wait_ready,
)
from temporalio.client import Client

T = TypeVar("T")
CM_GROUP = "cert-manager.io"
MILESTONE_GRACE_S = 2.0
"""Events first seen this long after the last Ready still count (two watches, two streams)."""


# -- the systems -----------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    key: str
    """Prefix of its figures in the JSON line."""
    title: str
    prefix: str
    """Of its Certificates' names and DNS names."""
    own_groups: tuple[str, ...]
    """Process groups (comparison_processes.PROCESS_GROUPS) whose CPU and memory are its own."""


CM_ACME = System("cm_acme", "cert-manager's own ACME issuer", "cm", ("cert-manager",))
CM_EXTERNAL = System(
    "cm_external",
    "cert-manager Certificates, acmeflow as external issuer",
    "ext",
    ("cert-manager", "acmeflow"),
)
ACMEFLOW = System("acmeflow", "acmeflow's own Certificates", "af", ("acmeflow",))
SYSTEMS = (CM_ACME, CM_EXTERNAL, ACMEFLOW)


def dns01_solver(stack: StackInfo) -> crds.AcmeSolver:
    """The fault benchmark's DNS-01 solver (the stack's BIND9, its TSIG key), for every name."""
    acme = fault_issuer(stack, "", server=stack.acme_directory_url).spec.acme
    dns01 = next(s for s in acme.solvers if s.dns01 is not None)
    return dns01.model_copy(update={"selector": None})


def dns01_acme(stack: StackInfo, account: str) -> crds.AcmeIssuerSpec:
    """The one ``spec.acme`` every system's Issuer gets: Pebble, DNS-01 by RFC 2136 only."""
    acme = fault_issuer(stack, "", server=stack.acme_directory_url).spec.acme
    return acme.model_copy(
        update={
            "private_key_secret_ref": crds.AccountKeySecretRef(name=account),
            "solvers": [dns01_solver(stack)],
        }
    )


def use_dns01(kube: Kube, stack: StackInfo, namespace: str) -> None:
    """The namespace's acmeflow Issuer (HTTP-01 as kube_run makes it) switched to DNS-01.

    Only the solvers change; the Issuer keeps its account.
    """
    kube.custom.patch_namespaced_custom_object(
        *group_version(crds.Issuer),
        namespace,
        crds.Issuer.PLURAL,
        ISSUER,
        {"spec": {"acme": {"solvers": [dns01_solver(stack).to_api()]}}},
    )


def cm_certificate(namespace: str, name: str, *, issuer_group: str) -> CertManagerCertificate:
    spec = CertManagerCertificateSpec(
        secret_name=f"{name}-tls",
        dns_names=[f"{name}.example.com"],
        issuer_ref=CertManagerIssuerRef(name=ISSUER, kind="Issuer", group=issuer_group),
        private_key=crds.PrivateKeySpec(algorithm="ECDSA"),
    )
    return CertManagerCertificate(metadata=metadata(namespace, name), spec=spec)


def warm_up(kube: Kube, obj: crds.KubeResource) -> float:
    """Create one Certificate and wait until it is Ready; seconds it took."""
    create_object(kube, obj)
    name = obj.metadata.name
    return wait_ready(
        lambda: read_object(kube, type(obj), obj.metadata.namespace or "", name),
        f"warm-up Certificate {name}",
    )


class Traced:
    """A scenario whose namespace's Events are watched from just before the creates."""

    events: EventWatch | None = None

    def watch_events(self, kube: Kube, namespace: str) -> None:
        self.events = EventWatch(kube, namespace)
        self.events.start()

    def milestones(self, names: Iterable[str], *, until: float) -> dict[str, Milestones]:
        """Every Certificate's milestones first seen by ``until``."""
        return {} if self.events is None else self.events.milestones(names, until=until)

    def stop_events(self) -> str:
        """Stop the watch; how often it broke, if it did (those first sights are not exact)."""
        if self.events is None:
            return ""
        self.events.stop()
        broke, relisted = len(self.events.errors), self.events.relisted
        return f"Event watch broke {broke}x, {relisted} first sights by listing" if broke else ""


# -- cert-manager's Certificates (cm_acme, cm_external) --------------------------------


class CertManagerCertificates(Traced, kube_run.KubeScenario[T]):
    """cert-manager Certificates of one issuer group; the subclass says what it reads after."""

    watched = Watched(CertManagerCertificate, certificate_state, frozenset({READY, FAILED}), READY)
    noun = "Certificates"
    progress_every_s = 10.0
    gone_timeout_s = 600.0
    issuer_group: str
    system: System

    def __init__(self, stack: StackInfo) -> None:
        self.stack = stack
        self.kube: Kube | None = None
        self.names: frozenset[str] = frozenset()

    @abstractmethod
    def prepare_issuer(self, kube: Kube, namespace: str) -> float:
        """Seconds until the Issuer the Certificates name is Ready."""

    def prepare(self, kube: Kube, namespace: str, run_id: str) -> None:
        self.kube = kube
        kube.core.create_namespaced_secret(namespace, tsig_secret(self.stack, namespace))
        issuer_s = self.prepare_issuer(kube, namespace)
        warm = cm_certificate(namespace, f"warmup-{run_id}", issuer_group=self.issuer_group)
        warm_s = warm_up(kube, warm)
        print(f"  Issuer Ready after {issuer_s:.1f}s, warm-up Certificate after {warm_s:.1f}s")
        self.watch_events(kube, namespace)

    def objects(self, namespace: str, run_id: str, count: int) -> list[crds.KubeResource]:
        prefix, group = self.system.prefix, self.issuer_group
        made: list[crds.KubeResource] = [
            cm_certificate(namespace, f"{prefix}-{run_id}-{i}", issuer_group=group)
            for i in range(count)
        ]
        self.names = frozenset(c.metadata.name for c in made)
        return made


class CertManagerAcme(CertManagerCertificates[Milestones]):
    """Signed by cert-manager's own ACME Issuer: cert-manager's orders and challenges."""

    described = "cert-manager Certificates -> cert-manager ACME Issuer (DNS-01, ECDSA P-256)"
    issuer_group = CM_GROUP
    system = CM_ACME

    def prepare_issuer(self, kube: Kube, namespace: str) -> float:
        spec = crds.IssuerSpec(acme=dns01_acme(self.stack, "cm-account"))
        create_object(kube, CertManagerIssuer(metadata=metadata(namespace, ISSUER), spec=spec))
        return wait_ready(
            lambda: read_object(kube, CertManagerIssuer, namespace, ISSUER),
            f"cert-manager Issuer {ISSUER}",
        )

    async def workflow_times(self, temporal: Client, namespace: str, name: str) -> Milestones:
        """cert-manager keeps no history but its Events: the Certificate's milestones."""
        if self.events is None:
            raise KeyError(name)
        return self.events.milestones([name]).get(name, {})


class ExternalIssuerCertificates(CertManagerCertificates[OrderTimes]):
    """Signed by acmeflow: the bridge turns each CertificateRequest into an Order workflow."""

    described = "cert-manager Certificates -> acmeflow Issuer (DNS-01, ECDSA P-256)"
    issuer_group = crds.GROUP
    system = CM_EXTERNAL

    def __init__(self, stack: StackInfo) -> None:
        super().__init__(stack)
        self._orders: dict[str, str] | None = None

    def prepare_issuer(self, kube: Kube, namespace: str) -> float:
        use_dns01(kube, self.stack, namespace)
        return wait_ready(
            lambda: read_object(kube, crds.Issuer, namespace, ISSUER), f"Issuer {ISSUER}"
        )

    def order_of(self, namespace: str, name: str) -> str:
        """The acmeflow Order made for the Certificate's CertificateRequest (listed once)."""
        if self._orders is None:
            assert self.kube is not None, "prepare() runs first"
            listing = self.kube.custom.list_namespaced_custom_object(
                *group_version(crds.Order), namespace, crds.Order.PLURAL
            )
            self._orders = {}
            for item in listing.get("items", []):
                order = str(item["metadata"]["name"])
                owner = certificate_of(order, self.names)
                if owner is not None:
                    self._orders[owner] = order
        return self._orders[name]

    async def workflow_times(self, temporal: Client, namespace: str, name: str) -> OrderTimes:
        order = self.order_of(namespace, name)
        handle = temporal.get_workflow_handle(workflow_id(crds.Order.KIND, namespace, order))
        return order_times(await handle.fetch_history())


# -- acmeflow's own Certificates -------------------------------------------------------


class AcmeflowCertificates(Traced, Certificates):
    """bench/k8s_certificates.py's scenario on a DNS-01 Issuer, with the Events watched."""

    described = "acmeflow Certificates -> acmeflow Issuer (DNS-01, ECDSA P-256)"

    def __init__(self, stack: StackInfo) -> None:
        self.stack = stack

    def prepare(self, kube: Kube, namespace: str, run_id: str) -> None:
        kube.core.create_namespaced_secret(namespace, tsig_secret(self.stack, namespace))
        use_dns01(kube, self.stack, namespace)
        super().prepare(kube, namespace, run_id)
        self.watch_events(kube, namespace)

    def objects(self, namespace: str, run_id: str, count: int) -> list[crds.KubeResource]:
        return [certificate(namespace, f"{ACMEFLOW.prefix}-{run_id}-{i}") for i in range(count)]


# -- one run of one system -------------------------------------------------------------


@dataclass
class SystemRun(Generic[T]):
    system: System
    run: kube_run.KubeRun[T]
    milestones: dict[str, Milestones]
    event_watch_broke: str = ""

    def time_to_ready(self) -> list[float]:
        run = self.run
        return spans(
            run.succeeded(), lambda n: run.seen[n].succeeded_at - run.created[n].created_at
        )

    def group_sum(self, per_process: dict[str, float], groups: Sequence[str]) -> float:
        return sum(per_process.get(p, 0.0) for g in groups for p in PROCESS_GROUPS[g])

    def timeline_offsets(self) -> dict[str, list[float]]:
        run = self.run
        ready = run.succeeded()
        since = {n: run.created[n].created_at for n in ready}
        by_label = offsets(self.milestones, since)
        by_label[READY_SEEN] = self.time_to_ready()
        return by_label


def run_system(
    stack: StackInfo,
    scenario: kube_run.KubeScenario[T],
    system: System,
    *,
    count: int,
    timeout_s: float,
) -> SystemRun[T]:
    """One measured run; milestones count up to the last Ready (not the namespace's deletion)."""
    assert isinstance(scenario, Traced)
    print(f"\n=== {system.title} ({system.key}), {count} Certificates", flush=True)
    try:
        run = kube_run.run_benchmark(stack, scenario, count=count, timeout_s=timeout_s)
        milestones = scenario.milestones(run.created, until=run.ended_at + MILESTONE_GRACE_S)
    finally:
        broke = scenario.stop_events()
    return SystemRun(system, run, milestones, broke)


# -- reporting -------------------------------------------------------------------------


def figures_of(result: SystemRun[Any]) -> dict[str, Any]:
    """One system's figures at one size, keys without the system's prefix."""
    run, own = result.run, result.system.own_groups
    to_ready = result.time_to_ready()
    return {
        "certificates": run.count,
        "ready": len(run.succeeded()),
        "failed": len(run.in_state(FAILED)),
        "timed_out": run.timed_out,
        "p50_s": round(p50(to_ready), 3),
        "p95_s": round(p95(to_ready), 3),
        "max_s": round(max(to_ready, default=NAN), 3),
        "wall_s": round(run.wall_s, 2),
        "cpu_s": round(result.group_sum(run.cpu_s, own), 2),
        "temporal_cpu_s": round(result.group_sum(run.cpu_s, ("temporal",)), 2),
        "kubernetes_cpu_s": round(result.group_sum(run.cpu_s, ("kubernetes",)), 2),
        "peak_rss_mb": round(result.group_sum(run.peak_rss_mb, own), 1),
        "presented_to_verified_p50_s": presented_to_verified_p50(result.milestones),
        "cpu_s_by_group": {g: round(result.group_sum(run.cpu_s, (g,)), 2) for g in PROCESS_GROUPS},
        "peak_rss_mb_by_group": {
            g: round(result.group_sum(run.peak_rss_mb, (g,)), 1) for g in PROCESS_GROUPS
        },
        "timeline_p50_s": {
            label: round(median, 3) for label, median, _, _ in timeline(result.timeline_offsets())
        },
        "machine_busy": round(run.machine_busy, 3),
        "other_cpu_s": round(run.other_cpu_s, 1),
    }


def print_acmeflow_detail(result: SystemRun[Any]) -> None:
    """acmeflow's side from the workflow histories: the Order's steps, millisecond clocks."""
    run = result.run
    if result.system is ACMEFLOW:
        figures.print_intervals(
            "  acmeflow per Certificate (Temporal history, ms clocks):",
            certificate_intervals(run),
            78,
        )
        print_breakdowns(run)
        return
    orders: dict[str, OrderTimes] = run.workflows
    figures.print_intervals(
        "  acmeflow's OrderWorkflow per CertificateRequest (Temporal history, ms clocks):",
        {
            "OrderWorkflow started -> decided valid": spans(
                run.succeeded(), lambda n: orders[n].decided - orders[n].started
            ),
            "create acknowledged -> OrderWorkflow started": spans(
                run.succeeded(), lambda n: orders[n].started - run.created[n].created_at
            ),
            "OrderWorkflow decided valid -> watch saw Certificate Ready": spans(
                run.succeeded(), lambda n: run.seen[n].succeeded_at - orders[n].decided
            ),
        },
        64,
    )
    breakdowns = [orders[n].breakdown for n in run.succeeded() if n in orders]
    if breakdowns:
        figures.print_breakdown(
            "  inside the OrderWorkflow, mean ms per Certificate:",
            figures.mean_breakdown(breakdowns),
        )


def report_system(result: SystemRun[Any]) -> dict[str, Any]:
    run, system = result.run, result.system
    found = figures_of(result)
    print(
        f"\n--- {system.title}: {found['ready']} of {run.count} Ready, time to Ready p50 "
        f"{found['p50_s']:.2f}s p95 {found['p95_s']:.2f}s max {found['max_s']:.2f}s, wall "
        f"{found['wall_s']:.1f}s" + (" (timed out)" if run.timed_out else "")
    )
    kube_run.print_failures(run, READY)
    if result.event_watch_broke:
        print(f"  {result.event_watch_broke}")
    print_timeline(
        "  where the time goes: first sight of each Event per Certificate (this process's clock)",
        result.timeline_offsets(),
    )
    if system is not CM_ACME:
        print_acmeflow_detail(result)
    own = "+".join(system.own_groups)
    kube_run.print_cpu(run, noun="Certificate", stack_s=run.stack_cpu_s())
    print(
        f"  the system's own processes ({own}): {found['cpu_s']:.1f} CPU s = "
        f"{1000 * found['cpu_s'] / max(1, run.count):.0f} ms per Certificate"
    )
    print("  peak RSS MB (VmHWM during the run) by process group:")
    for group, peak in found["peak_rss_mb_by_group"].items():
        print(f"  {peak:9.1f}  {group}" + ("  (own)" if group in system.own_groups else ""))
    return found


COMPARED = (
    ("Ready", "ready", "d"),
    ("time to Ready p50 s", "p50_s", ".2f"),
    ("time to Ready p95 s", "p95_s", ".2f"),
    ("time to Ready max s", "max_s", ".2f"),
    ("Challenge Presented -> DomainVerified p50 s", "presented_to_verified_p50_s", ".2f"),
    ("wall s (first create -> last Ready)", "wall_s", ".1f"),
    ("own processes' CPU s", "cpu_s", ".1f"),
    ("Temporal CPU s", "temporal_cpu_s", ".1f"),
    ("kube-apiserver+etcd CPU s", "kubernetes_cpu_s", ".1f"),
    ("own processes' peak RSS MB", "peak_rss_mb", ".0f"),
)
"""(label, figure, format) of the side-by-side table."""
RATIOS = (("p50_s", "time to Ready p50"), ("p95_s", "time to Ready p95"), ("cpu_s", "own CPU"))


def ratio(value: float, base: float) -> float:
    return round(value / base, 4) if base > 0 else NAN


def compare(size: int, found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The systems side by side at one size, and the flat figures of the JSON line."""
    ran = [s for s in SYSTEMS if s.key in found]
    print(f"\n=== {size} Certificates at once, side by side")
    print(f"  {'':<46}" + "".join(f"{s.key:>14}" for s in ran))
    for label, key, shown in COMPARED:
        print(f"  {label:<46}" + "".join(f"{found[s.key][key]:>14{shown}}" for s in ran))
    flat: dict[str, Any] = {"certificates": size}
    for system in ran:
        flat.update({f"{system.key}_{k}": v for k, v in found[system.key].items()})
    base = found.get(CM_ACME.key)
    if base is None:
        return flat
    for system in (s for s in ran if s is not CM_ACME):
        for key, label in RATIOS:
            value = ratio(found[system.key][key], base[key])
            flat[f"{system.key}_{key.removesuffix('_s')}_vs_cm_acme"] = value
            print(
                f"  {system.key} {label} = {value:.4f} x cm_acme's "
                f"(cm_acme / {system.key} = {1 / value if value else NAN:.1f})"
            )
    return flat


def measure_size(
    stack: StackInfo, systems: Sequence[System], *, count: int, timeout_s: float
) -> dict[str, Any]:
    """The systems in turn at one size, each after the stack settled."""
    scenarios: dict[str, Callable[[StackInfo], kube_run.KubeScenario[Any]]] = {
        CM_ACME.key: CertManagerAcme,
        CM_EXTERNAL.key: ExternalIssuerCertificates,
        ACMEFLOW.key: AcmeflowCertificates,
    }
    found: dict[str, dict[str, Any]] = {}
    for system in systems:
        settle(stack_pids(stack))
        scenario = scenarios[system.key](stack)
        result = run_system(stack, scenario, system, count=count, timeout_s=timeout_s)
        found[system.key] = report_system(result)
    return compare(count, found)


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1, 50, 500], help="Certificates at once"
    )
    parser.add_argument(
        "--cm-workers",
        type=int,
        default=CertManagerTuning.workers,
        help="cert-manager workers per controller (its default: 5)",
    )
    parser.add_argument(
        "--cm-max-concurrent-challenges",
        type=int,
        default=CertManagerTuning.max_concurrent_challenges,
        help="cert-manager's challenge scheduler limit (its default: 60)",
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=[s.key for s in SYSTEMS],
        default=[s.key for s in SYSTEMS],
        help="which systems run, in this order (the ratios need cm_acme)",
    )
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per system and size")
    args = parser.parse_args()
    stop_on_sigterm()
    tuning = CertManagerTuning(
        workers=args.cm_workers, max_concurrent_challenges=args.cm_max_concurrent_challenges
    )
    sizes: list[dict[str, Any]] = []
    with (
        acmeflow_stack(args.state_dir, with_acmeflow=False) as stack,
        comparison_processes(stack, tuning) as cert_manager,
    ):
        print(
            f"cert-manager {','.join(cert_manager.controllers)} with --workers "
            f"{tuning.workers}; log {cert_manager.log_path}",
            flush=True,
        )
        for count in args.sizes:
            systems = [s for key in args.systems for s in SYSTEMS if s.key == key]
            sizes.append(measure_size(stack, systems, count=count, timeout_s=args.timeout_s))
            print_json_line(sizes[-1])
    setup = {
        "cm_workers": tuning.workers,
        "cm_max_concurrent_challenges": tuning.max_concurrent_challenges,
        "cm_kube_api_qps": tuning.kube_api_qps,
        "names": "one dnsName per Certificate, DNS-01 RFC 2136, ECDSA P-256",
    }
    print_json_line({**setup, **sizes[-1], "sizes": sizes})
    return 0


if __name__ == "__main__":
    sys.exit(main())
