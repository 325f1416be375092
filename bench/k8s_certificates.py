"""Kubernetes Certificate benchmark: N Certificates created at once, each watched until Ready.

On the embedded stack with ``acmeflow worker`` and ``acmeflow bridge`` running (as
``acmeflow dev up`` runs them), each size gets a fresh namespace with an Issuer on the
stack's Pebble (HTTP-01 through an Ingress to the stack's solver, as in
``bench/k8s_orders.py``). Once the Issuer is Ready and one warm-up Certificate has been
issued (neither is measured: account registration and first-use costs stay out), N
Certificates are created as fast as the kubernetes client allows, each for one name
``bench-<run>-<i>.example.com`` with ``privateKey.algorithm: ECDSA`` (P-256 keys take the
worker a millisecond; RSA 2048, the default, would add 50-200 ms of CPU per Certificate).
A watch on the namespace notes when each Certificate first shows ``Ready=True``.

Figures per size:

- time to Ready: from the API server acknowledging a Certificate's create to the watch
  event carrying ``Ready=True`` (both on this machine's clock), p50 and p95; wall time
  (first create to last Ready), throughput, Certificates that failed or never got Ready;
- where that time goes, from the workflow histories: bridge start lag (create -> the
  ``CertificateWorkflow`` started), the steps before the Order (Secret inspected, key
  Secret, Order resource), the child ``OrderWorkflow``, storing the TLS Secret, and the
  bridge lag (the workflow task that decided Ready -> watch saw it);
- CPU seconds of every stack process during the run (and CPU waits), other processes'
  share of the machine, stack CPU per Certificate; peak RSS (VmHWM, reset through
  ``/proc/<pid>/clear_refs`` before the Certificates are created) of every stack process,
  the bridge's and the worker's RSS every 10 s and once more after the run;
- kube-apiserver and Temporal counters per Certificate (bench/harness/server_counters.py).

Sizes run one after another on one stack, each in its own namespace, which is deleted
(and the stack left to settle) before the next. The end sets the sizes side by side with
a cost-growth line; the last line is one JSON object (the last size's figures and a
``sizes`` list). The run itself (namespace, creates, watch, CPU, memory, counters,
histories) is ``bench/harness/kube_run.py``'s; this script says what a Certificate run
creates, what Ready means and what it reports.

    .venv/bin/python bench/k8s_certificates.py [--certificates 50] [--also 500 ...]
                                               [--state-dir DIR] [--timeout-s 1800]
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import figures, kube_run
from harness.acmeflow_api import ActivityName, crds, workflow_id
from harness.figures import NAN, intervals, known, mean_of
from harness.histories import (
    ActivityRun,
    OrderTimes,
    Publish,
    event_s,
    history_breakdown,
    order_times,
    runs_of,
    walk,
)
from harness.kube import ISSUER, Kube, Watched, create_object, issuer_ref, metadata, read_object
from harness.processes import cpu_sample
from harness.server_counters import print_counters
from harness.stack import (
    acmeflow_stack,
    argument_parser,
    print_json_line,
    stack_pids,
    stop_on_sigterm,
)
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowHistory

READY_TIMEOUT_S = 180.0
"""How long the Issuer and the warm-up Certificate may take to become Ready."""
SETTLE_CORES = 0.3
"""Between sizes: wait until the stack uses less than this many cores (or SETTLE_S passed)."""
SETTLE_S = 180.0
READY, FAILED = "Ready", "Failed"


# -- the workflows' side ---------------------------------------------------------------


@dataclass(frozen=True)
class CertificatePublish(Publish):
    """One ``publish_certificate_progress`` and the Ready status it carried."""

    ready: str

    @classmethod
    def of(cls, run: ActivityRun) -> CertificatePublish:
        ready = str((run.json_input().get("status") or {}).get("ready", ""))
        return cls(run.scheduled, run.started, run.completed, ready)


@dataclass
class CertificateTimes:
    """Epoch seconds of the moments of one CertificateWorkflow (all its runs), and counts."""

    started: float
    runs: int = 0
    events: int = 0
    workflow_tasks: int = 0
    child_id: str = ""
    child_run_id: str = ""
    child_started: float = NAN
    child_completed: float = NAN
    store_completed: float = NAN
    decided: float = NAN
    """The workflow task that followed ``store_certificate``: it set Ready=True."""
    publishes: list[CertificatePublish] = field(default_factory=list)
    activities: Counter[str] = field(default_factory=Counter)
    breakdown: dict[str, float] = field(default_factory=dict)
    """The breakdown of the run that issued (the child shows as 'other')."""
    order: OrderTimes | None = None

    @property
    def final_publish(self) -> CertificatePublish | None:
        return next((p for p in self.publishes if p.ready == "True"), None)


def note_run(times: CertificateTimes, history: WorkflowHistory) -> None:
    """Add one run's events to ``times`` (event ids restart in every run)."""
    times.runs += 1
    times.events += len(history.events)
    for step in walk(history):
        now, kind, attributes = step.at, step.kind, step.attributes
        if kind == "activity_task_scheduled_event_attributes":
            times.activities[attributes.activity_type.name] += 1
        elif step.completed is not None:
            if step.completed.name == ActivityName.STORE_CERTIFICATE:
                times.store_completed = now
            elif step.completed.name == ActivityName.PUBLISH_CERTIFICATE_PROGRESS:
                times.publishes.append(CertificatePublish.of(step.completed))
        elif kind == "child_workflow_execution_started_event_attributes":
            times.child_id = attributes.workflow_execution.workflow_id
            times.child_run_id = attributes.workflow_execution.run_id
            times.child_started = now
            times.breakdown = history_breakdown(history)
        elif kind == "child_workflow_execution_completed_event_attributes":
            times.child_completed = now
        elif kind == "workflow_task_scheduled_event_attributes":
            times.workflow_tasks += 1
        elif kind == "workflow_task_completed_event_attributes" and math.isnan(times.decided):
            times.decided = NAN if math.isnan(times.store_completed) else now


# -- what a run creates and what Ready means -------------------------------------------


def certificate(namespace: str, name: str) -> crds.Certificate:
    """One name, ``<name>.example.com``, with an ECDSA P-256 key."""
    spec = crds.CertificateSpec(
        secret_name=f"{name}-tls",
        dns_names=[f"{name}.example.com"],
        issuer_ref=issuer_ref(),
        private_key=crds.PrivateKeySpec(algorithm="ECDSA"),
    )
    return crds.Certificate(metadata=metadata(namespace, name), spec=spec)


def certificate_state(obj: dict[str, Any]) -> tuple[str, str]:
    """(state, message): Ready, Failed, Issuing, or the Ready condition's reason."""
    conditions = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    ready, issuing = conditions.get("Ready", {}), conditions.get("Issuing", {})
    if ready.get("status") == "True":
        return READY, ""
    if issuing.get("reason") == FAILED or ready.get("reason") in (FAILED, "SecretConflict"):
        return FAILED, str(issuing.get("message") or ready.get("message") or "")
    if issuing.get("status") == "True":
        return "Issuing", ""
    return str(ready.get("reason") or "(no status)"), str(ready.get("message") or "")


def wait_ready(read: Callable[[], dict[str, Any]], what: str) -> float:
    """Poll until the object's Ready condition is True; seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        with contextlib.suppress(ApiException):
            if certificate_state(read())[0] == READY:
                return time.monotonic() - started
        time.sleep(0.5)
    raise SystemExit(f"{what} not Ready after {READY_TIMEOUT_S:.0f}s")


class Certificates(kube_run.KubeScenario[CertificateTimes]):
    watched = Watched(crds.Certificate, certificate_state, frozenset({READY, FAILED}), READY)
    noun = "Certificates"
    described = "Certificates (ECDSA P-256 keys)"
    progress_every_s = 10.0
    gone_timeout_s = 600.0

    def prepare(self, kube: Kube, namespace: str, run_id: str) -> None:
        """Issuer Ready and one Certificate issued, so the measured run pays no first-use cost."""
        issuer_s = wait_ready(
            lambda: read_object(kube, crds.Issuer, namespace, ISSUER), f"Issuer {ISSUER}"
        )
        name = f"warmup-{run_id}"
        create_object(kube, certificate(namespace, name))
        warm_s = wait_ready(
            lambda: read_object(kube, crds.Certificate, namespace, name),
            f"warm-up Certificate {name}",
        )
        print(f"  Issuer Ready after {issuer_s:.1f}s, warm-up Certificate after {warm_s:.1f}s")

    def objects(self, namespace: str, run_id: str, count: int) -> list[crds.KubeResource]:
        return [certificate(namespace, f"bench-{run_id}-{i}") for i in range(count)]

    async def workflow_times(self, temporal: Client, namespace: str, name: str) -> CertificateTimes:
        runs = await runs_of(temporal, workflow_id(crds.Certificate.KIND, namespace, name))
        times = CertificateTimes(started=event_s(runs[0].events[0]))
        for history in runs:
            note_run(times, history)
        if times.child_run_id:
            child = temporal.get_workflow_handle(times.child_id, run_id=times.child_run_id)
            times.order = order_times(await child.fetch_history())
        return times


Run = kube_run.KubeRun[CertificateTimes]


def settle(pids: dict[str, int]) -> None:
    """Wait until the stack is nearly idle (the deleted namespace's workflows are done)."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_S:
        before = cpu_sample(pids)
        time.sleep(5.0)
        after = cpu_sample(pids)
        used = sum(after.by_process[n] - before.by_process[n] for n in pids) / 5.0
        if used < SETTLE_CORES:
            break
    print(f"stack settled after {time.monotonic() - started:.0f}s", flush=True)


# -- reporting -------------------------------------------------------------------------


TO_READY = "time to Ready (create acknowledged -> watch saw Ready=True)"
START_LAG = "  bridge start lag (create acknowledged -> CertificateWorkflow started)"
BRIDGE_LAG = kube_run.bridge_lag_label(READY)


def order_of(flow: CertificateTimes) -> OrderTimes:
    if flow.order is None:
        raise KeyError("no child OrderWorkflow")
    return flow.order


def certificate_intervals(run: Run) -> dict[str, list[float]]:
    """Intervals in seconds, one per Ready Certificate, by what they measure."""
    flows = run.workflows
    per_certificate = {
        **kube_run.arrival_spans(run, to_success=TO_READY, start_lag=START_LAG),
        "  before the Order (started -> child started: Secret, key, Order resource)": (
            lambda n: flows[n].child_started - flows[n].started
        ),
        "  the Order (child OrderWorkflow started -> completed, parent's events)": (
            lambda n: flows[n].child_completed - flows[n].child_started
        ),
        "    OrderWorkflow started -> decided valid": (
            lambda n: order_of(flows[n]).decided - order_of(flows[n]).started
        ),
        "    decided valid -> parent saw it complete (Order's final publish, flush)": (
            lambda n: flows[n].child_completed - order_of(flows[n]).decided
        ),
        "  after the Order (child completed -> decided Ready: store_certificate)": (
            lambda n: flows[n].decided - flows[n].child_completed
        ),
        **kube_run.bridge_lag_spans(run, READY),
    }
    return {**intervals(run.succeeded(), per_certificate), **kube_run.round_trip_figures(run)}


def publish_intervals(run: Run) -> dict[str, list[float]]:
    """Every publish of both workflows: queueing on the bridge's task queue, duration."""
    certs = [p for f in run.workflows.values() for p in f.publishes]
    orders = [p for f in run.workflows.values() if f.order for p in f.order.publishes]
    return {
        "certificate publish: scheduled -> started": known(
            [p.started - p.scheduled for p in certs]
        ),
        "certificate publish: started -> completed": known(
            [p.completed - p.started for p in certs]
        ),
        "order publish: scheduled -> started": known([p.started - p.scheduled for p in orders]),
        "order publish: started -> completed": known([p.completed - p.started for p in orders]),
    }


def print_breakdowns(run: Run) -> None:
    flows = [run.workflows[n] for n in run.succeeded() if n in run.workflows]
    for title, breakdowns in (
        (
            "CertificateWorkflow's issuing run ('other' holds the child Order)",
            [f.breakdown for f in flows if f.breakdown],
        ),
        ("child OrderWorkflow", [f.order.breakdown for f in flows if f.order]),
    ):
        if breakdowns:
            figures.print_breakdown(
                f"inside the {title}, mean ms per Certificate "
                "(bench/harness/histories.py's breakdown):",
                figures.mean_breakdown(breakdowns),
            )


def print_history_counts(run: Run) -> None:
    flows = list(run.workflows.values())
    orders = [f.order for f in flows if f.order]
    activities: Counter[str] = Counter()
    for flow in flows:
        activities.update(flow.activities)
    shown = ", ".join(
        f"{n / max(1, len(flows)):.2f} {name}" for name, n in activities.most_common()
    )
    print(
        f"history per Certificate: CertificateWorkflow {mean_of([f.runs for f in flows]):.1f} "
        f"runs (continue-as-new), {mean_of([f.events for f in flows]):.1f} events, "
        f"{mean_of([f.workflow_tasks for f in flows]):.1f} workflow tasks; activities: {shown}"
    )
    print(
        f"  child OrderWorkflow: {mean_of([o.events for o in orders]):.1f} events, "
        f"{mean_of([o.workflow_tasks for o in orders]):.1f} workflow tasks, "
        f"{mean_of([len(o.publishes) for o in orders]):.1f} publish_order_progress "
        f"({mean_of([o.idle_publishes for o in orders]):.1f} carried nothing the bridge writes)"
    )


def print_memory(run: Run) -> None:
    since = "during the run" if run.rss_reset else "since start (reset not permitted)"
    print(f"RSS in MB: at the start, peak (VmHWM) {since}, after the run:")
    for name, peak in sorted(run.peak_rss_mb.items(), key=lambda item: -item[1]):
        print(
            f"  {run.start_rss_mb.get(name, NAN):7.1f} {peak:7.1f} "
            f"{run.after_rss_mb.get(name, NAN):7.1f}  {name}"
        )
    trail = ", ".join(f"{s:.0f}s/{r} Ready: {b:.0f}/{w:.0f}" for s, r, b, w in run.rss_samples)
    if trail:
        print(f"  bridge/worker RSS over the run: {trail}")


def summary(run: Run) -> dict[str, Any]:
    measured = certificate_intervals(run)
    to_ready = measured[TO_READY]
    ready = len(run.succeeded())

    return {
        "certificates": run.count,
        "ready": ready,
        "failed": len(run.in_state(FAILED)),
        "not_ready": run.count - ready,
        "timed_out": run.timed_out,
        **figures.p50_p95("time_to_ready", to_ready),
        "time_to_ready_max_s": round(max(to_ready, default=NAN), 3),
        **figures.p50_p95("bridge_start_lag", measured[START_LAG]),
        **figures.p50_p95("bridge_lag", measured[BRIDGE_LAG]),
        "wall_s": round(run.wall_s, 2),
        "certificates_per_s": round(ready / run.wall_s, 3) if run.wall_s > 0 else NAN,
        **kube_run.rss_figures(run.peak_rss_mb, "peak"),
        **kube_run.rss_figures(run.start_rss_mb, "start"),
        **kube_run.rss_figures(run.after_rss_mb, "after"),
        "peak_rss_reset": run.rss_reset,
        "stack_cpu_ms_per_certificate": round(1000 * run.stack_cpu_s() / max(1, run.count)),
        "apiserver_requests_per_certificate": round(
            run.counters.api_requests() / max(1, run.count), 1
        ),
        **kube_run.cpu_figures(run),
    }


def report(run: Run) -> dict[str, Any]:
    result = summary(run)
    print(
        f"{result['ready']} of {run.count} Certificates Ready in "
        f"{result['wall_s']:.1f}s (first create to last Ready) = "
        f"{result['certificates_per_s']:.2f}/s; {result['failed']} failed, "
        f"{result['not_ready']} not Ready" + (" (timed out)" if run.timed_out else "")
    )
    kube_run.print_failures(run, READY)
    figures.print_intervals(
        "per Certificate (epoch clocks of this machine):", certificate_intervals(run), 78
    )
    figures.print_intervals("per progress snapshot:", publish_intervals(run), 78)
    print_breakdowns(run)
    print_history_counts(run)
    print_counters(run.counters, per=run.count, noun="Certificate", wall_s=run.wall_s)
    kube_run.print_cpu(run, noun="Certificate", stack_s=run.stack_cpu_s())
    print_memory(run)
    return result


Row = tuple[str, Callable[[dict[str, Any]], str]]
SIDE_BY_SIDE: tuple[Row, ...] = (
    ("Ready / created", lambda f: f"{f['ready']}/{f['certificates']}"),
    ("failed", lambda f: f"{f['failed']}"),
    ("time to Ready p50 s", lambda f: f"{f['time_to_ready_p50_s']:.2f}"),
    ("time to Ready p95 s", lambda f: f"{f['time_to_ready_p95_s']:.2f}"),
    (
        "bridge start lag p50 / p95 s",
        lambda f: f"{f['bridge_start_lag_p50_s']:.2f} / {f['bridge_start_lag_p95_s']:.2f}",
    ),
    (
        "bridge lag p50 / p95 s",
        lambda f: f"{f['bridge_lag_p50_s']:.2f} / {f['bridge_lag_p95_s']:.2f}",
    ),
    ("wall s", lambda f: f"{f['wall_s']:.1f}"),
    ("Certificates per s", lambda f: f"{f['certificates_per_s']:.2f}"),
    ("stack CPU ms per Certificate", lambda f: f"{f['stack_cpu_ms_per_certificate']}"),
    ("apiserver requests per Certificate", lambda f: f"{f['apiserver_requests_per_certificate']}"),
    (
        "bridge RSS start / peak / after MB",
        lambda f: (
            f"{f['bridge_start_rss_mb']:.0f} / {f['bridge_peak_rss_mb']:.0f} / "
            f"{f['bridge_after_rss_mb']:.0f}"
        ),
    ),
    (
        "worker RSS start / peak / after MB",
        lambda f: (
            f"{f['worker_start_rss_mb']:.0f} / {f['worker_peak_rss_mb']:.0f} / "
            f"{f['worker_after_rss_mb']:.0f}"
        ),
    ),
    (
        "machine busy / other processes' CPU s",
        lambda f: f"{f['machine_busy']:.0%} / {f['other_cpu_s']:.0f}",
    ),
)


def growth(small: dict[str, Any], large: dict[str, Any]) -> str:
    """How the cost grew from the smallest size to the largest."""
    extra = max(1, large["certificates"] - small["certificates"])

    def per_extra(key: str) -> str:
        grown = large[f"{key}_peak_rss_mb"] - small[f"{key}_peak_rss_mb"]
        return f"{small[f'{key}_peak_rss_mb']:.0f} -> {large[f'{key}_peak_rss_mb']:.0f} MB " + (
            f"({1024 * grown / extra:+.0f} KB per extra Certificate)"
        )

    cpu_small, cpu_large = (s["stack_cpu_ms_per_certificate"] for s in (small, large))
    return (
        f"cost growth {small['certificates']} -> {large['certificates']} Certificates "
        f"(x{large['certificates'] / small['certificates']:.0f}): stack CPU per Certificate "
        f"{cpu_small} -> {cpu_large} ms (x{cpu_large / max(1, cpu_small):.2f}); time to Ready "
        f"p50 {small['time_to_ready_p50_s']:.1f} -> {large['time_to_ready_p50_s']:.1f} s, p95 "
        f"{small['time_to_ready_p95_s']:.1f} -> {large['time_to_ready_p95_s']:.1f} s; "
        f"throughput {small['certificates_per_s']:.2f} -> {large['certificates_per_s']:.2f}/s; "
        f"peak RSS bridge {per_extra('bridge')}, worker {per_extra('worker')}"
    )


def print_side_by_side(sizes: list[dict[str, Any]]) -> None:
    print()
    print("sizes side by side:")
    header = "".join(f"{f['certificates']:>22}" for f in sizes)
    print(f"  {'Certificates created at once':<40}{header}")
    for label, shown in SIDE_BY_SIDE:
        print(f"  {label:<40}" + "".join(f"{shown(f):>22}" for f in sizes))
    if len(sizes) > 1:
        print(growth(sizes[0], sizes[-1]))


_JSON_KEYS = (
    "certificates",
    "ready",
    "failed",
    "timed_out",
    "time_to_ready_p50_s",
    "time_to_ready_p95_s",
    "wall_s",
    "certificates_per_s",
    "bridge_peak_rss_mb",
    "worker_peak_rss_mb",
    "stack_cpu_ms_per_certificate",
    "bridge_start_lag_p95_s",
    "bridge_lag_p95_s",
    "machine_busy",
    "other_cpu_s",
)


def final_json(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """The last size's figures, and the main ones of every size."""
    return {**sizes[-1], "sizes": [{k: f[k] for k in _JSON_KEYS} for f in sizes]}


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--certificates", type=int, default=50, help="Certificates at once")
    parser.add_argument(
        "--also", type=int, nargs="*", default=[], help="more sizes, run after the first"
    )
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per size")
    args = parser.parse_args()
    stop_on_sigterm()
    sizes: list[dict[str, Any]] = []
    with acmeflow_stack(args.state_dir, with_acmeflow=True) as stack:
        for count in [args.certificates, *args.also]:
            settle(stack_pids(stack))
            run = kube_run.run_benchmark(
                stack, Certificates(), count=count, timeout_s=args.timeout_s
            )
            sizes.append(report(run))
            print_json_line(sizes[-1])
    print_side_by_side(sizes)
    print_json_line(final_json(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
