"""Faults at load: N Certificates in flight while the worker, the bridge and Temporal are killed.

The scenario of ``tests/k8s/test_faults_at_load.py`` at benchmark size
(``bench/harness/fault_scenario.py``): its own Temporal dev server, ``acmeflow worker`` and
``acmeflow bridge`` as separate processes, an ACME proxy in front of the stack's Pebble
counting new-orders, N Certificates created at once (HTTP-01, DNS-01 through the stack's
BIND9, wildcard plus apex, in turn). The worker is SIGKILLed three times, the bridge once
and the Temporal server once, each as soon as its progress threshold is reached, and each
started again with its own command line.

Printed: every kill (when, at what progress, how long the restart took), the time from
the first create to the last Certificate Ready, and the counts of what is left: Certificates
Ready, Secrets that do not match, Orders, ACME new-orders, Challenges unfinished, TXT
records and HTTP-01 tokens left, workflows by type and status, problems. The last line is
one JSON object.

    .venv/bin/python bench/faults.py [--certificates 200] [--state-dir DIR] [--timeout-s 3600]

``--state-dir`` names a stack from ``acmeflow dev up`` (its own worker and bridge are not
used: the run starts and kills its own); without it an embedded stack is started.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.fault_scenario import FaultRun, run_faults
from harness.fault_schedule import SCHEDULE
from harness.figures import p50_p95
from harness.stack import acmeflow_stack, argument_parser, print_json_line, stop_on_sigterm


def report(run: FaultRun) -> dict[str, Any]:
    findings = run.findings
    counts = findings.counts() if findings is not None else {}
    figures: dict[str, Any] = {
        **counts,
        "all_ready_s": round(run.all_ready_s, 1) if not math.isnan(run.all_ready_s) else None,
        **p50_p95("time_to_ready", run.times_to_ready()),
        "timed_out": run.timed_out,
        "kills": run.kills_by_target(),
        "kills_missed": run.missed_kills,
        "kill_restart_s": {k.target + f"@{k.at_s:.0f}s": round(k.restart_s, 1) for k in run.kills},
    }
    print()
    print(f"{len(run.kills)} kills of {len(SCHEDULE)} scheduled:")
    for kill in run.kills:
        print(f"  {kill.shown()}")
    for missed in run.missed_kills:
        print(f"  never came due: {missed}")
    shown = "not all Ready" if figures["all_ready_s"] is None else f"{figures['all_ready_s']}s"
    print(
        f"time to all Ready (first create -> last Ready): {shown}; each Certificate p50 "
        f"{figures['time_to_ready_p50_s']}s, p95 {figures['time_to_ready_p95_s']}s"
    )
    print(
        f"Certificates Ready {counts.get('ready')}/{run.certificates}, Secrets wrong "
        f"{counts.get('secrets_wrong')}, Orders {counts.get('orders')}, ACME new-orders "
        f"{counts.get('new_orders')}, Challenges {counts.get('challenges')} "
        f"({counts.get('challenges_unfinished')} unfinished), TXT left {counts.get('txt_left')}, "
        f"tokens left {counts.get('tokens_left')}"
    )
    redone = counts.get("steps_redone") or {}
    print(
        f"steps a kill interrupted and a worker redid (attempt after a timeout): "
        f"{sum(redone.values())}" + "".join(f"\n  {n} {step}" for step, n in redone.items())
    )
    for kind, by_status in (counts.get("workflows") or {}).items():
        print(f"  {kind}: " + ", ".join(f"{n} {status}" for status, n in by_status.items()))
    problems = findings.problems() if findings is not None else ["no findings"]
    print(f"problems: {len(problems)}")
    for problem in problems[:20]:
        print(f"  {problem}")
    return figures


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--certificates", type=int, default=200, help="Certificates at once")
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="hang guard")
    args = parser.parse_args()
    stop_on_sigterm()
    with (
        acmeflow_stack(args.state_dir, with_acmeflow=False) as stack,
        tempfile.TemporaryDirectory(prefix="acmeflow-faults-") as run_dir,
    ):
        print(
            f"{args.certificates} Certificates; run's processes and logs in {run_dir}", flush=True
        )
        run = run_faults(
            stack,
            Path(run_dir),
            certificates=args.certificates,
            timeout_s=args.timeout_s,
            say=lambda line: print(line, flush=True),
        )
        figures = report(run)
    print_json_line(figures)
    return 0 if figures.get("problems") == 0 and not run.timed_out else 1


if __name__ == "__main__":
    sys.exit(main())
