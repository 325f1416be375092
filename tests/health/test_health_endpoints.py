"""``/healthz``, ``/readyz`` and ``/metrics`` on the metrics port of a real worker and a real
bridge, readiness following Temporal, and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import BridgeProcess, wait_for
from tests.health.probes import TcpRelay, answered, get
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds
from tests.orders.durability_workers import WorkerProcess, start_worker
from tests.prometheus_text import scrape, total

pytestmark = pytest.mark.stack

WORKER_GRACE_S = 5
BRIDGE_GRACE_S = 30  # terminationGracePeriodSeconds of deploy/base/bridge.yaml


def sigterm_exit_code(popen: subprocess.Popen[bytes], grace_s: float) -> int:
    os.killpg(popen.pid, signal.SIGTERM)
    return popen.wait(grace_s)


def health_worker(stack: StackInfo, log_dir: Path, temporal: str, bind: str) -> WorkerProcess:
    return start_worker(
        f"health-{uuid.uuid4().hex[:6]}",
        stack,
        f"health-{uuid.uuid4().hex[:6]}",
        log_dir,
        extra_args=[
            *("--temporal-address", temporal),
            *("--metrics-bind", bind),
            *("--graceful-shutdown-s", str(WORKER_GRACE_S)),
        ],
    )


def test_worker_is_live_ready_serves_metrics_and_exits_0_on_sigterm(
    stack: StackInfo, tmp_path: Path
) -> None:
    bind = f"127.0.0.1:{free_port()}"
    worker = health_worker(stack, tmp_path, stack.temporal_address, bind)
    try:
        ready = answered(bind, "/readyz", 200, worker.popen)
        body = wait_for(ready, f"the worker's /readyz at {bind}", timeout_s=60)
        assert f"temporal: connected to {stack.temporal_address}" in body
        assert get(bind, "/healthz") == (200, "ok\n")
        wait_for(
            lambda: (samples := scrape(bind)) and total(samples, "temporal_worker_start_total"),
            "the SDK's worker metrics relayed on /metrics",
            timeout_s=30,
        )
        assert get(bind, "/nothing-here") == (404, "not found: try /metrics, /healthz, /readyz\n")
        assert sigterm_exit_code(worker.popen, WORKER_GRACE_S + 5) == 0
    finally:
        worker.stop()
        print(f"worker log:\n{worker.log()}")


def test_worker_readiness_follows_temporal_while_liveness_stays(
    stack: StackInfo, tmp_path: Path
) -> None:
    relay = TcpRelay(stack.temporal_address)
    bind = f"127.0.0.1:{free_port()}"
    worker = health_worker(stack, tmp_path, relay.address, bind)
    try:
        wait_for(answered(bind, "/readyz", 200, worker.popen), "a ready worker", timeout_s=60)
        wait_for(
            lambda: (samples := scrape(bind)) and total(samples, "temporal_worker_start_total"),
            "the worker to have started polling",
            timeout_s=30,
        )
        relay.cut()  # Temporal is gone for this worker
        body = wait_for(
            answered(bind, "/readyz", 503, worker.popen), "/readyz to notice", timeout_s=30
        )
        assert body.startswith("not ready: temporal\n")
        assert f"temporal: not connected to {relay.address}" in body
        assert get(bind, "/healthz") == (200, "ok\n")
    finally:
        relay.cut()
        worker.stop()
        print(f"worker log:\n{worker.log()}")


@pytest.fixture
def health_bridge(stack: StackInfo, tmp_path: Path) -> Iterator[tuple[BridgeProcess, str]]:
    install_acmeflow_crds(Kubectl(stack))
    bind = f"127.0.0.1:{free_port()}"
    suffix = uuid.uuid4().hex[:6]
    process = BridgeProcess(
        stack,
        f"health-orders-{suffix}",
        f"health-bridge-{suffix}",
        tmp_path / "bridge.log",
        extra_args=["--metrics-bind", bind],
    )
    process.start()
    yield process, bind
    process.kill()
    print(f"bridge log:\n{process.log()[-4000:]}")


def test_bridge_is_ready_once_synced_serves_metrics_and_exits_0_on_sigterm(
    stack: StackInfo, health_bridge: tuple[BridgeProcess, str]
) -> None:
    process, bind = health_bridge
    assert process.popen is not None
    body = wait_for(
        answered(bind, "/readyz", 200, process.popen), f"the bridge's /readyz at {bind}"
    )
    lines = body.splitlines()
    assert lines[0] == "ready"
    assert f"temporal: connected to {stack.temporal_address}" in lines
    assert any(line.startswith("informers: synced (") for line in lines), body
    assert "role: leader (no election: one replica)" in lines
    assert get(bind, "/healthz") == (200, "ok\n")
    wait_for(
        lambda: (samples := scrape(bind)) and total(samples, "temporal_worker_start_total"),
        "the SDK's metrics of the mirror worker relayed on /metrics",
        timeout_s=30,
    )
    assert sigterm_exit_code(process.popen, BRIDGE_GRACE_S) == 0
