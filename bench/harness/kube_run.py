"""One Kubernetes benchmark run: N objects created at once in a fresh namespace, watched.

On a stack whose ``acmeflow worker`` and ``acmeflow bridge`` run as ``acmeflow dev up``
runs them, a ``KubeScenario`` says what to create and what "done" means; ``run_benchmark``
makes the namespace, lets the scenario prepare it, then measures around the creates:

- the server counters before and after (``server_counters``), the RSS of every stack
  process at the start, its peak (the high-water mark reset through ``clear_refs`` first,
  when permitted) and after the run, the bridge's and the worker's RSS at every progress
  line;
- CPU seconds of every stack process and of this script, how long each waited for a CPU,
  and every other process's share of the machine;
- when each object was sent, acknowledged and first seen in each state (a watch opened
  before the first create), and afterwards each object's workflow history.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from temporalio.client import Client

from harness.acmeflow_api import StackInfo, crds
from harness.figures import NAN, Span, known
from harness.histories import Publish, fetch_each
from harness.kube import (
    Created,
    Kube,
    ResourceWatch,
    Seen,
    Watched,
    create_all,
    kube_clients,
    run_namespace,
)
from harness.processes import (
    cpu_sample,
    cpu_wait_s,
    machine_busy,
    record_cpu,
    reset_peak_rss,
    rss_mb,
)
from harness.server_counters import ServerCounters, scrape_counters
from harness.stack import COMPONENTS, stack_pids

T = TypeVar("T")
BENCH = "bench"
"""This script's name among the processes whose CPU is measured."""


class KubeScenario(ABC, Generic[T]):
    """What a Kubernetes benchmark creates, what "done" means, and what it reads after."""

    watched: ClassVar[Watched]
    noun: ClassVar[str]
    """What it creates, plural, as progress lines say: ``Orders``."""
    described: ClassVar[str]
    """The same with what the run's header line adds: ``Certificates (ECDSA P-256 keys)``."""
    progress_every_s: ClassVar[float] = 5.0
    gone_timeout_s: ClassVar[float] = 120.0
    """How long the namespace may take to go after the run."""

    def prepare(self, kube: Kube, namespace: str, run_id: str) -> None:
        """Make the namespace ready beyond its Issuer, before anything is measured."""

    @abstractmethod
    def objects(self, namespace: str, run_id: str, count: int) -> list[crds.KubeResource]:
        """The objects the run creates at once (made before timing starts)."""

    @abstractmethod
    async def workflow_times(self, temporal: Client, namespace: str, name: str) -> T:
        """What the figures use of the workflow history of the object ``name``."""


@dataclass
class KubeRun(Generic[T]):
    """Everything measured in one run."""

    count: int
    created: dict[str, Created] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    workflows: dict[str, T] = field(default_factory=dict)
    started_at: float = NAN
    ended_at: float = NAN
    """When the last object succeeded (or when waiting ended, if none did)."""
    timed_out: bool = False
    cpu_s: dict[str, float] = field(default_factory=dict)
    cpu_wait_s: dict[str, float] = field(default_factory=dict)
    """Seconds each process was runnable but not running (threads alive at the end)."""
    other_cpu_s: float = NAN
    """CPU seconds of every process not of this stack nor this script (other sessions)."""
    machine_busy: float = NAN
    counters: ServerCounters = field(default_factory=ServerCounters)
    start_rss_mb: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    after_rss_mb: dict[str, float] = field(default_factory=dict)
    """RSS once the run and the history fetches are over (the workflows waiting)."""
    rss_samples: list[tuple[float, int, float, float]] = field(default_factory=list)
    """(seconds, succeeded so far, bridge MB, worker MB) at every progress line."""
    rss_reset: bool = False
    watch_errors: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at

    def succeeded(self) -> list[str]:
        return [n for n, s in self.seen.items() if not math.isnan(s.succeeded_at)]

    def in_state(self, state: str) -> list[str]:
        return [n for n, s in self.seen.items() if s.state == state]

    def stack_cpu_s(self) -> float:
        """CPU seconds of the stack's processes, this script's left out."""
        return sum(s for n, s in self.cpu_s.items() if n != BENCH)


def run_benchmark(
    stack: StackInfo, scenario: KubeScenario[T], *, count: int, timeout_s: float
) -> KubeRun[T]:
    """One run of ``count`` objects in a namespace of its own, deleted after."""
    run_id = uuid.uuid4().hex[:6]
    namespace = f"bench-{run_id}"
    kube = kube_clients(stack)
    print(
        f"run {run_id}: {count} {scenario.described} in namespace {namespace}; "
        f"Pebble {stack.acme_directory_url}, Temporal {stack.temporal_address}",
        flush=True,
    )
    with run_namespace(kube, stack, namespace, gone_timeout_s=scenario.gone_timeout_s):
        scenario.prepare(kube, namespace, run_id)
        objects = scenario.objects(namespace, run_id, count)
        return _measure(stack, kube, scenario, objects, namespace=namespace, timeout_s=timeout_s)


def _measure(
    stack: StackInfo,
    kube: Kube,
    scenario: KubeScenario[T],
    objects: list[crds.KubeResource],
    *,
    namespace: str,
    timeout_s: float,
) -> KubeRun[T]:
    stack_only = stack_pids(stack)
    pids = {**stack_only, BENCH: os.getpid()}
    run: KubeRun[T] = KubeRun(count=len(objects))
    counters = scrape_counters(stack, kube)
    run.start_rss_mb = rss_mb(stack_only, "VmRSS")
    run.rss_reset = all([reset_peak_rss(pid) for pid in stack_only.values()])
    waited = {n: cpu_wait_s(pid) for n, pid in pids.items()}
    before = cpu_sample(pids)
    watch = ResourceWatch(
        kube, namespace, scenario.watched, frozenset(o.metadata.name for o in objects)
    )
    watch.start()  # before the first create, so that no state goes unseen
    try:
        _create(kube, objects, run, watch, noun=scenario.noun)
        _wait_for_final(watch, run, pids, every_s=scenario.progress_every_s, timeout_s=timeout_s)
    finally:
        watch.stop()
    after = cpu_sample(pids)
    run.cpu_wait_s = {n: cpu_wait_s(pid) - waited[n] for n, pid in pids.items()}
    run.peak_rss_mb = rss_mb(stack_only, "VmHWM")
    run.seen = watch.snapshot()
    run.watch_errors = list(watch.errors)
    done = [s.succeeded_at for s in run.seen.values() if s.succeeded_at > 0]
    run.ended_at = max(done or [time.time()])
    record_cpu(run, before, after)
    run.counters = counters.increase_to(scrape_counters(stack, kube))

    async def times(temporal: Client, name: str) -> T:
        return await scenario.workflow_times(temporal, namespace, name)

    run.workflows = asyncio.run(fetch_each(stack, list(run.created), times))
    run.after_rss_mb = rss_mb(stack_only, "VmRSS")
    return run


def _create(
    kube: Kube,
    objects: list[crds.KubeResource],
    run: KubeRun[T],
    watch: ResourceWatch,
    *,
    noun: str,
) -> None:
    run.started_at = time.time()
    run.created = create_all(kube, objects)
    refused = sum(1 for c in run.created.values() if c.error)
    print(
        f"  {time.time() - run.started_at:6.1f}s  {len(objects) - refused} {noun} created, "
        f"{refused} refused",
        flush=True,
    )
    watch.expect(len(objects) - refused)


def _wait_for_final(
    watch: ResourceWatch,
    run: KubeRun[T],
    pids: dict[str, int],
    *,
    every_s: float,
    timeout_s: float,
) -> None:
    """Block until every object is final or the timeout passed; say how far it got."""
    deadline = time.monotonic() + timeout_s
    last = cpu_sample({})
    while not watch.all_final.wait(every_s):
        now = cpu_sample({})
        print(_progress_line(watch, run, pids, machine_busy(last, now)), flush=True)
        last = now
        if time.monotonic() > deadline:
            print(f"  timed out after {timeout_s:.0f}s", flush=True)
            run.timed_out = True
            return


def _progress_line(watch: ResourceWatch, run: KubeRun[T], pids: dict[str, int], busy: float) -> str:
    seen = watch.snapshot()
    states = Counter(s.state or "(no status)" for s in seen.values())
    states["(not seen)"] = run.count - len(seen)
    shown = ", ".join(f"{state} {n}" for state, n in sorted(states.items()) if n)
    now = rss_mb({n: pids[n] for n in COMPONENTS if n in pids}, "VmRSS")
    bridge, worker = now.get("acmeflow-bridge", NAN), now.get("acmeflow-worker", NAN)
    elapsed = time.time() - run.started_at
    succeeded = sum(1 for s in seen.values() if not math.isnan(s.succeeded_at))
    run.rss_samples.append((elapsed, succeeded, bridge, worker))
    return (
        f"  {elapsed:6.1f}s  of {run.count}: {shown}  (machine busy {busy:.0%}; "
        f"RSS bridge {bridge:.0f} MB, worker {worker:.0f} MB)"
    )


# -- reporting -------------------------------------------------------------------------


class Decided(Protocol):
    """What the shared figures read of a resource's workflow."""

    @property
    def started(self) -> float: ...

    @property
    def decided(self) -> float:
        """The workflow task that decided the state the run waits for."""

    @property
    def final_publish(self) -> Publish | None:
        """The publish that carried that state to the bridge."""


D = TypeVar("D", bound=Decided)


def arrival_spans(run: KubeRun[D], *, to_success: str, start_lag: str) -> dict[str, Span]:
    """Create acknowledged -> the watch saw success, and -> the workflow started."""
    created = {n: c.created_at for n, c in run.created.items()}
    flows = run.workflows
    return {
        to_success: lambda n: run.seen[n].succeeded_at - created[n],
        start_lag: lambda n: flows[n].started - created[n],
    }


def bridge_lag_label(succeeded: str) -> str:
    return f"  bridge lag (decided {succeeded} -> watch saw {succeeded})"


def bridge_lag_spans(run: KubeRun[D], succeeded: str) -> dict[str, Span]:
    """The workflow decided ``succeeded`` -> the watch saw it, and the parts of that lag.

    When an earlier snapshot is still being published, the final one waits for it: the
    observer being slow, so it counts as bridge lag.
    """
    seen = {n: s.succeeded_at for n, s in run.seen.items()}
    flows = run.workflows

    def final(name: str) -> Publish:
        publish = flows[name].final_publish
        if publish is None:
            raise KeyError(f"no publish carried {succeeded}")
        return publish

    return {
        bridge_lag_label(succeeded): lambda n: seen[n] - flows[n].decided,
        "    decided -> final publish scheduled (earlier publish in flight)": (
            lambda n: final(n).scheduled - flows[n].decided
        ),
        "    final publish scheduled -> started (bridge task queue)": (
            lambda n: final(n).started - final(n).scheduled
        ),
        f"    final publish started -> watch saw {succeeded} (bridge writes, watch)": (
            lambda n: seen[n] - final(n).started
        ),
    }


def round_trip_figures(run: KubeRun[T]) -> dict[str, list[float]]:
    """How long each create call took, refused ones left out."""
    return {
        "create request round trip": known([c.created_at - c.sent_at for c in run.created.values()])
    }


def rss_figures(rss_mb: dict[str, float], when: str) -> dict[str, float]:
    """``bridge_<when>_rss_mb`` and ``worker_<when>_rss_mb`` for the JSON line."""
    return {
        f"{component}_{when}_rss_mb": round(rss_mb.get(f"acmeflow-{component}", NAN), 1)
        for component in ("bridge", "worker")
    }


def cpu_figures(run: KubeRun[T]) -> dict[str, Any]:
    """The machine's busy share, other processes' CPU, CPU by process, for the JSON line."""
    return {
        "machine_busy": round(run.machine_busy, 3),
        "other_cpu_s": round(run.other_cpu_s, 1),
        "cpu_s": {n: round(s, 1) for n, s in run.cpu_s.items()},
    }


def print_failures(run: KubeRun[T], succeeded: str) -> None:
    """Each object that did not reach ``succeeded`` and why; how often the watch broke."""
    for name, created in run.created.items():
        seen = run.seen.get(name, Seen())
        if created.error or math.isnan(seen.succeeded_at):
            shown = created.error or f"{seen.state or '(not seen)'}: {seen.message}"
            print(f"  not {succeeded}: {name}: {shown[:300]}")
    listed = [n for n, s in run.seen.items() if s.listed]
    if run.watch_errors or listed:
        print(f"  watch broke {len(run.watch_errors)}x; {len(listed)} states seen by listing")
        for error in run.watch_errors[:3]:
            print(f"    {error[:300]}")


def print_cpu(run: KubeRun[T], *, noun: str, stack_s: float) -> None:
    """CPU of the run by process; ``stack_s``: what the script counts as the stack's."""
    cores = os.cpu_count() or 1
    print(
        f"CPU during the run ({run.wall_s:.1f}s x {cores} cores, machine busy "
        f"{run.machine_busy:.0%}): stack {stack_s:.1f} s = "
        f"{1000 * stack_s / max(1, run.count):.0f} ms per {noun}; this script "
        f"{run.cpu_s.get(BENCH, NAN):.1f} s; other processes on the machine "
        f"{run.other_cpu_s:.1f} s"
    )
    print("  CPU s, waiting for a CPU s (runnable, not running), by process:")
    for name, used in sorted(run.cpu_s.items(), key=lambda item: -item[1]):
        if used >= 0.05:
            print(f"  {used:7.1f} {run.cpu_wait_s.get(name, NAN):7.1f}  {name}")
