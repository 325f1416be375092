"""The README's benchmark commands run end to end (tiny sizes) and print their JSON line.

Figures are not asserted: benchmarks measure, tests check behaviour. What is checked is
that every order the benchmark makes succeeds and the promised keys are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from acmeflow.devstack.stack import StackInfo

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


def test_order_benchmark(stack: StackInfo) -> None:
    figures = _run(
        "bench/orders.py",
        "--sequential",
        "2",
        "--concurrent",
        "3",
        "--profile",
        "--state-dir",
        str(stack.state_dir),
    )
    for key in (
        "acmeflow_p50_s",
        "plain_p50_s",
        "latency_ratio",
        "acmeflow_per_s",
        "plain_per_s",
        "throughput_ratio",
        "worker_peak_rss_mb",
    ):
        assert figures[key] > 0, key
    assert figures["acmeflow_failures"] == 0
    # What each order of the burst cost Temporal, read from its history.
    per_order = figures["per_order"]
    for key in ("workflow_tasks", "history_events", "activities_scheduled", "history_bytes"):
        assert per_order[key] > 0, key
    assert per_order["activity_attempts"] >= per_order["activities_scheduled"]
    assert figures["history_bytes_per_order_by_payload"]["workflow input"] > 0
    assert figures["temporal_per_order"]["persistence_calls"] > 0
    assert figures["acmeflow_worker_cpu_ms_per_order"] > 0
    # py-spy sampled the worker during the burst; workflow code ran in the sandbox ...
    assert figures["worker_profile"]["samples"] > 0
    assert "workflow sandbox" in figures["worker_profile"]["area_total"]
    # ... and ``--unsandboxed`` runs the same orders without it.
    unsandboxed = _run(
        "bench/orders.py",
        *("--sequential", "1", "--concurrent", "3", "--profile", "--unsandboxed"),
        *("--state-dir", str(stack.state_dir)),
    )
    assert unsandboxed["acmeflow_failures"] == 0
    assert unsandboxed["worker_module"] == "unsandboxed_worker"
    assert unsandboxed["worker_profile"]["samples"] > 0
    assert "workflow sandbox" not in unsandboxed["worker_profile"]["area_total"]


def test_temporal_floor_benchmark(stack: StackInfo) -> None:
    figures = _run(
        "bench/temporal_floor.py",
        "--workflows",
        "3",
        "--steps",
        "0",
        "2",
        "--state-dir",
        str(stack.state_dir),
    )
    assert [row["steps"] for row in figures["floor"]] == [0, 2]
    for row in figures["floor"]:
        assert row["per_s"] > 0
        assert row["temporal_cpu_ms"] > 0


def test_kubernetes_benchmarks(stack: StackInfo) -> None:
    orders = _run("bench/k8s_orders.py", "--orders", "3")
    assert orders["valid"] == 3
    assert orders["bridge_lag_p95_s"] >= 0
    certificates = _run("bench/k8s_certificates.py", "--certificates", "2")
    assert certificates["ready"] == 2
    assert [size["certificates"] for size in certificates["sizes"]] == [2]


def test_faults_benchmark(stack: StackInfo) -> None:
    figures = _run("bench/faults.py", "--certificates", "3", "--state-dir", str(stack.state_dir))
    assert figures["certificates"] == figures["ready"] == figures["orders"] == 3
    assert figures["new_orders"] == 3
    assert figures["problems"] == 0
    assert figures["all_ready_s"] > 0
    assert set(figures["kills"]) <= {"worker", "bridge", "temporal"}


def test_bridge_secrets_benchmark(stack: StackInfo) -> None:
    figures = _run(
        "bench/bridge_secrets.py", "--secrets", "30", "--certificates", "1", "--settle-s", "1"
    )
    assert figures["unrelated_secrets"] == 30
    for key in (
        "bridge_rss_mb_with_certificates",
        "bridge_rss_mb_with_unrelated_secrets",
        "all_secrets_list_mb",
        "reissue_after_delete_s",
    ):
        assert figures[key] > 0, key


def test_cert_manager_comparison_benchmark(stack: StackInfo) -> None:
    """cert-manager's ACME issuer, cert-manager through acmeflow, and acmeflow: all issue."""
    figures = _run("bench/vs_cert_manager.py", "--sizes", "1", "--timeout-s", "300")
    assert [size["certificates"] for size in figures["sizes"]] == [1]
    solved_by = {"cm_acme": "cert-manager", "cm_external": "acmeflow", "acmeflow": "acmeflow"}
    for system, solver in solved_by.items():
        assert figures[f"{system}_ready"] == 1, (system, figures[f"{system}_failed"])
        for key in ("p50_s", "p95_s", "max_s", "peak_rss_mb", "presented_to_verified_p50_s"):
            assert figures[f"{system}_{key}"] > 0, f"{system}_{key}"
        for key in ("cpu_s", "temporal_cpu_s", "kubernetes_cpu_s"):
            assert figures[f"{system}_{key}"] >= 0, f"{system}_{key}"
        # Where the time goes: traced to the Challenge of the project that solved it.
        assert f"{solver}: Challenge DomainVerified" in figures[f"{system}_timeline_p50_s"]
    for system in ("cm_external", "acmeflow"):
        for ratio in ("p50", "p95", "cpu"):
            assert figures[f"{system}_{ratio}_vs_cm_acme"] > 0, f"{system}_{ratio}_vs_cm_acme"
    assert figures["cm_workers"] > 5


def test_dns01_providers_benchmark(stack: StackInfo) -> None:
    """Every DNS-01 provider path issues its warm-up and one measured Certificate."""
    figures = _run("bench/dns01_providers.py", "--sizes", "1", "--timeout-s", "300")
    assert sorted(figures["providers"]) == ["lexicon-powerdns", "rfc2136", "route53", "webhook"]
    for name, sizes in figures["providers"].items():
        assert sizes["1"]["ready"] == 1, (name, sizes)
        assert sizes["1"]["time_to_ready_p50_s"] > 0, name


def test_sizing_benchmark() -> None:
    """Issuance, quiet rounds and a renewal of all: each Certificate woke once per round,
    each phase wrote history and cost actions, and both fleet sizes are derived."""
    figures = _run("bench/sizing.py", "--certificates", "2", "--rounds", "2")
    assert figures["issuance"]["per"] == figures["renewal"]["per"] == 2
    assert figures["quiet"]["per"] == 4, "each Certificate should run one round per wake"
    for phase in ("issuance", "quiet", "renewal"):
        for key in ("cpu_ms_per", "actions_per", "history_kb_per"):
            assert figures[phase][key] > 0, (phase, key)
    assert [d["certificates"] for d in figures["derived"]] == [10_000, 100_000]
    assert figures["derived"][1]["actions_per_month"] > figures["derived"][0]["actions_per_month"]
