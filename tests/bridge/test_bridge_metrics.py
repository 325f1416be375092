"""``acmeflow bridge --metrics-bind`` serves the Temporal SDK's metrics of its mirror worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import BridgeProcess, order_manifest, wait_for, wait_for_state
from tests.k8s.kube_helpers import Kubectl
from tests.prometheus_text import Sample, scrape, total


@pytest.fixture(scope="module")
def metrics_bridge(
    stack: StackInfo,
    kubectl: Kubectl,
    queues: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BridgeProcess, str]]:
    bind = f"127.0.0.1:{free_port()}"
    log: Path = tmp_path_factory.mktemp("metrics-bridge") / "bridge.log"
    process = BridgeProcess(stack, queues[0], queues[1], log, extra_args=["--metrics-bind", bind])
    process.start()
    yield process, bind
    process.stop()
    print(f"bridge log ({log}):\n{process.log()[-4000:]}")


def test_bridge_serves_the_sdk_metrics_of_its_mirror_worker(
    kubectl: Kubectl,
    metrics_bridge: tuple[BridgeProcess, str],
    queues: tuple[str, str],
    order_worker: None,
    namespace: str,
) -> None:
    process, bind = metrics_bridge
    _, bridge_queue = queues

    def polling() -> list[Sample] | None:
        assert process.popen is not None and process.popen.poll() is None, process.log()
        samples = scrape(bind)
        # The start counter moves a moment before the pollers gauge is first set.
        started = samples and total(samples, "temporal_worker_start_total") >= 1
        polls = samples and total(samples, "temporal_num_pollers", task_queue=bridge_queue) >= 1
        return samples if started and polls else None

    wait_for(polling, f"the bridge's mirror worker polling {bridge_queue} on /metrics at {bind}")

    # An Order's progress is mirrored into Kubernetes by the bridge's activities.
    kubectl.create(order_manifest(namespace, "metrics-1", ["metrics-bridge.example.com"]))
    assert wait_for_state(kubectl, namespace, "metrics-1", ("valid", "errored")) == "valid"

    def mirrored() -> list[Sample] | None:
        samples = scrape(bind)
        done = samples and total(
            samples,
            "temporal_activity_execution_latency_count",
            activity_type="publish_order_progress",
        )
        return samples if done else None

    samples = wait_for(mirrored, "mirrored progress on the bridge's /metrics", timeout_s=30)
    assert total(samples, "temporal_request_total") > 0
