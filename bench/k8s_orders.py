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

It prints figures, not verdicts of a test; the last line is one JSON object. The run
itself (namespace, creates, watch, CPU, memory, counters, histories) is
``bench/harness/kube_run.py``'s; this script says what an Order run creates and reports.

    .venv/bin/python bench/k8s_orders.py [--orders 100] [--state-dir DIR] [--timeout-s 900]
"""

from __future__ import annotations

import sys
from typing import Any

from harness import figures, kube_run
from harness.acmeflow_api import (
    FINAL_ORDER_STATES,
    OrderState,
    crds,
    single_name_csr,
    workflow_id,
)
from harness.figures import NAN, intervals, known, mean_of
from harness.histories import OrderTimes, order_times
from harness.kube import Watched, issuer_ref, metadata
from harness.server_counters import print_counters
from harness.stack import acmeflow_stack, argument_parser, print_json_line, stop_on_sigterm
from temporalio.client import Client

Run = kube_run.KubeRun[OrderTimes]


def order_state(obj: dict[str, Any]) -> tuple[str, str]:
    """(``status.state``, ``status.reason``); no state until the bridge first writes one."""
    status = obj.get("status") or {}
    return str(status.get("state") or ""), str(status.get("reason") or "")


def order(namespace: str, name: str) -> crds.Order:
    """As tests/bridge/bridge_harness.py writes one: a name and a CSR from a fresh key."""
    dns_name = f"{name}.example.com"
    spec = crds.OrderSpec(
        request=single_name_csr(dns_name), issuer_ref=issuer_ref(), dns_names=[dns_name]
    )
    return crds.Order(metadata=metadata(namespace, name), spec=spec)


class Orders(kube_run.KubeScenario[OrderTimes]):
    watched = Watched(crds.Order, order_state, FINAL_ORDER_STATES, OrderState.VALID)
    noun = described = "Orders"

    def objects(self, namespace: str, run_id: str, count: int) -> list[crds.KubeResource]:
        return [order(namespace, f"bench-{run_id}-{i}") for i in range(count)]

    async def workflow_times(self, temporal: Client, namespace: str, name: str) -> OrderTimes:
        handle = temporal.get_workflow_handle(workflow_id(crds.Order.KIND, namespace, name))
        return order_times(await handle.fetch_history())


# -- reporting -------------------------------------------------------------------------


TO_VALID = "time to valid (create acknowledged -> watch saw valid)"
START_LAG = "  bridge start lag (create acknowledged -> workflow started)"
BRIDGE_LAG = kube_run.bridge_lag_label(OrderState.VALID)


def order_intervals(run: Run) -> dict[str, list[float]]:
    """Intervals in seconds, one per valid Order, by what they measure."""
    flows = run.workflows
    per_order = {
        **kube_run.arrival_spans(run, to_success=TO_VALID, start_lag=START_LAG),
        "  workflow (started -> decided valid)": lambda n: flows[n].decided - flows[n].started,
        **kube_run.bridge_lag_spans(run, OrderState.VALID),
        "download_certificate completed -> decided (workflow task)": (
            lambda n: flows[n].decided - flows[n].download_completed
        ),
        "authorizations read -> present scheduled (_flush: Challenges created)": (
            lambda n: flows[n].presenting - flows[n].authorizations_read
        ),
    }
    return {**intervals(run.succeeded(), per_order), **kube_run.round_trip_figures(run)}


def publish_intervals(run: Run) -> dict[str, list[float]]:
    """Every ``publish_order_progress`` of every Order: queueing and duration."""
    publishes = [p for flow in run.workflows.values() for p in flow.publishes]
    return {
        "publish: scheduled -> started (all)": known([p.started - p.scheduled for p in publishes]),
        "publish: started -> completed (all)": known([p.completed - p.started for p in publishes]),
    }


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


def stack_cpu_s(run: Run) -> float:
    """As this script has always counted it: this script's CPU included."""
    return sum(run.cpu_s.values())


def summary(run: Run) -> dict[str, Any]:
    measured = order_intervals(run)
    flows = list(run.workflows.values())
    valid = len(run.succeeded())
    return {
        "orders": run.count,
        "valid": valid,
        "not_valid": run.count - valid,
        **figures.p50_p95("time_to_valid", measured[TO_VALID]),
        **figures.p50_p95("bridge_lag", measured[BRIDGE_LAG]),
        **figures.p50_p95("bridge_start_lag", measured[START_LAG]),
        "wall_s": round(run.wall_s, 2),
        "orders_per_s": round(valid / run.wall_s, 3) if run.wall_s > 0 else NAN,
        **kube_run.rss_figures(run.peak_rss_mb, "peak"),
        "peak_rss_reset": run.rss_reset,
        "stack_cpu_ms_per_order": round(1000 * stack_cpu_s(run) / max(1, run.count)),
        "publishes_per_order": round(mean_of([len(f.publishes) for f in flows]), 2),
        "idle_publishes_per_order": round(mean_of([f.idle_publishes for f in flows]), 2),
        "apiserver_requests_per_order": round(run.counters.api_requests() / max(1, run.count), 1),
        **kube_run.cpu_figures(run),
        "cpu_wait_s": {n: round(s, 1) for n, s in run.cpu_wait_s.items()},
    }


def report(run: Run) -> None:
    result = summary(run)
    print(
        f"{result['valid']} of {run.count} Orders valid in {result['wall_s']:.1f}s "
        f"(first create to last valid) = {result['orders_per_s']:.2f}/s; "
        f"{result['not_valid']} not valid"
    )
    kube_run.print_failures(run, "valid")
    figures.print_intervals("per Order (epoch clocks of this machine):", order_intervals(run))
    figures.print_intervals("per progress snapshot:", publish_intervals(run))
    figures.print_breakdown(
        "inside the workflows, mean ms per order (bench/harness/histories.py's breakdown; "
        "intervals overlap, so 'other' goes negative):",
        figures.mean_breakdown(
            [run.workflows[n].breakdown for n in run.succeeded() if n in run.workflows]
        ),
    )
    print_history_counts(run)
    print_counters(run.counters, per=run.count, noun="order", wall_s=run.wall_s)
    kube_run.print_cpu(run, noun="order", stack_s=stack_cpu_s(run))
    since = "during the run" if run.rss_reset else "since start (reset not permitted)"
    print(
        f"peak RSS (VmHWM) {since}: bridge {result['bridge_peak_rss_mb']:.1f} MB, "
        f"worker {result['worker_peak_rss_mb']:.1f} MB (RSS at the start: bridge "
        f"{run.start_rss_mb.get('acmeflow-bridge', NAN):.1f} MB, "
        f"worker {run.start_rss_mb.get('acmeflow-worker', NAN):.1f} MB)"
    )
    print_json_line(result)


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--orders", type=int, default=100, help="Orders created at once")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="give up waiting after")
    args = parser.parse_args()
    stop_on_sigterm()
    with acmeflow_stack(args.state_dir, with_acmeflow=True) as stack:
        run = kube_run.run_benchmark(stack, Orders(), count=args.orders, timeout_s=args.timeout_s)
    report(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
