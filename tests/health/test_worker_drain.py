"""SIGTERM while an activity runs: the worker says so on /readyz at once, lets the activity
finish within ``--graceful-shutdown-s``, exits 0, and the next worker finishes the order.

The activity is the HTTP-01 self-check, held by a gate in front of the stack's responder
until the test releases it (``HoldingHttp01Gate``), so the drain lasts as long as the test
needs to look at it.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from acmeflow.contracts.activities import ActivityName
from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import wait_for
from tests.health.probes import answered
from tests.orders.durability_gates import HoldingHttp01Gate
from tests.orders.durability_workers import start_worker
from tests.orders.order_harness import issuer, prepare, start

pytestmark = pytest.mark.stack

DRAIN_S = 30


async def test_sigterm_lets_the_running_activity_finish_then_exits_0(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    prepared = prepare([f"drain-{uuid.uuid4().hex[:8]}.example.com"], issuer(stack, tmp_path))
    bind = f"127.0.0.1:{free_port()}"
    with HoldingHttp01Gate(target_port=stack.http01_port) as gate:
        draining = start_worker(
            "draining",
            stack,
            task_queue,
            tmp_path,
            self_check_http01_port=gate.port,
            extra_args=["--metrics-bind", bind, "--graceful-shutdown-s", str(DRAIN_S)],
        )
        try:
            wait_for(answered(bind, "/readyz", 200, draining.popen), "a ready worker", 60)
            handle = await start(temporal_client, prepared, task_queue)
            wait_for(lambda: gate.waiting > 0, "the self-check to be running", timeout_s=60)

            os.killpg(draining.popen.pid, signal.SIGTERM)
            body = wait_for(
                answered(bind, "/readyz", 503, draining.popen), "/readyz to turn 503", 10
            )
            assert "shutting down: draining running activities" in body
            assert draining.popen.poll() is None, "the worker left before its activity ended"
            gate.release()
            assert draining.popen.wait(DRAIN_S) == 0
        finally:
            draining.stop()
            print(f"draining worker log:\n{draining.log()}")

    history = await handle.fetch_history()
    self_checks = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == ActivityName.SELF_CHECK_HTTP01
    }
    finished_by = [
        e.activity_task_completed_event_attributes.identity
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id in self_checks
    ]
    assert finished_by and finished_by[0].startswith(f"{draining.popen.pid}@"), finished_by

    following = start_worker("following", stack, task_queue, tmp_path)
    try:
        result = await handle.result()
    finally:
        following.stop()
    assert result.state == "valid"
