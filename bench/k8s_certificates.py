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
- kube-apiserver and Temporal counters per Certificate (bench/k8s_orders.py's scrapes).

Sizes run one after another on one stack, each in its own namespace, which is deleted
(and the stack left to settle) before the next. The end sets the sizes side by side with
a cost-growth line; the last line is one JSON object (the last size's figures and a
``sizes`` list). Helpers come from ``bench/k8s_orders.py`` and ``bench/orders.py``.

    .venv/bin/python bench/k8s_certificates.py [--certificates 50] [--also 500 ...]
                                               [--state-dir DIR] [--timeout-s 1800]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8s_orders import (
    COMPONENTS,
    CREATE_THREADS,
    HISTORY_FETCHES,
    NAN,
    Created,
    Kube,
    OrderWatch,
    ServerCounters,
    WorkflowTimes,
    _exit_on_term,
    acmeflow_stack,
    counters_increase,
    cpu_wait_s,
    create_namespace,
    delete_namespace,
    event_s,
    known,
    kube_clients,
    mean_of,
    p50,
    p95,
    print_intervals,
    print_task_queues,
    print_top,
    proc_status_kb,
    record_cpu,
    reset_peak_rss,
    scrape_counters,
    stack_pids,
    workflow_times,
)
from kubernetes.client.exceptions import ApiException
from orders import cpu_sample, history_breakdown
from temporalio.client import Client, WorkflowHistory
from urllib3.exceptions import HTTPError

from acmeflow.contracts.activities import ActivityName
from acmeflow.crds.models import GROUP, VERSION, Certificate, Issuer
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.resource_ids import workflow_id

PROGRESS_EVERY_S = 10.0
READY_TIMEOUT_S = 180.0
"""How long the Issuer and the warm-up Certificate may take to become Ready."""
GONE_TIMEOUT_S = 600.0
SETTLE_CORES = 0.3
"""Between sizes: wait until the stack uses less than this many cores (or SETTLE_S passed)."""
SETTLE_S = 180.0
MAX_RUNS = 8
"""Runs of one CertificateWorkflow followed back through continue-as-new."""
STORE_ACTIVITY = "store_certificate"
READY, FAILED = "Ready", "Failed"
FINAL = {READY, FAILED}
MB = 1024.0


# -- Kubernetes ------------------------------------------------------------------------


def certificate_manifest(namespace: str, name: str, dns_name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": Certificate.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": f"{name}-tls",
            "dnsNames": [dns_name],
            "issuerRef": {"name": "pebble", "kind": Issuer.KIND},
            "privateKey": {"algorithm": "ECDSA"},
        },
    }


def certificate_manifests(namespace: str, run: str, count: int) -> list[dict[str, Any]]:
    return [
        certificate_manifest(namespace, f"bench-{run}-{i}", f"bench-{run}-{i}.example.com")
        for i in range(count)
    ]


def create_certificate(kube: Kube, namespace: str, manifest: dict[str, Any]) -> Created:
    created = Created(manifest["metadata"]["name"], sent_at=time.time())
    try:
        kube.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, Certificate.PLURAL, manifest
        )
    except (ApiException, HTTPError) as error:
        created.error = f"{type(error).__name__}: {error}"
        return created
    created.created_at = time.time()
    return created


def create_certificates(
    kube: Kube, namespace: str, manifests: list[dict[str, Any]]
) -> dict[str, Created]:
    with ThreadPoolExecutor(max_workers=CREATE_THREADS) as pool:
        done = pool.map(lambda m: create_certificate(kube, namespace, m), manifests)
        return {c.name: c for c in done}


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def wait_ready(read: Callable[[], dict[str, Any]], what: str) -> float:
    """Poll until the object's Ready condition is True; seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        with contextlib.suppress(ApiException):
            if ready_condition(read()).get("status") == "True":
                return time.monotonic() - started
        time.sleep(0.5)
    raise SystemExit(f"{what} not Ready after {READY_TIMEOUT_S:.0f}s")


def prepare_namespace(kube: Kube, stack: StackInfo, namespace: str, run_id: str) -> None:
    """Issuer Ready and one Certificate issued, so the measured run pays no first-use cost."""
    create_namespace(kube, namespace, stack)
    issuer_s = wait_ready(
        lambda: kube.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, Issuer.PLURAL, "pebble"
        ),
        "Issuer pebble",
    )
    name = f"warmup-{run_id}"
    kube.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        Certificate.PLURAL,
        certificate_manifest(namespace, name, f"{name}.example.com"),
    )
    warm_s = wait_ready(
        lambda: kube.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, Certificate.PLURAL, name
        ),
        f"warm-up Certificate {name}",
    )
    print(f"  Issuer Ready after {issuer_s:.1f}s, warm-up Certificate after {warm_s:.1f}s")


# -- watching the Certificates ---------------------------------------------------------


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


@dataclass
class CertificateSeen:
    """What the watch showed of one Certificate: each state when it first appeared."""

    state: str = ""
    message: str = ""
    states: list[tuple[str, float]] = field(default_factory=list)
    ready_at: float = NAN
    listed: bool = False
    """A state was seen in a list after a broken watch, so its time is not exact."""


class CertificateWatch(OrderWatch):
    """bench/k8s_orders.py's watch (list, watch, relist on error) over Certificates."""

    def __init__(self, kube: Kube, namespace: str, expected: int, skip: str) -> None:
        super().__init__(kube, namespace, expected)
        self._skip = skip
        self._certificates: dict[str, CertificateSeen] = defaultdict(CertificateSeen)

    def _list(self, **kwargs: Any) -> Any:
        return self._custom.list_namespaced_custom_object(
            GROUP, VERSION, self._namespace, Certificate.PLURAL, **kwargs
        )

    def expect(self, count: int) -> None:
        """Refused creates never show up; wait for this many instead."""
        self._expected = count

    def certificates(self) -> dict[str, CertificateSeen]:
        with self._lock:
            return dict(self._certificates)

    def _note(self, obj: dict[str, Any], now: float, *, listed: bool) -> None:
        name = obj["metadata"]["name"]
        if name == self._skip:
            return
        state, message = certificate_state(obj)
        with self._lock:
            seen = self._certificates[name]
            seen.message = message
            if state != seen.state:
                seen.state = state
                seen.states.append((state, now))
                seen.listed = seen.listed or listed
                if state == READY and math.isnan(seen.ready_at):
                    seen.ready_at = now
            final = sum(1 for s in self._certificates.values() if s.state in FINAL)
        if final >= self._expected:
            self.all_final.set()


# -- the workflows' side ---------------------------------------------------------------


@dataclass(frozen=True)
class CertificatePublish:
    """One ``publish_certificate_progress``: its times and the Ready status it carried."""

    scheduled: float
    started: float
    completed: float
    ready: str


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
    """bench/orders.py's breakdown of the run that issued (the child shows as 'other')."""
    order: WorkflowTimes | None = None

    @property
    def final_publish(self) -> CertificatePublish | None:
        return next((p for p in self.publishes if p.ready == "True"), None)


def publish_ready(attributes: Any) -> str:
    try:
        return str(json.loads(attributes.input.payloads[0].data)["status"]["ready"])
    except (IndexError, KeyError, TypeError, ValueError):
        return ""


def note_run(times: CertificateTimes, history: WorkflowHistory) -> None:
    """Add one run's events to ``times`` (event ids restart in every run)."""
    scheduled: dict[int, tuple[str, float, Any]] = {}
    started: dict[int, float] = {}
    times.runs += 1
    times.events += len(history.events)
    for event in history.events:
        now, kind = event_s(event), event.WhichOneof("attributes") or ""
        attributes: Any = getattr(event, kind) if kind else None
        if kind == "activity_task_scheduled_event_attributes":
            scheduled[event.event_id] = (attributes.activity_type.name, now, attributes)
            times.activities[attributes.activity_type.name] += 1
        elif kind == "activity_task_started_event_attributes":
            started[attributes.scheduled_event_id] = now
        elif kind == "activity_task_completed_event_attributes":
            origin = attributes.scheduled_event_id
            name, at, inputs = scheduled[origin]
            if name == STORE_ACTIVITY:
                times.store_completed = now
            elif name == ActivityName.PUBLISH_CERTIFICATE_PROGRESS:
                publish = CertificatePublish(
                    at, started.get(origin, NAN), now, publish_ready(inputs)
                )
                times.publishes.append(publish)
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


async def run_chain(temporal: Client, wid: str) -> list[WorkflowHistory]:
    """Every run of the workflow, oldest first, following continue-as-new back."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    for _ in range(MAX_RUNS):
        history = await temporal.get_workflow_handle(wid, run_id=run_id).fetch_history()
        histories.append(history)
        first = history.events[0].workflow_execution_started_event_attributes
        run_id = first.continued_execution_run_id or None
        if run_id is None:
            break
    return histories[::-1]


async def certificate_times(temporal: Client, wid: str) -> CertificateTimes:
    runs = await run_chain(temporal, wid)
    times = CertificateTimes(started=event_s(runs[0].events[0]))
    for history in runs:
        note_run(times, history)
    if times.child_run_id:
        child = temporal.get_workflow_handle(times.child_id, run_id=times.child_run_id)
        times.order = workflow_times(await child.fetch_history())
    return times


async def fetch_certificate_times(
    stack: StackInfo, namespace: str, names: list[str]
) -> dict[str, CertificateTimes]:
    temporal = await Client.connect(stack.temporal_address, namespace=stack.temporal_namespace)
    limit = asyncio.Semaphore(HISTORY_FETCHES)

    async def one(name: str) -> tuple[str, CertificateTimes | None]:
        async with limit:
            try:
                wid = workflow_id(Certificate.KIND, namespace, name)
                return name, await certificate_times(temporal, wid)
            except Exception as error:  # noqa: BLE001 - a missing history is a figure too
                print(f"  no history for {name}: {error}", flush=True)
                return name, None

    found = await asyncio.gather(*(one(n) for n in names))
    return {name: times for name, times in found if times is not None}


# -- the run ---------------------------------------------------------------------------


@dataclass
class Run:
    """Everything measured at one size."""

    certificates: int
    created: dict[str, Created] = field(default_factory=dict)
    seen: dict[str, CertificateSeen] = field(default_factory=dict)
    workflows: dict[str, CertificateTimes] = field(default_factory=dict)
    started_at: float = NAN
    ended_at: float = NAN
    timed_out: bool = False
    cpu_s: dict[str, float] = field(default_factory=dict)
    cpu_wait_s: dict[str, float] = field(default_factory=dict)
    other_cpu_s: float = NAN
    """CPU seconds of every process not of this stack nor this script (other sessions)."""
    machine_busy: float = NAN
    counters: ServerCounters = field(default_factory=ServerCounters)
    start_rss_mb: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    after_rss_mb: dict[str, float] = field(default_factory=dict)
    """RSS once the run and the history fetches are over (CertificateWorkflows waiting)."""
    rss_samples: list[tuple[float, int, float, float]] = field(default_factory=list)
    """(seconds, Ready so far, bridge MB, worker MB) every progress line."""
    rss_reset: bool = False
    watch_errors: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at

    def ready(self) -> list[str]:
        return [n for n, s in self.seen.items() if not math.isnan(s.ready_at)]

    def failed(self) -> list[str]:
        return [n for n, s in self.seen.items() if s.state == FAILED]

    def stack_cpu_s(self) -> float:
        return sum(s for n, s in self.cpu_s.items() if n != "bench")


def rss_mb(pids: dict[str, int], field_name: str) -> dict[str, float]:
    return {n: (proc_status_kb(pid, field_name) or 0) / MB for n, pid in pids.items()}


def progress_line(watch: CertificateWatch, run: Run, pids: dict[str, int], busy: float) -> str:
    seen = watch.certificates()
    states = Counter(s.state for s in seen.values())
    states["(not seen)"] = run.certificates - len(seen)
    shown = ", ".join(f"{state} {n}" for state, n in sorted(states.items()) if n)
    now = rss_mb({n: pids[n] for n in COMPONENTS}, "VmRSS")
    elapsed = time.time() - run.started_at
    run.rss_samples.append((elapsed, states[READY], now["acmeflow-bridge"], now["acmeflow-worker"]))
    return (
        f"  {elapsed:6.1f}s  {shown}  (machine busy {busy:.0%}; RSS bridge "
        f"{now['acmeflow-bridge']:.0f} MB, worker {now['acmeflow-worker']:.0f} MB)"
    )


def wait_for_certificates(
    watch: CertificateWatch, run: Run, pids: dict[str, int], timeout_s: float
) -> None:
    """Block until every Certificate is Ready or Failed, or the timeout passed."""
    deadline = time.monotonic() + timeout_s
    last = cpu_sample({})
    while not watch.all_final.wait(PROGRESS_EVERY_S):
        now = cpu_sample({})
        busy = (now.machine_busy - last.machine_busy) / max(
            1e-9, now.machine_total - last.machine_total
        )
        last = now
        print(progress_line(watch, run, pids, busy), flush=True)
        if time.monotonic() > deadline:
            print(f"  timed out after {timeout_s:.0f}s", flush=True)
            run.timed_out = True
            return


def create_and_watch(
    kube: Kube,
    namespace: str,
    manifests: list[dict[str, Any]],
    run: Run,
    *,
    pids: dict[str, int],
    skip: str,
    timeout_s: float,
) -> CertificateWatch:
    """Create the Certificates with a watch already open; return once all are final."""
    watch = CertificateWatch(kube, namespace, len(manifests), skip)
    watch.start()
    run.started_at = time.time()
    try:
        run.created = create_certificates(kube, namespace, manifests)
        failed = sum(1 for c in run.created.values() if c.error)
        print(
            f"  {time.time() - run.started_at:6.1f}s  {len(manifests) - failed} Certificates "
            f"created, {failed} refused",
            flush=True,
        )
        watch.expect(len(manifests) - failed)
        wait_for_certificates(watch, run, pids, timeout_s)
    finally:
        watch.stop()
    return watch


def measure(
    stack: StackInfo, kube: Kube, namespace: str, run_id: str, *, count: int, timeout_s: float
) -> Run:
    manifests = certificate_manifests(namespace, run_id, count)
    stack_only = stack_pids(stack)
    pids = {**stack_only, "bench": os.getpid()}
    run = Run(certificates=count)
    counters = scrape_counters(stack, kube)
    run.start_rss_mb = rss_mb(stack_only, "VmRSS")
    run.rss_reset = all([reset_peak_rss(pid) for pid in stack_only.values()])
    waited = {n: cpu_wait_s(pid) for n, pid in pids.items()}
    before = cpu_sample(pids)
    watch = create_and_watch(
        kube,
        namespace,
        manifests,
        run,
        pids=pids,
        skip=f"warmup-{run_id}",
        timeout_s=timeout_s,
    )
    after = cpu_sample(pids)
    run.cpu_wait_s = {n: cpu_wait_s(pid) - waited[n] for n, pid in pids.items()}
    run.peak_rss_mb = rss_mb(stack_only, "VmHWM")
    run.seen = watch.certificates()
    run.watch_errors = list(watch.errors)
    run.ended_at = max([s.ready_at for s in run.seen.values() if s.ready_at > 0] or [time.time()])
    record_cpu(run, before, after)
    run.counters = counters_increase(counters, scrape_counters(stack, kube))
    run.workflows = asyncio.run(fetch_certificate_times(stack, namespace, list(run.created)))
    run.after_rss_mb = rss_mb(stack_only, "VmRSS")
    return run


def settle(stack: StackInfo) -> None:
    """Wait until the stack is nearly idle (the deleted namespace's workflows are done)."""
    pids = stack_pids(stack)
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_S:
        before = cpu_sample(pids)
        time.sleep(5.0)
        after = cpu_sample(pids)
        used = sum(after.by_process[n] - before.by_process[n] for n in pids) / 5.0
        if used < SETTLE_CORES:
            break
    print(f"stack settled after {time.monotonic() - started:.0f}s", flush=True)


def benchmark(stack: StackInfo, *, count: int, timeout_s: float) -> Run:
    run_id = uuid.uuid4().hex[:6]
    namespace = f"bench-{run_id}"
    kube = kube_clients(stack, connections=CREATE_THREADS + 4)
    print(
        f"run {run_id}: {count} Certificates (ECDSA P-256 keys) in namespace {namespace}; "
        f"Pebble {stack.acme_directory_url}, Temporal {stack.temporal_address}",
        flush=True,
    )
    try:
        prepare_namespace(kube, stack, namespace, run_id)
        return measure(stack, kube, namespace, run_id, count=count, timeout_s=timeout_s)
    finally:
        deleted = time.monotonic()
        gone = delete_namespace(kube, namespace)
        while not gone and time.monotonic() - deleted < GONE_TIMEOUT_S:
            gone = delete_namespace(kube, namespace)
        print(
            f"namespace {namespace} {'deleted' if gone else 'still terminating'} after "
            f"{time.monotonic() - deleted:.0f}s",
            flush=True,
        )


# -- reporting -------------------------------------------------------------------------


def spans(run: Run, span: Callable[[str], float]) -> list[float]:
    """One interval per Ready Certificate that has its histories (NaN ones left out)."""
    values = []
    for name in run.ready():
        with contextlib.suppress(KeyError, AttributeError):
            values.append(span(name))
    return known(values)


TO_READY = "time to Ready (create acknowledged -> watch saw Ready=True)"
START_LAG = "  bridge start lag (create acknowledged -> CertificateWorkflow started)"
BRIDGE_LAG = "  bridge lag (decided Ready -> watch saw Ready)"


def final_publish(flow: CertificateTimes) -> CertificatePublish:
    publish = flow.final_publish
    if publish is None:
        raise KeyError("no publish carried Ready=True")
    return publish


def order_of(flow: CertificateTimes) -> WorkflowTimes:
    if flow.order is None:
        raise KeyError("no child OrderWorkflow")
    return flow.order


def figures(run: Run) -> dict[str, list[float]]:
    """Intervals in seconds, one per Ready Certificate, by what they measure."""
    created = {n: c.created_at for n, c in run.created.items()}
    ready = {n: s.ready_at for n, s in run.seen.items()}
    flows = run.workflows
    return {
        TO_READY: spans(run, lambda n: ready[n] - created[n]),
        START_LAG: spans(run, lambda n: flows[n].started - created[n]),
        "  before the Order (started -> child started: Secret, key, Order resource)": spans(
            run, lambda n: flows[n].child_started - flows[n].started
        ),
        "  the Order (child OrderWorkflow started -> completed, parent's events)": spans(
            run, lambda n: flows[n].child_completed - flows[n].child_started
        ),
        "    OrderWorkflow started -> decided valid": spans(
            run, lambda n: order_of(flows[n]).decided - order_of(flows[n]).started
        ),
        "    decided valid -> parent saw it complete (Order's final publish, flush)": spans(
            run, lambda n: flows[n].child_completed - order_of(flows[n]).decided
        ),
        "  after the Order (child completed -> decided Ready: store_certificate)": spans(
            run, lambda n: flows[n].decided - flows[n].child_completed
        ),
        BRIDGE_LAG: spans(run, lambda n: ready[n] - flows[n].decided),
        "    decided -> final publish scheduled (earlier publish in flight)": spans(
            run, lambda n: final_publish(flows[n]).scheduled - flows[n].decided
        ),
        "    final publish scheduled -> started (bridge task queue)": spans(
            run, lambda n: final_publish(flows[n]).started - final_publish(flows[n]).scheduled
        ),
        "    final publish started -> watch saw Ready (bridge writes, watch)": spans(
            run, lambda n: ready[n] - final_publish(flows[n]).started
        ),
        "create request round trip": known(
            [c.created_at - c.sent_at for c in run.created.values()]
        ),
    }


def publish_figures(run: Run) -> dict[str, list[float]]:
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


def mean_breakdown(breakdowns: list[dict[str, float]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for breakdown in breakdowns:
        for label, seconds in breakdown.items():
            totals[label] += seconds / len(breakdowns)
    return dict(totals)


def print_breakdowns(run: Run) -> None:
    flows = [run.workflows[n] for n in run.ready() if n in run.workflows]
    for title, breakdowns in (
        (
            "CertificateWorkflow's issuing run ('other' holds the child Order)",
            [f.breakdown for f in flows if f.breakdown],
        ),
        ("child OrderWorkflow", [f.order.breakdown for f in flows if f.order]),
    ):
        if not breakdowns:
            continue
        print(f"inside the {title}, mean ms per Certificate (bench/orders.py's breakdown):")
        for label, seconds in sorted(mean_breakdown(breakdowns).items(), key=lambda i: -i[1]):
            print(f"  {seconds * 1000:9.1f}  {label}")


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


def print_counters(run: Run) -> None:
    counters, n = run.counters, run.certificates
    print("kube-apiserver requests per Certificate (all clients), mean latency (2xx and others):")
    for key, count in sorted(counters.requests.items(), key=lambda item: -item[1])[:14]:
        seconds = counters.request_s.get(key)  # not counted by response code
        latency = f"{seconds / count:7.3f}s" if seconds is not None else "       -"
        print(f"  {count / max(1, n):9.2f}  {latency}  {key}")
    for resource, fetched in sorted(counters.list_fetched.items(), key=lambda item: -item[1])[:3]:
        print(
            f"  LISTs of {resource} read {fetched:.0f} objects from etcd to return "
            f"{counters.list_returned.get(resource, 0):.0f}"
        )
    print_top("kube-apiserver watch events sent per Certificate:", counters.watch_events, n, top=6)
    print_top("Temporal persistence calls per Certificate:", counters.persistence_calls, n, top=8)
    print(
        f"  all persistence calls: {sum(counters.persistence_s.values()):.1f} s of latency "
        f"in {run.wall_s:.1f} s"
    )
    print_task_queues(counters)


def print_cpu(run: Run) -> None:
    cores = os.cpu_count() or 1
    stack = run.stack_cpu_s()
    print(
        f"CPU during the run ({run.wall_s:.1f}s x {cores} cores, machine busy "
        f"{run.machine_busy:.0%}): stack {stack:.1f} s = "
        f"{1000 * stack / max(1, run.certificates):.0f} ms per Certificate; this script "
        f"{run.cpu_s.get('bench', NAN):.1f} s; other processes on the machine "
        f"{run.other_cpu_s:.1f} s"
    )
    print("  CPU s, waiting for a CPU s (runnable, not running), by process:")
    for name, used in sorted(run.cpu_s.items(), key=lambda item: -item[1]):
        if used >= 0.05:
            print(f"  {used:7.1f} {run.cpu_wait_s.get(name, NAN):7.1f}  {name}")


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


def print_failures(run: Run) -> None:
    for name, created in run.created.items():
        seen = run.seen.get(name, CertificateSeen())
        if created.error or math.isnan(seen.ready_at):
            shown = created.error or f"{seen.state or '(not seen)'}: {seen.message}"
            print(f"  not Ready: {name}: {shown[:300]}")
    listed = [n for n, s in run.seen.items() if s.listed]
    if run.watch_errors or listed:
        print(f"  watch broke {len(run.watch_errors)}x; {len(listed)} states seen by listing")
        for error in run.watch_errors[:3]:
            print(f"    {error[:300]}")


def summary(run: Run) -> dict[str, Any]:
    intervals = figures(run)
    to_ready, lag, start = intervals[TO_READY], intervals[BRIDGE_LAG], intervals[START_LAG]
    ready = len(run.ready())
    return {
        "certificates": run.certificates,
        "ready": ready,
        "failed": len(run.failed()),
        "not_ready": run.certificates - ready,
        "timed_out": run.timed_out,
        "time_to_ready_p50_s": round(p50(to_ready), 3),
        "time_to_ready_p95_s": round(p95(to_ready), 3),
        "time_to_ready_max_s": round(max(to_ready, default=NAN), 3),
        "bridge_start_lag_p50_s": round(p50(start), 3),
        "bridge_start_lag_p95_s": round(p95(start), 3),
        "bridge_lag_p50_s": round(p50(lag), 3),
        "bridge_lag_p95_s": round(p95(lag), 3),
        "wall_s": round(run.wall_s, 2),
        "certificates_per_s": round(ready / run.wall_s, 3) if run.wall_s > 0 else NAN,
        "bridge_peak_rss_mb": round(run.peak_rss_mb.get("acmeflow-bridge", NAN), 1),
        "worker_peak_rss_mb": round(run.peak_rss_mb.get("acmeflow-worker", NAN), 1),
        "bridge_start_rss_mb": round(run.start_rss_mb.get("acmeflow-bridge", NAN), 1),
        "worker_start_rss_mb": round(run.start_rss_mb.get("acmeflow-worker", NAN), 1),
        "bridge_after_rss_mb": round(run.after_rss_mb.get("acmeflow-bridge", NAN), 1),
        "worker_after_rss_mb": round(run.after_rss_mb.get("acmeflow-worker", NAN), 1),
        "peak_rss_reset": run.rss_reset,
        "stack_cpu_ms_per_certificate": round(1000 * run.stack_cpu_s() / max(1, run.certificates)),
        "apiserver_requests_per_certificate": round(
            sum(run.counters.requests.values()) / max(1, run.certificates), 1
        ),
        "machine_busy": round(run.machine_busy, 3),
        "other_cpu_s": round(run.other_cpu_s, 1),
        "cpu_s": {n: round(s, 1) for n, s in run.cpu_s.items()},
    }


def report(run: Run) -> dict[str, Any]:
    figures_ = summary(run)
    print(
        f"{figures_['ready']} of {run.certificates} Certificates Ready in "
        f"{figures_['wall_s']:.1f}s (first create to last Ready) = "
        f"{figures_['certificates_per_s']:.2f}/s; {figures_['failed']} failed, "
        f"{figures_['not_ready']} not Ready" + (" (timed out)" if run.timed_out else "")
    )
    print_failures(run)
    print_intervals("per Certificate (epoch clocks of this machine):", figures(run), 78)
    print_intervals("per progress snapshot:", publish_figures(run), 78)
    print_breakdowns(run)
    print_history_counts(run)
    print_counters(run)
    print_cpu(run)
    print_memory(run)
    return figures_


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


def final_json(sizes: list[dict[str, Any]]) -> str:
    last = sizes[-1]
    return json.dumps({**last, "sizes": [{k: f[k] for k in _JSON_KEYS} for f in sizes]})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certificates", type=int, default=50, help="Certificates at once")
    parser.add_argument(
        "--also", type=int, nargs="*", default=[], help="more sizes, run after the first"
    )
    parser.add_argument("--state-dir", type=Path, help="use this stack (acmeflow dev up)")
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per size")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_term)  # so the namespace and the stack go
    sizes: list[dict[str, Any]] = []
    with acmeflow_stack(args.state_dir) as stack:
        for count in [args.certificates, *args.also]:
            settle(stack)
            run = benchmark(stack, count=count, timeout_s=args.timeout_s)
            sizes.append(report(run))
            print(json.dumps(sizes[-1]), flush=True)
    print_side_by_side(sizes)
    print(final_json(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
