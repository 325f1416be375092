"""Order benchmark: acmeflow's ``OrderWorkflow`` against the ``acme`` package's own path.

On one Pebble (``PEBBLE_VA_NOSLEEP=1``), single-name HTTP-01 certificates are issued

(a) one after another (``--sequential N``): per-order latency, median and p95;
(b) all at once (``--concurrent N``): throughput in orders per second,

once through acmeflow (an ``OrderWorkflow`` per order on the stack's Temporal, run by an
``acmeflow worker`` in its own process so its peak RSS is its own) and once through a
plain script: ``ClientV2.new_order`` -> key authorization written into the stack's HTTP-01
store -> ``answer_challenge`` -> ``poll_and_finalize``, one thread per concurrent order.
Both publish tokens in the directory the stack's ``http01-solver`` serves to Pebble.

Throughput counts certificates obtained; failed orders are listed (the plain client
gives up when Pebble rejects a nonce twice in a row). For each phase the CPU seconds of
the worker, this process and the stack's servers are shown beside those of every other
process, since all of them share the machine's cores; for acmeflow the workflow
histories tell where each order's time went. The worker runs with its bytecode cached
(as in an installed image) even where ``PYTHONDONTWRITEBYTECODE`` is set.

For the concurrent acmeflow phase it also shows what each order cost Temporal: workflow
tasks, history events, activity tasks and attempts, markers, timers and history bytes
(which payloads they are), and Temporal's own task queue and persistence counters.
``--profile`` samples the worker with py-spy during that phase and prints where its CPU
went; ``--unsandboxed`` runs the worker's workflow code outside the sandbox
(``bench/unsandboxed_worker.py``), to measure what the sandbox costs.

It prints figures, not verdicts of a test; the last line is one JSON object.

    .venv/bin/python bench/orders.py [--sequential 20] [--concurrent 200] [--state-dir DIR]
                                     [--worker-module MODULE] [--unsandboxed]
                                     [--profile] [--profile-dir DIR]
"""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from acme import challenges, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography.hazmat.primitives.asymmetric import ec
from harness.acmeflow_api import (
    Http01Ingress,
    IssuerConfig,
    OrderInput,
    OrderWorkflow,
    RequestedNames,
    SecretRef,
    SolverConfig,
    StackInfo,
    single_name_csr,
)
from harness.burst_profile import Profile, Recording, print_profile, profile_figures
from harness.figures import NAN, mean_breakdown, mean_of, p50, p95, print_breakdown, print_top
from harness.histories import HISTORY_FETCHES, WORKFLOW_RUN, history_breakdown
from harness.order_costs import RunCosts, total_costs
from harness.processes import cpu_sample, proc_status_kb, record_cpu
from harness.server_counters import (
    GROUPED_BY,
    ServerCounters,
    counters_of,
    parse_samples,
    print_task_queues,
    temporal_metrics,
)
from harness.stack import (
    acmeflow_stack,
    argument_parser,
    print_json_line,
    stack_pids,
    stop_on_sigterm,
)
from josepy.jwa import ES256
from josepy.jwk import JWKEC
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory

LATENCY_TARGET = 1.0
"""acmeflow's median latency may be at most this multiple of the plain client's."""
THROUGHPUT_TARGET = 0.8
"""acmeflow's concurrent throughput must reach this fraction of the plain client's."""
PLAIN_DEADLINE_S = 600.0
"""How long ``poll_and_finalize`` may wait for one plain order."""
ORDER_TIMEOUT_S = 900.0
"""How long the bench waits for one acmeflow order (a hung CA must not hang the bench)."""
WORKER_STOP_TIMEOUT_S = 30.0
WARM_UP_TRIES = 3
WARM_UP_TIMEOUT_S = 120.0
"""The first acmeflow order; longer means the worker is not working (see its log tail)."""
PLAIN_FAILURES = (acme_errors.Error, messages.Error, requests.RequestException)
SERVERS = ("temporal", "pebble", "http01-solver", "bind9")
"""The stack's processes an order here uses (the stack's own worker and bridge idle)."""
BENCH_DIR = Path(__file__).resolve().parent
UNSANDBOXED_WORKER = "unsandboxed_worker"
"""The module under ``bench/`` that runs the worker without the workflow sandbox."""
TEMPORAL_METRICS = {
    m for metrics in GROUPED_BY.values() for m in metrics if not m.startswith("apiserver_")
}
TOP_PAYLOADS = 24
"""Payload kinds and JSON fields printed, and kept in the JSON line, per order."""


# -- the orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRequest:
    """One single-name order; the CSR is made before timing starts."""

    name: str
    csr_pem: str


def order_requests(run: str, label: str, count: int) -> list[OrderRequest]:
    names = [f"bench-{run}-{label}-{i}.example.com" for i in range(count)]
    return [OrderRequest(name, single_name_csr(name)) for name in names]


# -- measuring -------------------------------------------------------------------------


@dataclass
class Phase:
    """What one client did in one phase."""

    client: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    other_cpu_s: float = 0.0
    """CPU seconds of every process not watched (other users of the machine)."""
    machine_busy: float = 0.0
    breakdown: dict[str, float] = field(default_factory=dict)
    costs: RunCosts | None = None
    """What the phase's workflow runs cost Temporal, from their histories (acmeflow)."""
    temporal_counters: ServerCounters | None = None
    """Temporal's own counters, how much each grew during the phase (acmeflow, at once)."""
    profile: Profile | None = None
    """The worker's CPU by function, sampled during the phase (``--profile``)."""

    @property
    def p50(self) -> float:
        return p50(self.latencies)

    @property
    def p95(self) -> float:
        return p95(self.latencies)

    @property
    def per_s(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else NAN

    @property
    def cpu_ms_per_order(self) -> float:
        """CPU of every watched process (worker, bench, stack servers) per order issued."""
        return 1000 * sum(self.cpu_s.values()) / max(1, len(self.latencies))


def record(phase: Phase, pids: dict[str, int], run: Callable[[], list[float | str]]) -> Phase:
    """Run the phase: each outcome is a latency in seconds or a failure message."""
    before = cpu_sample(pids)
    started = time.monotonic()
    outcomes = run()
    phase.wall_s = time.monotonic() - started
    after = cpu_sample(pids)
    phase.latencies = [o for o in outcomes if isinstance(o, float)]
    phase.failures = [o for o in outcomes if isinstance(o, str)]
    record_cpu(phase, before, after)
    return phase


# -- the plain client ------------------------------------------------------------------


class PlainOrders:
    """The ``acme`` package's convenience path, one client (and session) per thread."""

    def __init__(self, stack: StackInfo) -> None:
        self._store = stack.http01_store
        self._verify: Any = str(stack.acme_ca_bundle)  # requests takes a bundle path
        self._key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self._local = threading.local()
        net = self._network(None)
        self._directory = acme_client.ClientV2.get_directory(stack.acme_directory_url, net)
        registration = messages.NewRegistration.from_data(terms_of_service_agreed=True)
        self._account = self._register(acme_client.ClientV2(self._directory, net), registration)

    @staticmethod
    def _register(
        client: acme_client.ClientV2, registration: messages.NewRegistration
    ) -> messages.RegistrationResource:
        """Pebble rejects 5% of nonces and ``acme`` retries once: a few tries, as the warm-up."""
        for _ in range(WARM_UP_TRIES - 1):
            try:
                return client.new_account(registration)
            except messages.Error as error:
                if error.code != "badNonce":
                    raise
        return client.new_account(registration)

    def _network(self, account: messages.RegistrationResource | None) -> acme_client.ClientNetwork:
        return acme_client.ClientNetwork(
            self._key, account=account, alg=ES256, verify_ssl=self._verify, user_agent="bench"
        )

    def _client(self) -> acme_client.ClientV2:
        client: acme_client.ClientV2 | None = getattr(self._local, "client", None)
        if client is None:
            client = acme_client.ClientV2(self._directory, self._network(self._account))
            self._local.client = client
        return client

    def issue(self, request: OrderRequest) -> float | str:
        started = time.monotonic()
        client = self._client()
        published: list[Path] = []
        try:
            order = client.new_order(request.csr_pem.encode())
            for authorization in order.authorizations:
                challenge = next(
                    c
                    for c in authorization.body.challenges
                    if isinstance(c.chall, challenges.HTTP01)
                )
                response, key_authorization = challenge.chall.response_and_validation(self._key)
                token_file = self._store / challenge.chall.encode("token")
                token_file.write_text(key_authorization)
                published.append(token_file)
                client.answer_challenge(challenge, response)
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=PLAIN_DEADLINE_S)
            done = client.poll_and_finalize(order, deadline)
        except PLAIN_FAILURES as error:
            return f"{request.name}: {type(error).__name__}: {error}"
        finally:
            for token_file in published:
                token_file.unlink(missing_ok=True)
        if not done.fullchain_pem:
            return f"{request.name}: no certificate"
        return time.monotonic() - started


def plain_sequential(plain: PlainOrders, orders: list[OrderRequest]) -> list[float | str]:
    return [plain.issue(order) for order in orders]


def plain_concurrent(plain: PlainOrders, orders: list[OrderRequest]) -> list[float | str]:
    with ThreadPoolExecutor(max_workers=len(orders)) as pool:
        return list(pool.map(plain.issue, orders))


# -- acmeflow --------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """``acmeflow worker`` as its own process, configured for the stack's solver and DNS."""

    process: subprocess.Popen[bytes]
    task_queue: str
    log_path: Path

    @classmethod
    def start(
        cls, stack: StackInfo, *, task_queue: str, module: str, work_dir: Path
    ) -> WorkerProcess:
        argv = [
            sys.executable,
            *("-m", module, "worker"),
            *("--temporal-address", stack.temporal_address),
            *("--temporal-namespace", stack.temporal_namespace),
            *("--task-queue", task_queue),
            *("--http01-store-dir", str(stack.http01_store)),
            *("--self-check-resolver", stack.dns_address),
            *("--self-check-http01-port", str(stack.http01_port)),
            *("--self-check-dns-port", str(stack.ports.dns)),
        ]
        # Bytecode cached as in an installed image, even where PYTHONDONTWRITEBYTECODE is
        # set: the sandbox imports the workflow module anew for every workflow run.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work_dir / "pycache")
        # Bench-only worker modules (``--unsandboxed``) live beside this script.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
        log_path = work_dir / "worker.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        return cls(process, task_queue, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of the worker's resident set (VmHWM)."""
        peak_kb = proc_status_kb(self.pid, "VmHWM")
        return NAN if peak_kb is None else peak_kb / 1024

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def acmeflow_issuer(stack: StackInfo, account_key: Path) -> IssuerConfig:
    return IssuerConfig(
        name="bench",
        server=stack.acme_directory_url,
        account_key=SecretRef(path=str(account_key)),
        ca_bundle_pem=stack.acme_ca_bundle.read_text(),
        solvers=[SolverConfig(http01=Http01Ingress())],
    )


class AcmeflowOrders:
    """Starts one ``OrderWorkflow`` per order and waits for its certificate."""

    def __init__(self, client: Client, issuer: IssuerConfig, task_queue: str) -> None:
        self._client = client
        self._issuer = issuer
        self._task_queue = task_queue

    async def issue(self, request: OrderRequest) -> float | str:
        started = time.monotonic()
        order = OrderInput(
            order_name=request.name,
            issuer=self._issuer,
            request=request.csr_pem,
            names=RequestedNames(dns_names=[request.name]),
        )
        run = self._client.execute_workflow(
            OrderWorkflow.run, order, id=workflow_id(request), task_queue=self._task_queue
        )
        try:
            result = await asyncio.wait_for(run, ORDER_TIMEOUT_S)
        except WorkflowFailureError as failure:
            return f"{request.name}: {getattr(failure.cause, 'message', failure.cause)}"
        except TimeoutError:
            return f"{request.name}: no result within {ORDER_TIMEOUT_S:.0f}s"
        if not result.certificate:
            return f"{request.name}: no certificate"
        return time.monotonic() - started

    async def histories(self, orders: list[OrderRequest]) -> list[WorkflowHistory]:
        """Each order's workflow history, a few fetched at once."""
        limit = asyncio.Semaphore(HISTORY_FETCHES)

        async def one(order: OrderRequest) -> WorkflowHistory:
            async with limit:
                return await self._client.get_workflow_handle(workflow_id(order)).fetch_history()

        return list(await asyncio.gather(*(one(order) for order in orders)))


def time_spent(histories: list[WorkflowHistory]) -> dict[str, float]:
    """Mean seconds per order of each kind of interval, read from the histories."""
    return mean_breakdown([history_breakdown(history) for history in histories])


def workflow_id(request: OrderRequest) -> str:
    return f"bench/{request.name}"


async def acmeflow_sequential(
    acmeflow: AcmeflowOrders, orders: list[OrderRequest]
) -> list[float | str]:
    return [await acmeflow.issue(order) for order in orders]


async def acmeflow_concurrent(
    acmeflow: AcmeflowOrders, orders: list[OrderRequest]
) -> list[float | str]:
    return list(await asyncio.gather(*(acmeflow.issue(order) for order in orders)))


CLIENT_SIDE = "client: start workflow + get result"
"""The part of an order's latency outside its workflow history, beside the breakdown."""


# -- the run ---------------------------------------------------------------------------


@dataclass
class Results:
    sequential: dict[str, Phase] = field(default_factory=dict)
    concurrent: dict[str, Phase] = field(default_factory=dict)
    worker_peak_rss_mb: float = 0.0
    worker_module: str = ""


@dataclass
class Contenders:
    """Both clients, ready, and the processes whose CPU time each phase reports."""

    plain: PlainOrders
    acmeflow: AcmeflowOrders
    worker: WorkerProcess
    loop: asyncio.AbstractEventLoop
    pids: dict[str, int]
    stack: StackInfo
    work_dir: Path
    profile: bool = False
    """Sample the worker with py-spy during the concurrent acmeflow phase."""
    profile_dir: Path | None = None
    """Where py-spy's collapsed stacks are kept (else the run's temporary directory)."""

    def warm_up(self, run: str) -> None:
        """One order each, not measured: registers the accounts, proves the worker works."""
        # Pebble rejects 5% of nonces; ``acme`` retries once, so a warm-up may fail by chance.
        for order in order_requests(run, "pw", WARM_UP_TRIES):
            plain = self.plain.issue(order)
            if not isinstance(plain, str):
                break
        first = self.acmeflow.issue(order_requests(run, "aw", 1)[0])
        try:
            flow = self.loop.run_until_complete(asyncio.wait_for(first, WARM_UP_TIMEOUT_S))
        except TimeoutError:
            flow = f"no result within {WARM_UP_TIMEOUT_S:.0f}s"
        for client, outcome in (("plain", plain), ("acmeflow", flow)):
            if isinstance(outcome, str):
                raise SystemExit(
                    f"warm-up order through {client} failed: {outcome}\n"
                    f"worker log tail:\n{self.worker.log_tail()}"
                )
        print(f"warm-up: plain {plain:.2f}s, acmeflow {flow:.2f}s", flush=True)

    def measure(
        self, mode: str, plain_orders: list[OrderRequest], flow_orders: list[OrderRequest]
    ) -> dict[str, Phase]:
        at_once = mode == "concurrent"
        plain_run = plain_concurrent if at_once else plain_sequential
        flow_run = acmeflow_concurrent if at_once else acmeflow_sequential
        plain = record(Phase("plain"), self.pids, lambda: plain_run(self.plain, plain_orders))
        print_phase(mode, plain)
        counters_before = temporal_counters(self.stack) if at_once else None
        recording = (
            Recording.start(self.worker.pid, self.profile_dir or self.work_dir, "worker-burst")
            if at_once and self.profile
            else None
        )
        try:
            flow = record(
                Phase("acmeflow"),
                self.pids,
                lambda: self.loop.run_until_complete(flow_run(self.acmeflow, flow_orders)),
            )
        finally:
            profile = recording.stop() if recording is not None else None
        flow.profile = profile
        if counters_before is not None:
            flow.temporal_counters = counters_before.increase_to(temporal_counters(self.stack))
        histories = self.loop.run_until_complete(self.acmeflow.histories(flow_orders))
        flow.breakdown = time_spent(histories)
        flow.costs = total_costs(histories)
        if flow.latencies:
            flow.breakdown[CLIENT_SIDE] = mean_of(flow.latencies) - flow.breakdown[WORKFLOW_RUN]
        print_phase(mode, flow)
        return {"plain": plain, "acmeflow": flow}


def temporal_counters(stack: StackInfo) -> ServerCounters:
    """Temporal's counters now (task queues, persistence); empty if it did not answer."""
    try:
        return counters_of(parse_samples(temporal_metrics(stack), TEMPORAL_METRICS))
    except OSError:
        return ServerCounters()


def benchmark(
    stack: StackInfo,
    *,
    sequential: int,
    concurrent: int,
    worker_module: str,
    work_dir: Path,
    profile: bool = False,
    profile_dir: Path | None = None,
) -> Results:
    run = uuid.uuid4().hex[:6]
    print(f"run {run}: Pebble {stack.acme_directory_url}, Temporal {stack.temporal_address}")
    orders = {
        (client, mode): order_requests(run, f"{client[0]}{mode[0]}", count)
        for client in ("plain", "acmeflow")
        for mode, count in (("sequential", sequential), ("concurrent", concurrent))
    }
    worker = WorkerProcess.start(
        stack, task_queue=f"bench-{run}", module=worker_module, work_dir=work_dir
    )
    loop = asyncio.new_event_loop()
    results = Results(worker_module=worker_module)
    try:
        temporal = loop.run_until_complete(
            Client.connect(stack.temporal_address, namespace=stack.temporal_namespace)
        )
        issuer = acmeflow_issuer(stack, work_dir / "acmeflow-account.pem")
        contenders = Contenders(
            plain=PlainOrders(stack),
            acmeflow=AcmeflowOrders(temporal, issuer, worker.task_queue),
            worker=worker,
            loop=loop,
            pids={"worker": worker.pid, "bench": os.getpid(), **stack_pids(stack, SERVERS)},
            stack=stack,
            work_dir=work_dir,
            profile=profile,
            profile_dir=profile_dir,
        )
        contenders.warm_up(run)
        results.sequential = contenders.measure(
            "sequential", orders["plain", "sequential"], orders["acmeflow", "sequential"]
        )
        results.concurrent = contenders.measure(
            "concurrent", orders["plain", "concurrent"], orders["acmeflow", "concurrent"]
        )
        results.worker_peak_rss_mb = worker.peak_rss_mb()
    finally:
        worker.stop()
        close(loop)
    return results


def close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what an interruption left running, so no callback finds the loop closed."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending))
    loop.close()


# -- reporting -------------------------------------------------------------------------


def print_phase(mode: str, phase: Phase) -> None:
    count = len(phase.latencies) + len(phase.failures)
    cpu = ", ".join(f"{name} {s:.1f}" for name, s in phase.cpu_s.items() if s >= 0.05)
    print(
        f"  {mode:<10} {phase.client:<8} {count:>4} orders in {phase.wall_s:6.2f}s "
        f"= {phase.per_s:6.2f}/s  p50 {phase.p50:6.3f}s  p95 {phase.p95:6.3f}s  "
        f"failed {len(phase.failures)}",
        flush=True,
    )
    print(
        f"      machine CPU busy {phase.machine_busy:.0%}; CPU seconds: {cpu}, "
        f"other processes {phase.other_cpu_s:.1f}; "
        f"{phase.cpu_ms_per_order:.0f} ms CPU per order in the watched processes",
        flush=True,
    )
    if phase.breakdown:
        print_breakdown(
            "      where the time goes, mean ms per order (from workflow histories):",
            phase.breakdown,
            column=16,
        )
    for failure in phase.failures[:5]:
        print(f"      failed: {failure}", flush=True)
    if phase.costs is not None and mode == "concurrent":
        print_costs(phase.costs)
    if phase.temporal_counters is not None:
        print_temporal_counters(phase.temporal_counters, per=phase.costs.runs if phase.costs else 1)
    if phase.profile is not None:
        print_profile("where the worker's CPU went in this phase (py-spy):", phase.profile)


def print_costs(costs: RunCosts) -> None:
    """Per order: what the workflow runs cost Temporal, and which payloads the bytes are."""
    counts = costs.per_run(costs.counts)
    print(f"what each order cost Temporal, mean of {costs.runs} workflow histories:")
    print("  " + ", ".join(f"{name} {value:.1f}" for name, value in counts.items()))
    print(
        "  activities scheduled: "
        + ", ".join(
            f"{name} {value:.1f}" for name, value in costs.per_run(costs.activities).items()
        )
    )
    print_top(
        "history bytes per order by payload (event envelopes: the rest of each event):",
        dict(costs.payload_bytes),
        costs.runs,
        unit=" B",
        top=TOP_PAYLOADS,
    )
    print_top(
        "history bytes per order by JSON field of a payload (fields overlap their parents):",
        dict(costs.field_bytes),
        costs.runs,
        unit=" B",
        top=TOP_PAYLOADS,
    )


def print_temporal_counters(counters: ServerCounters, *, per: int) -> None:
    calls, latency_s = counters["persistence_latency_count"], counters["persistence_latency_sum"]
    print_top("Temporal persistence calls per order:", calls, per, top=8)
    print_top("Temporal persistence time per order (sum of latencies):", latency_s, per, unit=" s")
    print_task_queues(counters)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def per_order_figures(phase: Phase) -> dict[str, Any]:
    """The concurrent acmeflow phase's costs per order, for the JSON line."""
    issued = max(1, len(phase.latencies))
    figures: dict[str, Any] = {
        f"acmeflow_{name}_cpu_ms_per_order": round(1000 * phase.cpu_s.get(name, NAN) / issued, 1)
        for name in ("worker", "temporal", "bench")
    }
    if phase.costs is not None:
        costs = phase.costs
        counts = costs.per_run(costs.counts)
        figures["per_order"] = {name: round(value, 2) for name, value in counts.items()}
        activities = costs.per_run(costs.activities)
        figures["activities_per_order_by_type"] = {k: round(v, 2) for k, v in activities.items()}
        for key, counter in (
            ("history_bytes_per_order_by_payload", costs.payload_bytes),
            ("history_bytes_per_order_by_field", costs.field_bytes),
        ):
            top = sorted(costs.per_run(counter).items(), key=lambda item: -item[1])
            figures[key] = {name: round(value) for name, value in top[:TOP_PAYLOADS]}
    if phase.temporal_counters is not None:
        counters, per = phase.temporal_counters, max(1, phase.costs.runs if phase.costs else 1)
        tasks = counters["task_schedule_to_start_latency_count"]
        figures["temporal_per_order"] = {
            "persistence_calls": round(
                sum(counters["persistence_latency_count"].values()) / per, 1
            ),
            "persistence_s": round(sum(counters["persistence_latency_sum"].values()) / per, 4),
            "tasks_started": {queue: round(n / per, 2) for queue, n in tasks.items()},
        }
    if phase.profile is not None:
        figures["worker_profile"] = profile_figures(phase.profile)
    return figures


def summary(results: Results) -> dict[str, Any]:
    seq, con = results.sequential, results.concurrent
    latency_ratio = seq["acmeflow"].p50 / seq["plain"].p50
    throughput_ratio = con["acmeflow"].per_s / con["plain"].per_s
    return {
        "acmeflow_p50_s": round(seq["acmeflow"].p50, 4),
        "plain_p50_s": round(seq["plain"].p50, 4),
        "latency_ratio": round(latency_ratio, 3),
        "acmeflow_per_s": round(con["acmeflow"].per_s, 3),
        "plain_per_s": round(con["plain"].per_s, 3),
        "throughput_ratio": round(throughput_ratio, 3),
        "worker_peak_rss_mb": round(results.worker_peak_rss_mb, 1),
        "acmeflow_p95_s": round(seq["acmeflow"].p95, 4),
        "plain_p95_s": round(seq["plain"].p95, 4),
        "acmeflow_cpu_ms_per_order": round(con["acmeflow"].cpu_ms_per_order, 1),
        "plain_cpu_ms_per_order": round(con["plain"].cpu_ms_per_order, 1),
        "acmeflow_concurrent_p50_s": round(con["acmeflow"].p50, 4),
        "plain_concurrent_p50_s": round(con["plain"].p50, 4),
        "sequential": len(seq["plain"].latencies) + len(seq["plain"].failures),
        "concurrent": len(con["plain"].latencies) + len(con["plain"].failures),
        "acmeflow_failures": len(seq["acmeflow"].failures) + len(con["acmeflow"].failures),
        "plain_failures": len(seq["plain"].failures) + len(con["plain"].failures),
        "worker_module": results.worker_module,
        "machine_busy_concurrent_acmeflow": round(con["acmeflow"].machine_busy, 3),
        "other_cpu_s_concurrent_acmeflow": round(con["acmeflow"].other_cpu_s, 1),
        **per_order_figures(con["acmeflow"]),
    }


def print_summary(figures: dict[str, Any]) -> None:
    latency_ratio, throughput_ratio = figures["latency_ratio"], figures["throughput_ratio"]
    print(
        f"(a) latency, p50 of {figures['sequential']} orders one after another: "
        f"acmeflow {figures['acmeflow_p50_s']:.3f}s (p95 {figures['acmeflow_p95_s']:.3f}s), "
        f"plain {figures['plain_p50_s']:.3f}s (p95 {figures['plain_p95_s']:.3f}s); "
        f"acmeflow/plain {latency_ratio:.2f} "
        f"(target <= {LATENCY_TARGET}: {verdict(latency_ratio <= LATENCY_TARGET)})"
    )
    print(
        f"(b) throughput, {figures['concurrent']} orders at once: "
        f"acmeflow {figures['acmeflow_per_s']:.2f}/s, plain {figures['plain_per_s']:.2f}/s; "
        f"acmeflow/plain {throughput_ratio:.2f} "
        f"(target >= {THROUGHPUT_TARGET}: {verdict(throughput_ratio >= THROUGHPUT_TARGET)})"
    )
    print(
        f"CPU per order at once (worker, Temporal, Pebble, solver, this process): acmeflow "
        f"{figures['acmeflow_cpu_ms_per_order']:.0f} ms, "
        f"plain {figures['plain_cpu_ms_per_order']:.0f} ms"
    )
    print(f"worker peak RSS (VmHWM): {figures['worker_peak_rss_mb']:.1f} MB")
    print_json_line(figures)


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--sequential", type=int, default=20, help="orders one after another")
    parser.add_argument("--concurrent", type=int, default=200, help="orders at once")
    parser.add_argument(
        "--worker-module",
        default="acmeflow.cli",
        help="run the worker as `python -m MODULE worker ...` (to try a patched worker)",
    )
    parser.add_argument(
        "--unsandboxed",
        action="store_true",
        help=f"run workflow code outside the sandbox (--worker-module {UNSANDBOXED_WORKER})",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the worker with py-spy during the concurrent acmeflow phase",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="keep py-spy's collapsed stacks (worker-burst.collapsed) in this directory",
    )
    args = parser.parse_args()
    stop_on_sigterm()
    with (
        acmeflow_stack(args.state_dir, with_acmeflow=False) as stack,
        tempfile.TemporaryDirectory(prefix="acmeflow-bench-") as work_dir,
    ):
        results = benchmark(
            stack,
            sequential=args.sequential,
            concurrent=args.concurrent,
            worker_module=UNSANDBOXED_WORKER if args.unsandboxed else args.worker_module,
            work_dir=Path(work_dir),
            profile=args.profile or args.profile_dir is not None,
            profile_dir=args.profile_dir,
        )
    print_summary(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
