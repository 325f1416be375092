"""SIGKILL the worker mid-order: a new worker finishes the same run, with one ACME order.

Each test runs real ``acmeflow worker`` processes against the stack. The issuer talks to
Pebble through a proxy of the test's own (``durability_proxy``) that counts the orders
Pebble creates and can hold a request; gates (``durability_gates``) keep a challenge in
the step where the first worker is killed. The second worker gets the real settings and
must complete the same workflow run: the certificate is right, Pebble created exactly one
order for it, no token or TXT value is left, and the history shows the hand-over.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.contracts.progress import ChallengeProgress, OrderProgress
from acmeflow.devstack.pebble import PebbleOptions
from acmeflow.devstack.processes import stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.devstack.tls import KeyPair, create_ca
from acmeflow.workflows.order import OrderResult, OrderWorkflow
from tests.orders.durability_gates import EmptyDnsServer, HoldingHttp01Gate, RefusingHttp01Server
from tests.orders.durability_proxy import AcmeProxy, HeldRequest
from tests.orders.durability_workers import (
    RunHistory,
    WorkerGroup,
    WorkerProcess,
    current_progress,
    eventually,
    result_within,
    run_history,
)
from tests.orders.order_harness import (
    PreparedOrder,
    assert_certificate,
    dns01_solver,
    issuer,
    leftover_tokens,
    prepare,
    start,
    txt_values,
)

# Worker 1 reaches the kill point within seconds. After the kill, Temporal notices the dead
# worker only through timeouts: a workflow task waiting on the dead worker's sticky queue
# moves to the shared queue after 10 s (the SDK's sticky schedule-to-start timeout); a
# running activity is retried after its start-to-close timeout, at most RESUME_WITHIN
# (create_order after its heartbeat timeout). A cold worker start takes about 2 s.
REACH_KILL_POINT_S = 60.0
FINISH_AFTER_KILL_S = 150.0
# Pebble's finalize URLs are /finalize-order/<order id> (held before the order exists, so
# the test cannot miss it; each test checks the held path against the order's own URL).
PEBBLE_FINALIZE_PREFIX = "/finalize-order/"
RESUME_WITHIN = timedelta(seconds=10)
"""The longest a dead worker may hold up an Order's step (issue 12, Deliver 5)."""


@pytest.fixture
def tls_ca(stack: StackInfo) -> KeyPair:
    """The stack's local CA, which the issuer's CA bundle (``acme_ca_bundle``) trusts."""
    return create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")


def unique_name(kind: str) -> str:
    """A name of this test alone; it resolves to 127.0.0.1 through the zone's wildcard."""
    return f"durability-{kind}-{uuid.uuid4().hex[:8]}.example.com"


async def slow_to_notice_a_death(
    handle: WorkflowHandle[OrderWorkflow, OrderResult],
) -> list[str]:
    """Activities of the run whose worker's death Temporal would notice after more than
    ``RESUME_WITHIN``: by heartbeat timeout where the step heartbeats, else start-to-close."""
    slow = []
    for event in (await handle.fetch_history()).events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        scheduled = event.activity_task_scheduled_event_attributes
        if scheduled.HasField("heartbeat_timeout") and scheduled.heartbeat_timeout.ToSeconds():
            noticed = scheduled.heartbeat_timeout.ToTimedelta()
        else:
            noticed = scheduled.start_to_close_timeout.ToTimedelta()
        if noticed > RESUME_WITHIN:
            slow.append(f"{scheduled.activity_type.name}: {noticed}")
    return slow


async def retried_after_kill(
    handle: WorkflowHandle[OrderWorkflow, OrderResult], activity: str, killed_at: float
) -> float:
    """Seconds from the kill to the start of ``activity``'s retry (its last started attempt)."""
    types: dict[int, str] = {}
    started = 0.0
    for event in (await handle.fetch_history()).events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            types[event.event_id] = scheduled.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if types[attributes.scheduled_event_id] == activity:
                started = event.event_time.ToDatetime().timestamp()
    return started - killed_at


def only_challenge(progress: OrderProgress | None) -> ChallengeProgress | None:
    if progress is None or len(progress.challenges) != 1:
        return None
    return progress.challenges[0]


async def assert_continued_by(
    second: WorkerProcess,
    *,
    first: WorkerProcess,
    handle: WorkflowHandle[OrderWorkflow, OrderResult],
    result: OrderResult,
    progress: OrderProgress,
    prepared: PreparedOrder,
    proxy: AcmeProxy,
    stack: StackInfo,
    roots: Path,
    killed_in: str = "",
) -> RunHistory:
    """The second worker completed the first worker's run, with one order and no leftovers.

    ``killed_in`` names the activity the first worker was running when killed, if its
    retry on the second worker is part of what the test proves.
    """
    names = prepared.order.names.dns_names
    assert result.state == "valid"
    assert result.url == progress.url
    assert_certificate(result.certificate, prepared.key, names, roots)
    assert proxy.orders_created == [progress.url], (
        f"Pebble created {len(proxy.orders_created)} orders for one workflow: "
        f"{proxy.orders_created}"
    )
    assert leftover_tokens(stack, progress) == []

    history = await run_history(handle)
    # The very run started by the test completed: no new run, no continue-as-new.
    assert history.run_id == handle.first_execution_run_id
    assert history.event_types[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW" not in history.event_types
    assert history.scheduled_activities.count("create_order") == 1
    if killed_in != "create_order":
        assert "create_order" in history.activities_by(first.identity)
        assert "create_order" not in history.activities_by(second.identity)
    if killed_in:
        # Only the attempt that ended an activity is recorded: the second worker's retry.
        [attempt] = history.attempts_of(killed_in)
        assert attempt.identity == second.identity
        assert attempt.attempt > 1
        assert "timeout" in attempt.last_failure.lower(), attempt.last_failure
    assert "download_certificate" in history.activities_by(second.identity)
    assert history.completed_by == second.identity
    # Every step would have been retried within RESUME_WITHIN of a worker's death.
    assert await slow_to_notice_a_death(handle) == []
    # Temporal noticed the dead worker: an activity retried, or a workflow task timed out
    # on the dead worker's sticky queue and went to the second worker.
    assert history.retried or history.workflow_task_timeouts, history.event_types
    return history


async def test_killed_while_the_http01_self_check_waits(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, tls_ca: KeyPair
) -> None:
    """Token presented, self-check failing: kill; the new worker checks, accepts, cleans up."""
    names = [unique_name("http01-self-check")]
    with (
        AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        RefusingHttp01Server() as refusing,
        WorkerGroup(stack, task_queue, tmp_path) as workers,
    ):
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        first = workers.start("worker-1", self_check_http01_port=refusing.port)
        handle = await start(temporal_client, prepared, task_queue)

        async def presented_and_refused() -> ChallengeProgress | None:
            challenge = only_challenge(await current_progress(handle))
            if challenge and challenge.presented and "answered 404" in challenge.reason:
                return challenge
            return None

        challenge = await eventually(
            presented_and_refused,
            "HTTP-01 token presented with a failing self-check",
            timeout=REACH_KILL_POINT_S,
            workers=(first,),
        )
        assert (stack.http01_store / challenge.spec.token).exists()
        assert refusing.requests
        first.kill()
        second = workers.start("worker-2")
        result = await result_within(handle, FINISH_AFTER_KILL_S, (first, second))
        progress = await handle.query(OrderWorkflow.progress)

    history = await assert_continued_by(
        second,
        first=first,
        handle=handle,
        result=result,
        progress=progress,
        prepared=prepared,
        proxy=proxy,
        stack=stack,
        roots=stack.pebble_roots,
    )
    assert "present_http01" in history.activities_by(first.identity)
    assert "present_http01" not in history.activities_by(second.identity)
    for step in ("self_check_http01", "accept_challenge", "clean_up_http01"):
        assert step in history.activities_by(second.identity), step


async def test_killed_while_the_dns01_self_check_waits(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, tls_ca: KeyPair
) -> None:
    """TXT published, propagation check failing: kill; no TXT value outlives the order."""
    name = unique_name("dns01-self-check")
    record = dns01_record_name(name)
    with (
        AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        EmptyDnsServer() as empty_dns,
        WorkerGroup(stack, task_queue, tmp_path) as workers,
    ):
        prepared = prepare(
            [name],
            issuer(stack, tmp_path, server=proxy.directory_url, solvers=[dns01_solver(stack)]),
        )
        # The zone's NS (ns.example.com, 127.0.0.1) is looked up at this port: the gate.
        first = workers.start("worker-1", self_check_dns_port=empty_dns.port)
        handle = await start(temporal_client, prepared, task_queue)

        async def presented_not_propagated() -> ChallengeProgress | None:
            challenge = only_challenge(await current_progress(handle))
            if (
                challenge
                and challenge.presented
                and f":{empty_dns.port} serves 0" in (challenge.reason)
            ):
                return challenge
            return None

        challenge = await eventually(
            presented_not_propagated,
            "DNS-01 TXT presented with a failing propagation check",
            timeout=REACH_KILL_POINT_S,
            workers=(first,),
        )
        assert challenge.spec.key in txt_values(stack, record)
        first.kill()
        second = workers.start("worker-2")
        result = await result_within(handle, FINISH_AFTER_KILL_S, (first, second))
        progress = await handle.query(OrderWorkflow.progress)

    history = await assert_continued_by(
        second,
        first=first,
        handle=handle,
        result=result,
        progress=progress,
        prepared=prepared,
        proxy=proxy,
        stack=stack,
        roots=stack.pebble_roots,
    )
    assert txt_values(stack, record) == []
    assert "present_dns01" in history.activities_by(first.identity)
    for step in ("self_check_dns01", "accept_challenge", "clean_up_dns01"):
        assert step in history.activities_by(second.identity), step


async def test_killed_while_the_ca_validates(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, tls_ca: KeyPair
) -> None:
    """Challenge accepted, CA's validation held at a gate: kill; the new worker waits it out."""
    names = [unique_name("authorization-wait")]
    with HoldingHttp01Gate(target_port=stack.http01_port) as gate:
        pebble, endpoints = start_extra_pebble(
            stack, PebbleOptions(name="pebble-gated"), http01_port=gate.port
        )
        try:
            with (
                AcmeProxy(endpoints.directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
                WorkerGroup(stack, task_queue, tmp_path) as workers,
            ):
                prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
                first = workers.start("worker-1")
                handle = await start(temporal_client, prepared, task_queue)

                async def accepted_and_held() -> ChallengeProgress | None:
                    challenge = only_challenge(await current_progress(handle))
                    if challenge and challenge.state == "processing" and gate.waiting:
                        return challenge
                    return None

                # Pebble's validation gives up after 15 s: hold only across the kill.
                await eventually(
                    accepted_and_held,
                    "challenge accepted with the CA's validation held",
                    timeout=REACH_KILL_POINT_S,
                    workers=(first,),
                )
                first.kill()
                second = workers.start("worker-2")
                gate.release()
                result = await result_within(handle, FINISH_AFTER_KILL_S, (first, second))
                progress = await handle.query(OrderWorkflow.progress)
        finally:
            stop_pid_file(pebble.pid_path)

    history = await assert_continued_by(
        second,
        first=first,
        handle=handle,
        result=result,
        progress=progress,
        prepared=prepared,
        proxy=proxy,
        stack=stack,
        roots=endpoints.roots_path,
    )
    assert gate.requests, "the CA's validation never went through the gate"
    assert "accept_challenge" in history.activities_by(first.identity)
    for step in ("await_authorization", "clean_up_http01", "finalize_order"):
        assert step in history.activities_by(second.identity), step


async def _held_finalization(
    proxy: AcmeProxy,
    handle: WorkflowHandle[OrderWorkflow, OrderResult],
    first: WorkerProcess,
) -> HeldRequest:
    """Wait until the proxy holds the order's finalize POST (its path, not another's)."""

    async def held() -> HeldRequest | None:
        return proxy.held[0] if proxy.held else None

    request = await eventually(
        held, "finalize request held", timeout=REACH_KILL_POINT_S, workers=(first,)
    )
    progress = await current_progress(handle)
    assert progress is not None
    assert request.path == urlsplit(progress.finalize_url).path
    return request


async def test_killed_while_the_finalize_request_is_in_flight(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, tls_ca: KeyPair
) -> None:
    """Finalize never reaches the CA: kill; the new worker's retry finalizes, once."""
    names = [unique_name("finalize-request")]
    with (
        AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        WorkerGroup(stack, task_queue, tmp_path) as workers,
    ):
        proxy.hold("POST", PEBBLE_FINALIZE_PREFIX, stage="request")
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        first = workers.start("worker-1")
        handle = await start(temporal_client, prepared, task_queue)
        held = await _held_finalization(proxy, handle, first)
        first.kill()
        killed_at = time.time()
        proxy.stop_holding()
        held.drop()
        second = workers.start("worker-2")
        result = await result_within(handle, FINISH_AFTER_KILL_S, (first, second))
        progress = await handle.query(OrderWorkflow.progress)

    # A figure for the record, not an assertion: how soon the step resumed after the kill.
    recovery = await retried_after_kill(handle, "finalize_order", killed_at)
    print(f"finalize_order resumed on worker-2 {recovery:.1f}s after worker-1's SIGKILL")
    await assert_continued_by(
        second,
        first=first,
        handle=handle,
        result=result,
        progress=progress,
        prepared=prepared,
        proxy=proxy,
        stack=stack,
        roots=stack.pebble_roots,
        killed_in="finalize_order",
    )
    finalizations = proxy.posts_to(PEBBLE_FINALIZE_PREFIX)
    assert finalizations[0].status == 0, "the first finalize must not have reached Pebble"
    assert [e.status for e in finalizations if e.status == 200] == [200]


async def test_killed_while_the_finalize_answer_is_in_flight(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, tls_ca: KeyPair
) -> None:
    """The CA finalized but the worker died before hearing so: the retry does not re-send."""
    names = [unique_name("finalize-answer")]
    with (
        AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        WorkerGroup(stack, task_queue, tmp_path) as workers,
    ):
        proxy.hold("POST", PEBBLE_FINALIZE_PREFIX, stage="response")
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        first = workers.start("worker-1")
        handle = await start(temporal_client, prepared, task_queue)
        held = await _held_finalization(proxy, handle, first)
        # Pebble rejects a few nonces (badNonce, which the client retries): wait for the
        # answer that finalized the order.
        while held.status != 200:
            held.deliver()
            held = await _held_finalization(proxy, handle, first)
        first.kill()
        killed_at = time.time()
        proxy.stop_holding()
        held.drop()
        second = workers.start("worker-2")
        result = await result_within(handle, FINISH_AFTER_KILL_S, (first, second))
        progress = await handle.query(OrderWorkflow.progress)

    # A figure for the record, not an assertion: how soon the step resumed after the kill.
    recovery = await retried_after_kill(handle, "finalize_order", killed_at)
    print(f"finalize_order resumed on worker-2 {recovery:.1f}s after worker-1's SIGKILL")
    await assert_continued_by(
        second,
        first=first,
        handle=handle,
        result=result,
        progress=progress,
        prepared=prepared,
        proxy=proxy,
        stack=stack,
        roots=stack.pebble_roots,
        killed_in="finalize_order",
    )
    finalized = [e for e in proxy.posts_to(PEBBLE_FINALIZE_PREFIX) if e.status == 200]
    assert len(finalized) == 1
    assert not finalized[0].delivered_to_client


async def test_killed_while_the_new_order_answer_is_in_flight(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, tls_ca: KeyPair
) -> None:
    """The CA created the order but the worker died before hearing its URL: still one order."""
    names = [unique_name("new-order-answer")]
    with (
        AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        WorkerGroup(stack, task_queue, tmp_path) as workers,
    ):
        proxy.hold("POST", proxy.new_order_path, stage="response")
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        first = workers.start("worker-1")
        handle = await start(temporal_client, prepared, task_queue)

        async def created_answer_held() -> HeldRequest | None:
            for request in proxy.held:
                if request.status == 201:
                    return request
                request.deliver()  # a badNonce answer: let the client retry
            return None

        held = await eventually(
            created_answer_held,
            "new-order answer held after Pebble created the order",
            timeout=REACH_KILL_POINT_S,
            workers=(first,),
        )
        first.kill()
        killed_at = time.time()
        proxy.stop_holding()
        held.drop()
        second = workers.start("worker-2")
        result = await result_within(handle, FINISH_AFTER_KILL_S, (first, second))
        progress = await handle.query(OrderWorkflow.progress)

    # A figure for the record, not an assertion: how soon the step resumed after the kill.
    recovery = await retried_after_kill(handle, "create_order", killed_at)
    print(f"create_order resumed on worker-2 {recovery:.1f}s after worker-1's SIGKILL")
    await assert_continued_by(
        second,
        first=first,
        handle=handle,
        result=result,
        progress=progress,
        prepared=prepared,
        proxy=proxy,
        stack=stack,
        roots=stack.pebble_roots,
        killed_in="create_order",
    )
