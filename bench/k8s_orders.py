"""Kubernetes Order benchmark: N Orders created at once, served by acmeflow's own processes.

On the embedded stack with ``acmeflow worker`` and ``acmeflow bridge`` running (as
``acmeflow dev up`` runs them), an Issuer on the stack's Pebble (HTTP-01 through the
stack's solver) is created in a fresh namespace, then N single-name Orders, each with its
own CSR, as fast as the kubernetes client allows. A watch on the namespace notes when each
Order first shows ``status.state == valid``.

Figures:

- time to valid: from the API server acknowledging an Order's create to the watch event
  carrying ``valid`` (both on this machine's clock), p50 and p95; wall time, throughput;
- where that time goes, per Order: bridge start lag (create acknowledged -> workflow
  started), the workflow (started -> decided ``valid``) and the bridge lag;
- bridge lag: from the workflow deciding ``valid`` to the watch event. "Decided" is the
  ``WorkflowTaskCompleted`` event that follows ``download_certificate``'s completion: the
  workflow task that ran ``_finish("valid")``. When the publisher is idle that task also
  schedules the ``publish_order_progress`` carrying ``valid`` (same timestamp); when an
  earlier snapshot is still being published, the new one waits for it, and that wait is
  the observer being slow, so it counts as bridge lag (shown separately). Temporal's
  event times come from the server on this machine, the watch times from this process:
  one clock, millisecond resolution (``managedFields`` times have only seconds);
- where the work goes: each workflow history (events, workflow tasks, activities, how
  many publishes carried nothing the bridge writes), kube-apiserver's and Temporal's own
  counters before and after (requests by verb and resource, objects LISTs read from
  etcd, persistence calls, task-queue schedule-to-start and sync matches);
- CPU seconds of every stack process during the run and how long each waited for a CPU
  (``/proc/<pid>/task/*/schedstat``), other processes' share of the machine, and the peak
  RSS (VmHWM) of the bridge and the worker during the run (the high-water mark is reset
  through ``/proc/<pid>/clear_refs`` before the Orders are created, when permitted).

It prints figures, not verdicts of a test; the last line is one JSON object. Helpers
shared with ``bench/orders.py`` are imported from it (``bench/`` is the script's path).

    .venv/bin/python bench/k8s_orders.py [--orders 100] [--state-dir DIR] [--timeout-s 900]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from orders import CpuSample, cpu_sample, history_breakdown, percentile
from prometheus_counters import Sample, increase, parse_samples, totals
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from urllib3.exceptions import HTTPError

from acmeflow.activities.csr import build_csr, generate_private_key
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.states import FINAL_ORDER_STATES
from acmeflow.crds.models import GROUP, VERSION, Issuer, Order
from acmeflow.devstack.stack import DevStack, StackInfo

CREATE_THREADS = 16
"""Orders created at once (one kubernetes client connection each)."""
WATCH_TIMEOUT_S = 60
PROGRESS_EVERY_S = 5.0
NAMESPACE_GONE_TIMEOUT_S = 120.0
HISTORY_FETCHES = 16
"""Workflow histories fetched from Temporal at once, after the run."""
COMPONENTS = ("acmeflow-bridge", "acmeflow-worker")
DOWNLOAD_ACTIVITY = "download_certificate"
NAN = float("nan")


def order_workflow_id(namespace: str, name: str) -> str:
    """The bridge's id for an Order's workflow (README: ``order/<namespace>/<name>``)."""
    return f"order/{namespace}/{name}"


# -- the stack -------------------------------------------------------------------------


@contextlib.contextmanager
def acmeflow_stack(state_dir: Path | None) -> Iterator[StackInfo]:
    """A running stack with worker and bridge (left running), or a fresh one, stopped after."""
    if state_dir is not None:
        stack = StackInfo.load(state_dir)
        missing = [n for n in COMPONENTS if not (state_dir / "pids" / f"{n}.pid").exists()]
        if missing:
            raise SystemExit(f"{state_dir} runs no {', '.join(missing)}; use `acmeflow dev up`")
        yield stack
        return
    with tempfile.TemporaryDirectory(prefix="acmeflow-bench-k8s-") as directory:
        dev = DevStack.create(Path(directory), with_acmeflow=True)
        print(f"starting an embedded stack with worker and bridge in {directory}", flush=True)
        try:
            yield dev.up()
        finally:
            dev.down()


def stack_pids(stack: StackInfo) -> dict[str, int]:
    """Every process the state directory recorded, by name."""
    pids = {}
    for path in sorted((stack.state_dir / "pids").glob("*.pid")):
        with contextlib.suppress(OSError, ValueError):
            pids[path.stem] = int(path.read_text())
    return pids


def cpu_wait_s(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (schedstat)."""
    waited = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            waited += int(stat.read_text().split()[1])
    return waited / 1e9


def proc_status_kb(pid: int, field_name: str) -> int | None:
    """A ``kB`` figure of ``/proc/<pid>/status`` (VmHWM, VmRSS)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    return None


def reset_peak_rss(pid: int) -> bool:
    """Start the kernel's high-water mark of the resident set anew (``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# -- Kubernetes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Kube:
    api_client: client.ApiClient
    core: client.CoreV1Api
    custom: client.CustomObjectsApi


def kube_clients(stack: StackInfo, *, connections: int) -> Kube:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(stack.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    api_client = client.ApiClient(configuration)
    return Kube(
        api_client=api_client,
        core=client.CoreV1Api(api_client),
        custom=client.CustomObjectsApi(api_client),
    )


def issuer_manifest(stack: StackInfo, namespace: str) -> dict[str, Any]:
    """deploy/examples/issuer.yaml, filled in for the stack's Pebble."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": Issuer.KIND,
        "metadata": {"name": "pebble", "namespace": namespace},
        "spec": {
            "acme": {
                "server": stack.acme_directory_url,
                "caBundle": base64.b64encode(stack.acme_ca_bundle.read_bytes()).decode(),
                "email": "ops@example.com",
                "privateKeySecretRef": {"name": "pebble-account"},
                "solvers": [{"http01": {"ingress": {}}}],
            }
        },
    }


def order_manifest(namespace: str, name: str, dns_name: str) -> dict[str, Any]:
    """As tests/bridge/bridge_harness.py writes one: a name and a CSR from a fresh key."""
    csr = build_csr(generate_private_key("ECDSA"), RequestedNames(dns_names=[dns_name]))
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": Order.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "request": csr,
            "issuerRef": {"name": "pebble", "kind": Issuer.KIND},
            "dnsNames": [dns_name],
        },
    }


def order_manifests(namespace: str, run: str, count: int) -> list[dict[str, Any]]:
    return [
        order_manifest(namespace, f"bench-{run}-{i}", f"bench-{run}-{i}.example.com")
        for i in range(count)
    ]


def create_namespace(kube: Kube, namespace: str, stack: StackInfo) -> None:
    kube.core.create_namespace({"metadata": {"name": namespace}})
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, Issuer.PLURAL, issuer_manifest(stack, namespace)
    )


def delete_namespace(kube: Kube, namespace: str) -> bool:
    """Delete it and wait until it is gone; False if it is still there after the timeout."""
    with contextlib.suppress(ApiException):
        kube.core.delete_namespace(namespace)
    deadline = time.monotonic() + NAMESPACE_GONE_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            kube.core.read_namespace(namespace)
        except ApiException as error:
            if error.status == 404:
                return True
        time.sleep(1.0)
    return False


@dataclass
class Created:
    """One Order's create call: sent and acknowledged (epoch seconds), or why it failed."""

    name: str
    sent_at: float = NAN
    created_at: float = NAN
    error: str = ""


def create_order(kube: Kube, namespace: str, manifest: dict[str, Any]) -> Created:
    created = Created(manifest["metadata"]["name"], sent_at=time.time())
    try:
        kube.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, Order.PLURAL, manifest
        )
    except (ApiException, HTTPError) as error:
        created.error = f"{type(error).__name__}: {error}"
        return created
    created.created_at = time.time()
    return created


def create_orders(
    kube: Kube, namespace: str, manifests: list[dict[str, Any]], threads: int
) -> dict[str, Created]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = pool.map(lambda m: create_order(kube, namespace, m), manifests)
        return {c.name: c for c in done}


# -- what the servers counted ---------------------------------------------------------

APISERVER_METRICS = {
    "apiserver_request_total",
    "apiserver_request_duration_seconds_sum",
    "apiserver_storage_list_fetched_objects_total",
    "apiserver_storage_list_returned_objects_total",
    "apiserver_watch_events_total",
    "apiserver_watch_events_sizes_sum",
}
TEMPORAL_METRICS = {
    "persistence_latency_count",
    "persistence_latency_sum",
    "task_schedule_to_start_latency_count",
    "task_schedule_to_start_latency_sum",
    "poll_success",
    "poll_success_sync",
}


@dataclass(frozen=True)
class ServerCounters:
    """Counters of kube-apiserver and Temporal, by what they count."""

    requests: dict[str, float] = field(default_factory=dict)
    """kube-apiserver requests by ``VERB resource[/subresource] [code if not 2xx]``."""
    request_s: dict[str, float] = field(default_factory=dict)
    """Seconds kube-apiserver spent answering them, by ``VERB resource[/subresource]``."""
    list_fetched: dict[str, float] = field(default_factory=dict)
    """Objects LISTs read from etcd, by resource; ``list_returned``: what they answered."""
    list_returned: dict[str, float] = field(default_factory=dict)
    watch_events: dict[str, float] = field(default_factory=dict)
    """Watch events kube-apiserver sent, by resource (each watcher counts)."""
    watch_bytes: dict[str, float] = field(default_factory=dict)
    persistence_calls: dict[str, float] = field(default_factory=dict)
    """Temporal persistence (SQLite) operations by ``service operation``."""
    persistence_s: dict[str, float] = field(default_factory=dict)
    tasks_started: dict[str, float] = field(default_factory=dict)
    """Temporal tasks handed to a worker, by ``type queue [sticky]``."""
    schedule_to_start_s: dict[str, float] = field(default_factory=dict)
    polls: dict[str, float] = field(default_factory=dict)
    """Polls that got a task, by ``type queue [sticky]``; ``sync_polls``: matched at once."""
    sync_polls: dict[str, float] = field(default_factory=dict)


def api_request_group(labels: Mapping[str, str]) -> str:
    subresource = labels.get("subresource", "")
    code = labels.get("code", "")
    return (
        f"{labels.get('verb', '')} {labels.get('resource', '')}"
        + (f"/{subresource}" if subresource else "")
        + ("" if not code or code.startswith("2") else f" {code}")
    )


def resource_group(labels: Mapping[str, str]) -> str:
    return labels.get("resource", "")


def task_queue_group(labels: Mapping[str, str]) -> str:
    sticky = " sticky" if labels.get("partition") == "__sticky__" else ""
    return f"{labels.get('task_type', '')} {labels.get('taskqueue', '')}{sticky}"


def persistence_group(labels: Mapping[str, str]) -> str:
    return f"{labels.get('service_name', '')} {labels.get('operation', '')}"


def apiserver_metrics(kube: Kube) -> str:
    method, url, headers, _, _ = kube.api_client.param_serialize(
        "GET", "/metrics", auth_settings=["BearerToken"]
    )
    response = kube.api_client.call_api(method, url, header_params=headers)
    response.read()
    return bytes(response.data).decode()


def temporal_metrics(stack: StackInfo) -> str:
    url = f"http://127.0.0.1:{stack.ports.temporal_metrics}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read()).decode()


def scrape_counters(stack: StackInfo, kube: Kube) -> ServerCounters:
    """Both servers' counters now; empty where a server did not answer."""
    api: list[Sample] = []
    temporal: list[Sample] = []
    with contextlib.suppress(ApiException, HTTPError, OSError):
        api = parse_samples(apiserver_metrics(kube), APISERVER_METRICS)
    with contextlib.suppress(OSError):
        temporal = parse_samples(temporal_metrics(stack), TEMPORAL_METRICS)
    return ServerCounters(
        requests=totals(api, "apiserver_request_total", api_request_group),
        request_s=totals(api, "apiserver_request_duration_seconds_sum", api_request_group),
        list_fetched=totals(api, "apiserver_storage_list_fetched_objects_total", resource_group),
        list_returned=totals(api, "apiserver_storage_list_returned_objects_total", resource_group),
        watch_events=totals(api, "apiserver_watch_events_total", resource_group),
        watch_bytes=totals(api, "apiserver_watch_events_sizes_sum", resource_group),
        persistence_calls=totals(temporal, "persistence_latency_count", persistence_group),
        persistence_s=totals(temporal, "persistence_latency_sum", persistence_group),
        tasks_started=totals(temporal, "task_schedule_to_start_latency_count", task_queue_group),
        schedule_to_start_s=totals(
            temporal, "task_schedule_to_start_latency_sum", task_queue_group
        ),
        polls=totals(temporal, "poll_success", task_queue_group),
        sync_polls=totals(temporal, "poll_success_sync", task_queue_group),
    )


def counters_increase(before: ServerCounters, after: ServerCounters) -> ServerCounters:
    return ServerCounters(
        **{
            name: increase(getattr(before, name), getattr(after, name))
            for name in ServerCounters.__dataclass_fields__
        }
    )


# -- watching the Orders ---------------------------------------------------------------


@dataclass
class OrderSeen:
    """What the watch showed of one Order: each state when it first appeared."""

    state: str = ""
    reason: str = ""
    states: list[tuple[str, float]] = field(default_factory=list)
    valid_at: float = NAN
    listed: bool = False
    """The state was seen in a list after a broken watch, so its time is not exact."""


class OrderWatch:
    """Follows the Orders of one namespace from a list taken before any is created."""

    def __init__(self, kube: Kube, namespace: str, expected: int) -> None:
        self._custom = kube.custom
        self._namespace = namespace
        self._expected = expected
        self._lock = threading.Lock()
        self._seen: dict[str, OrderSeen] = defaultdict(OrderSeen)
        self.all_final = threading.Event()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self.errors: list[str] = []

    def _list(self, **kwargs: Any) -> Any:
        return self._custom.list_namespaced_custom_object(
            GROUP, VERSION, self._namespace, Order.PLURAL, **kwargs
        )

    def start(self) -> None:
        version = self._relist(listed=False)
        threading.Thread(target=self._run, args=(version,), name="order-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def snapshot(self) -> dict[str, OrderSeen]:
        with self._lock:
            return dict(self._seen)

    def _run(self, version: str) -> None:
        while not self._stop.is_set():
            try:
                version = self._stream(version)
            except (ApiException, HTTPError, OSError) as error:
                if self._stop.is_set():
                    return  # the connection closed under a stopped watch
                self.errors.append(f"{type(error).__name__}: {error}")
                if self._stop.wait(0.5):
                    return
                version = self._relist(listed=True)

    def _relist(self, *, listed: bool) -> str:
        listing = self._list()
        now = time.time()
        for obj in listing.get("items", []):
            self._note(obj, now, listed=listed)
        return str(listing["metadata"]["resourceVersion"])

    def _stream(self, version: str) -> str:
        self._watch = watch.Watch()
        for event in self._watch.stream(
            self._list,
            resource_version=version,
            timeout_seconds=WATCH_TIMEOUT_S,
            allow_watch_bookmarks=True,
        ):
            now = time.time()
            obj = event["object"]
            version = str(obj["metadata"]["resourceVersion"])
            if event["type"] in ("ADDED", "MODIFIED"):
                self._note(obj, now, listed=False)
            if self._stop.is_set():
                break
        return version

    def _note(self, obj: dict[str, Any], now: float, *, listed: bool) -> None:
        status = obj.get("status") or {}
        state = str(status.get("state") or "")
        with self._lock:
            seen = self._seen[obj["metadata"]["name"]]
            seen.reason = str(status.get("reason") or "")
            if state and state != seen.state:
                seen.state = state
                seen.states.append((state, now))
                seen.listed = seen.listed or listed
                if state == "valid" and math.isnan(seen.valid_at):
                    seen.valid_at = now
            final = sum(1 for s in self._seen.values() if s.state in FINAL_ORDER_STATES)
        if final >= self._expected:
            self.all_final.set()


# -- the workflows' side ---------------------------------------------------------------


@dataclass(frozen=True)
class Publish:
    """One ``publish_order_progress`` activity: its times and the snapshot it carried."""

    scheduled: float
    started: float
    completed: float
    state: str
    mirrored: str
    """The snapshot without the fields the bridge does not write (``version``, ``step``)."""


@dataclass
class WorkflowTimes:
    """Epoch seconds of the moments of one Order workflow that the figures use, and counts."""

    started: float
    breakdown: dict[str, float]
    events: int
    authorizations_read: float = NAN
    """The last ``describe_authorization`` before the first challenge was presented."""
    presenting: float = NAN
    """The first ``present_*`` scheduled: after ``_flush`` saw the Challenges created."""
    download_completed: float = NAN
    decided: float = NAN
    workflow_tasks: int = 0
    publish_woken_tasks: int = 0
    """Workflow tasks that nothing but a completed ``publish_order_progress`` woke."""
    activities: Counter[str] = field(default_factory=Counter)
    publishes: list[Publish] = field(default_factory=list)

    @property
    def final_publish(self) -> Publish | None:
        return next((p for p in self.publishes if p.state == "valid"), None)

    @property
    def idle_publishes(self) -> int:
        """Publishes that carried nothing new for Kubernetes (only ``version``/``step``)."""
        shown = [p.mirrored for p in self.publishes]
        return sum(1 for before, now in itertools.pairwise(shown) if before == now)

    def completed(self, activity_name: str, now: float) -> None:
        if activity_name == DOWNLOAD_ACTIVITY:
            self.download_completed = now
        elif activity_name == "describe_authorization" and math.isnan(self.presenting):
            self.authorizations_read = now

    def scheduled(self, activity_name: str, now: float) -> None:
        self.activities[activity_name] += 1
        if activity_name.startswith("present_") and math.isnan(self.presenting):
            self.presenting = now


def event_s(event: HistoryEvent) -> float:
    return float(event.event_time.ToNanoseconds()) / 1e9


def publish_of(attributes: Any, scheduled: float, started: float, completed: float) -> Publish:
    """The publish whose scheduling event is ``attributes`` (a JSON ``OrderUpdate``)."""
    try:
        progress = dict(json.loads(attributes.input.payloads[0].data)["progress"])
    except (IndexError, KeyError, TypeError, ValueError):
        progress = {}
    shown = {k: v for k, v in progress.items() if k not in ("version", "step")}
    shown["challenges"] = [
        {k: v for k, v in c.items() if k != "step"} for c in progress.get("challenges", [])
    ]
    mirrored = json.dumps(shown, sort_keys=True)
    return Publish(scheduled, started, completed, str(progress.get("state", "")), mirrored)


_NOT_WAKING = {
    "activity_task_scheduled_event_attributes",
    "activity_task_started_event_attributes",
    "workflow_task_scheduled_event_attributes",
    "workflow_task_started_event_attributes",
    "workflow_task_completed_event_attributes",
    "upsert_workflow_search_attributes_event_attributes",
    "marker_recorded_event_attributes",
}
"""Events that do not by themselves make Temporal schedule a workflow task."""


def workflow_times(history: WorkflowHistory) -> WorkflowTimes:
    events = history.events
    times = WorkflowTimes(event_s(events[0]), history_breakdown(history), len(events))
    scheduled: dict[int, tuple[str, float, Any]] = {}
    started: dict[int, float] = {}
    woken_by: set[str] = set()
    for event in events:
        now, kind = event_s(event), event.WhichOneof("attributes") or ""
        attributes: Any = getattr(event, kind) if kind else None
        if kind not in _NOT_WAKING:
            woken_by.add(kind)
        if kind == "activity_task_scheduled_event_attributes":
            scheduled[event.event_id] = (attributes.activity_type.name, now, attributes)
            times.scheduled(attributes.activity_type.name, now)
        elif kind == "activity_task_started_event_attributes":
            started[attributes.scheduled_event_id] = now
        elif kind == "activity_task_completed_event_attributes":
            origin = attributes.scheduled_event_id
            name, at, inputs = scheduled[origin]
            times.completed(name, now)
            if name == ActivityName.PUBLISH_ORDER_PROGRESS:
                times.publishes.append(publish_of(inputs, at, started.get(origin, NAN), now))
                woken_by = (woken_by - {kind}) | {ActivityName.PUBLISH_ORDER_PROGRESS}
        elif kind == "workflow_task_scheduled_event_attributes":
            times.workflow_tasks += 1
            times.publish_woken_tasks += woken_by == {ActivityName.PUBLISH_ORDER_PROGRESS}
            woken_by = set()
        elif kind == "workflow_task_completed_event_attributes" and math.isnan(times.decided):
            times.decided = NAN if math.isnan(times.download_completed) else now
    return times


async def fetch_workflow_times(
    stack: StackInfo, namespace: str, names: list[str]
) -> dict[str, WorkflowTimes]:
    temporal = await Client.connect(stack.temporal_address, namespace=stack.temporal_namespace)
    limit = asyncio.Semaphore(HISTORY_FETCHES)

    async def one(name: str) -> tuple[str, WorkflowTimes | None]:
        handle = temporal.get_workflow_handle(order_workflow_id(namespace, name))
        async with limit:
            try:
                return name, workflow_times(await handle.fetch_history())
            except Exception as error:  # noqa: BLE001 - a missing history is a figure too
                print(f"  no history for {name}: {error}", flush=True)
                return name, None

    found = await asyncio.gather(*(one(n) for n in names))
    return {name: times for name, times in found if times is not None}


# -- the run ---------------------------------------------------------------------------


@dataclass
class Run:
    """Everything measured in one run."""

    orders: int
    created: dict[str, Created] = field(default_factory=dict)
    seen: dict[str, OrderSeen] = field(default_factory=dict)
    workflows: dict[str, WorkflowTimes] = field(default_factory=dict)
    started_at: float = NAN
    ended_at: float = NAN
    cpu_s: dict[str, float] = field(default_factory=dict)
    cpu_wait_s: dict[str, float] = field(default_factory=dict)
    """Seconds each process was runnable but not running (threads alive at the end)."""
    other_cpu_s: float = NAN
    """CPU seconds of every process not of this stack (other users of the machine)."""
    machine_busy: float = NAN
    counters: ServerCounters = field(default_factory=ServerCounters)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    start_rss_mb: dict[str, float] = field(default_factory=dict)
    rss_reset: bool = False
    watch_errors: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at

    def valid(self) -> list[str]:
        return [n for n, s in self.seen.items() if not math.isnan(s.valid_at)]


def progress_line(order_watch: OrderWatch, count: int, elapsed_s: float, busy: float) -> str:
    states = Counter(s.state or "(none)" for s in order_watch.snapshot().values())
    shown = ", ".join(f"{state} {n}" for state, n in sorted(states.items()))
    return f"  {elapsed_s:6.1f}s  of {count}: {shown}  (machine busy {busy:.0%})"


def wait_for_orders(order_watch: OrderWatch, count: int, started: float, timeout_s: float) -> None:
    """Block until every Order is final or the timeout passed; say how far it got."""
    deadline = time.monotonic() + timeout_s
    last = cpu_sample({})
    while not order_watch.all_final.wait(PROGRESS_EVERY_S):
        now = cpu_sample({})
        busy = (now.machine_busy - last.machine_busy) / max(
            1e-9, now.machine_total - last.machine_total
        )
        last = now
        print(progress_line(order_watch, count, time.time() - started, busy), flush=True)
        if time.monotonic() > deadline:
            print(f"  timed out after {timeout_s:.0f}s", flush=True)
            return


class CpuFigures(Protocol):
    """What ``record_cpu`` fills: the runs of both Kubernetes benchmarks have these."""

    cpu_s: dict[str, float]
    other_cpu_s: float
    machine_busy: float


def record_cpu(run: CpuFigures, before: CpuSample, after: CpuSample) -> None:
    run.cpu_s = {n: after.by_process[n] - before.by_process[n] for n in before.by_process}
    busy_s = after.machine_busy - before.machine_busy
    run.other_cpu_s = busy_s - sum(run.cpu_s.values())
    run.machine_busy = busy_s / max(1e-9, after.machine_total - before.machine_total)


def create_and_watch(
    kube: Kube, namespace: str, manifests: list[dict[str, Any]], run: Run, timeout_s: float
) -> OrderWatch:
    """Create the Orders with a watch already open; return once all are final (or not)."""
    order_watch = OrderWatch(kube, namespace, len(manifests))
    order_watch.start()
    run.started_at = time.time()
    try:
        run.created = create_orders(kube, namespace, manifests, CREATE_THREADS)
        failed = sum(1 for c in run.created.values() if c.error)
        print(
            f"  {time.time() - run.started_at:6.1f}s  {len(manifests) - failed} Orders created, "
            f"{failed} failed",
            flush=True,
        )
        wait_for_orders(order_watch, len(manifests) - failed, run.started_at, timeout_s)
    finally:
        order_watch.stop()
    return order_watch


def measure(
    stack: StackInfo, kube: Kube, namespace: str, run_id: str, *, count: int, timeout_s: float
) -> Run:
    manifests = order_manifests(namespace, run_id, count)  # CSRs made before timing
    pids = {**stack_pids(stack), "bench": os.getpid()}
    run = Run(orders=count)
    counters = scrape_counters(stack, kube)
    run.start_rss_mb = {n: (proc_status_kb(pids[n], "VmRSS") or 0) / 1024 for n in COMPONENTS}
    run.rss_reset = all([reset_peak_rss(pids[n]) for n in COMPONENTS if n in pids])
    waited = {n: cpu_wait_s(pid) for n, pid in pids.items()}
    before = cpu_sample(pids)
    order_watch = create_and_watch(kube, namespace, manifests, run, timeout_s)
    after = cpu_sample(pids)
    run.cpu_wait_s = {n: cpu_wait_s(pid) - waited[n] for n, pid in pids.items()}
    run.seen = order_watch.snapshot()
    run.watch_errors = list(order_watch.errors)
    run.ended_at = max([s.valid_at for s in run.seen.values() if s.valid_at > 0] or [time.time()])
    record_cpu(run, before, after)
    run.peak_rss_mb = {n: (proc_status_kb(pids[n], "VmHWM") or 0) / 1024 for n in COMPONENTS}
    run.counters = counters_increase(counters, scrape_counters(stack, kube))
    run.workflows = asyncio.run(fetch_workflow_times(stack, namespace, list(run.created)))
    return run


def benchmark(stack: StackInfo, *, count: int, timeout_s: float) -> Run:
    run_id = uuid.uuid4().hex[:6]
    namespace = f"bench-{run_id}"
    kube = kube_clients(stack, connections=CREATE_THREADS + 4)
    print(
        f"run {run_id}: {count} Orders in namespace {namespace}; Pebble "
        f"{stack.acme_directory_url}, Temporal {stack.temporal_address}",
        flush=True,
    )
    try:
        create_namespace(kube, namespace, stack)
        return measure(stack, kube, namespace, run_id, count=count, timeout_s=timeout_s)
    finally:
        gone = delete_namespace(kube, namespace)
        print(f"namespace {namespace} {'deleted' if gone else 'still terminating'}", flush=True)


# -- reporting -------------------------------------------------------------------------


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else NAN


def p95(values: list[float]) -> float:
    return percentile(values, 0.95)


def known(values: list[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def spans(run: Run, span: Callable[[str], float]) -> list[float]:
    """One interval per valid Order that has a history (NaN intervals left out)."""
    values = []
    for name in run.valid():
        with contextlib.suppress(KeyError):
            values.append(span(name))
    return known(values)


def final_publish(run: Run, name: str) -> Publish:
    publish = run.workflows[name].final_publish
    if publish is None:
        raise KeyError(name)
    return publish


TO_VALID = "time to valid (create acknowledged -> watch saw valid)"
START_LAG = "  bridge start lag (create acknowledged -> workflow started)"
BRIDGE_LAG = "  bridge lag (decided valid -> watch saw valid)"


def figures(run: Run) -> dict[str, list[float]]:
    """Intervals in seconds, one per valid Order, by what they measure."""
    created = {n: c.created_at for n, c in run.created.items()}
    seen = {n: s.valid_at for n, s in run.seen.items()}
    flows = run.workflows
    return {
        TO_VALID: spans(run, lambda n: seen[n] - created[n]),
        START_LAG: spans(run, lambda n: flows[n].started - created[n]),
        "  workflow (started -> decided valid)": spans(
            run, lambda n: flows[n].decided - flows[n].started
        ),
        BRIDGE_LAG: spans(run, lambda n: seen[n] - flows[n].decided),
        "    decided -> final publish scheduled (earlier publish in flight)": spans(
            run, lambda n: final_publish(run, n).scheduled - flows[n].decided
        ),
        "    final publish scheduled -> started (bridge task queue)": spans(
            run, lambda n: final_publish(run, n).started - final_publish(run, n).scheduled
        ),
        "    final publish started -> watch saw valid (bridge writes, watch)": spans(
            run, lambda n: seen[n] - final_publish(run, n).started
        ),
        "download_certificate completed -> decided (workflow task)": spans(
            run, lambda n: flows[n].decided - flows[n].download_completed
        ),
        "authorizations read -> present scheduled (_flush: Challenges created)": spans(
            run, lambda n: flows[n].presenting - flows[n].authorizations_read
        ),
        "create request round trip": known(
            [c.created_at - c.sent_at for c in run.created.values()]
        ),
    }


def publish_figures(run: Run) -> dict[str, list[float]]:
    """Every ``publish_order_progress`` of every Order: queueing and duration."""
    publishes = [p for flow in run.workflows.values() for p in flow.publishes]
    return {
        "publish: scheduled -> started (all)": known([p.started - p.scheduled for p in publishes]),
        "publish: started -> completed (all)": known([p.completed - p.started for p in publishes]),
    }


def print_intervals(title: str, intervals: dict[str, list[float]], width: int = 70) -> None:
    print(title)
    for label, values in intervals.items():
        print(
            f"  {label:<{width}} p50 {p50(values):7.3f}s  p95 {p95(values):7.3f}s  "
            f"max {max(values, default=NAN):7.3f}s  n={len(values)}"
        )


def print_breakdown(run: Run) -> None:
    flows = [run.workflows[n] for n in run.valid() if n in run.workflows]
    totals_: dict[str, float] = defaultdict(float)
    for flow in flows:
        for label, seconds in flow.breakdown.items():
            totals_[label] += seconds / len(flows)
    print(
        "inside the workflows, mean ms per order (bench/orders.py's history breakdown; "
        "intervals overlap, so 'other' goes negative):"
    )
    for label, seconds in sorted(totals_.items(), key=lambda item: -item[1]):
        print(f"  {seconds * 1000:9.1f}  {label}")


def mean_of(values: list[int] | list[float]) -> float:
    return statistics.mean(values) if values else NAN


def print_history_counts(run: Run) -> None:
    flows = list(run.workflows.values())
    publishes = [len(f.publishes) for f in flows]
    activities = [sum(f.activities.values()) - len(f.publishes) for f in flows]
    print(
        f"history per order: {mean_of([f.events for f in flows]):.1f} events, "
        f"{mean_of([f.workflow_tasks for f in flows]):.1f} workflow tasks (of which "
        f"{mean_of([f.publish_woken_tasks for f in flows]):.1f} woken only by a publish "
        "completing), "
        f"{mean_of(activities):.1f} ACME/solver activities, "
        f"{mean_of(publishes):.1f} publish_order_progress of which "
        f"{mean_of([f.idle_publishes for f in flows]):.1f} carried nothing the bridge writes "
        "(only version/step changed)"
    )


def print_top(
    title: str, counts: dict[str, float], per: int, *, unit: str = "", top: int = 12
) -> None:
    print(title)
    for key, value in sorted(counts.items(), key=lambda item: -item[1])[:top]:
        print(f"  {value / max(1, per):9.2f}{unit}  {key}")


def print_task_queues(counters: ServerCounters) -> None:
    print("Temporal task queues: tasks started, mean schedule-to-start, share matched at once:")
    for queue, started in sorted(counters.tasks_started.items(), key=lambda item: -item[1]):
        waited = counters.schedule_to_start_s.get(queue, 0.0) / started
        polls = counters.polls.get(queue, 0.0)
        synced = counters.sync_polls.get(queue, 0.0) / polls if polls else NAN
        print(f"  {started:7.0f}  {waited:7.3f}s  {synced:5.0%}  {queue}")


def print_counters(run: Run) -> None:
    counters, n = run.counters, run.orders
    print("kube-apiserver requests per order (all clients), mean latency:")
    for key, count in sorted(counters.requests.items(), key=lambda item: -item[1])[:12]:
        latency = counters.request_s.get(key, NAN) / count
        print(f"  {count / max(1, n):9.2f}  {latency:7.3f}s  {key}")
    for resource, fetched in sorted(counters.list_fetched.items(), key=lambda item: -item[1])[:3]:
        print(
            f"  LISTs of {resource} read {fetched:.0f} objects from etcd to return "
            f"{counters.list_returned.get(resource, 0):.0f}"
        )
    print_top("kube-apiserver watch events sent per order:", counters.watch_events, n, top=6)
    kib = {k: v / 1024 for k, v in counters.watch_bytes.items()}
    print_top("kube-apiserver watch event bytes per order:", kib, n, unit=" KiB", top=6)
    print_top("Temporal persistence calls per order:", counters.persistence_calls, n, top=8)
    print_top(
        "Temporal persistence time per order (sum of call latencies):",
        counters.persistence_s,
        n,
        unit=" s",
        top=8,
    )
    print(
        f"  all persistence calls: {sum(counters.persistence_s.values()):.1f} s of latency "
        f"in {run.wall_s:.1f} s (Temporal's SQLite plugin: one connection unless MaxConns is set)"
    )
    print_task_queues(counters)


def print_cpu(run: Run) -> None:
    cores = os.cpu_count() or 1
    total = sum(run.cpu_s.values())
    print(
        f"CPU during the run ({run.wall_s:.1f}s x {cores} cores, machine busy "
        f"{run.machine_busy:.0%}): stack {total:.1f} s = {1000 * total / max(1, run.orders):.0f} "
        f"ms per order; other processes on the machine {run.other_cpu_s:.1f} s"
    )
    print("  CPU s, waiting for a CPU s (runnable, not running), by process:")
    for name, used in sorted(run.cpu_s.items(), key=lambda item: -item[1]):
        if used >= 0.05:
            print(f"  {used:7.1f} {run.cpu_wait_s.get(name, NAN):7.1f}  {name}")


def print_failures(run: Run) -> None:
    for name, created in run.created.items():
        seen = run.seen.get(name, OrderSeen())
        if created.error or math.isnan(seen.valid_at):
            shown = created.error or f"state {seen.state or '(none)'}: {seen.reason}"
            print(f"  not valid: {name}: {shown}")
    listed = [n for n, s in run.seen.items() if s.listed]
    if run.watch_errors or listed:
        print(f"  watch broke {len(run.watch_errors)}x; {len(listed)} states seen by listing")
        for error in run.watch_errors[:3]:
            print(f"    {error[:300]}")


def summary(run: Run) -> dict[str, Any]:
    intervals = figures(run)
    to_valid, lag, start_lag = intervals[TO_VALID], intervals[BRIDGE_LAG], intervals[START_LAG]
    flows = list(run.workflows.values())
    valid = len(run.valid())
    return {
        "orders": run.orders,
        "valid": valid,
        "not_valid": run.orders - valid,
        "time_to_valid_p50_s": round(p50(to_valid), 3),
        "time_to_valid_p95_s": round(p95(to_valid), 3),
        "bridge_lag_p50_s": round(p50(lag), 3),
        "bridge_lag_p95_s": round(p95(lag), 3),
        "bridge_start_lag_p50_s": round(p50(start_lag), 3),
        "bridge_start_lag_p95_s": round(p95(start_lag), 3),
        "wall_s": round(run.wall_s, 2),
        "orders_per_s": round(valid / run.wall_s, 3) if run.wall_s > 0 else NAN,
        "bridge_peak_rss_mb": round(run.peak_rss_mb.get("acmeflow-bridge", NAN), 1),
        "worker_peak_rss_mb": round(run.peak_rss_mb.get("acmeflow-worker", NAN), 1),
        "peak_rss_reset": run.rss_reset,
        "stack_cpu_ms_per_order": round(1000 * sum(run.cpu_s.values()) / max(1, run.orders)),
        "publishes_per_order": round(mean_of([len(f.publishes) for f in flows]), 2),
        "idle_publishes_per_order": round(mean_of([f.idle_publishes for f in flows]), 2),
        "apiserver_requests_per_order": round(
            sum(run.counters.requests.values()) / max(1, run.orders), 1
        ),
        "machine_busy": round(run.machine_busy, 3),
        "other_cpu_s": round(run.other_cpu_s, 1),
        "cpu_s": {n: round(s, 1) for n, s in run.cpu_s.items()},
        "cpu_wait_s": {n: round(s, 1) for n, s in run.cpu_wait_s.items()},
    }


def report(run: Run) -> None:
    figures_ = summary(run)
    print(
        f"{figures_['valid']} of {run.orders} Orders valid in {figures_['wall_s']:.1f}s "
        f"(first create to last valid) = {figures_['orders_per_s']:.2f}/s; "
        f"{figures_['not_valid']} not valid"
    )
    print_failures(run)
    print_intervals("per Order (epoch clocks of this machine):", figures(run))
    print_intervals("per progress snapshot:", publish_figures(run))
    print_breakdown(run)
    print_history_counts(run)
    print_counters(run)
    print_cpu(run)
    since = "during the run" if run.rss_reset else "since start (reset not permitted)"
    print(
        f"peak RSS (VmHWM) {since}: bridge {figures_['bridge_peak_rss_mb']:.1f} MB, "
        f"worker {figures_['worker_peak_rss_mb']:.1f} MB (RSS at the start: bridge "
        f"{run.start_rss_mb.get('acmeflow-bridge', NAN):.1f} MB, "
        f"worker {run.start_rss_mb.get('acmeflow-worker', NAN):.1f} MB)"
    )
    print(json.dumps(figures_))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100, help="Orders created at once")
    parser.add_argument("--state-dir", type=Path, help="use this stack (acmeflow dev up)")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="give up waiting after")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_term)  # so the namespace and the stack go
    with acmeflow_stack(args.state_dir) as stack:
        run = benchmark(stack, count=args.orders, timeout_s=args.timeout_s)
    report(run)
    return 0


def _exit_on_term(*_: object) -> None:
    raise SystemExit(143)


if __name__ == "__main__":
    sys.exit(main())
