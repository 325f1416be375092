"""A CA's rate limit is waited out, however long, and the order goes on.

The issuer talks to Pebble through the test's proxy, which answers one chosen POST with
``429 rateLimited`` and a Retry-After longer than every step timeout the order has (the
timeouts are made small here). Before, Temporal refused to schedule a retry beyond the
step's schedule-to-close timeout and the order ended ``errored`` at once ("gave up after
600s"). Now the order says until when it waits, waits on a durable timer, and the proxy
sees the same request again no earlier than the CA asked.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle

from acmeflow.contracts.progress import OrderProgress
from acmeflow.devstack.stack import StackInfo
from acmeflow.devstack.tls import KeyPair, create_ca
from acmeflow.worker.build import build_worker
from acmeflow.workflows.order import OrderResult, OrderTimeouts, OrderWorkflow
from tests.orders.durability_proxy import REFUSAL_DETAIL, AcmeProxy
from tests.orders.durability_workers import current_progress, eventually
from tests.orders.order_harness import assert_certificate, issuer, prepare, start, worker_config

SMALL_TIMEOUTS = OrderTimeouts(acme_call_s=5, self_check_s=8, validation_s=8, issuance_s=8)
RETRY_AFTER_S = 12
"""Longer than every timeout in ``SMALL_TIMEOUTS``: no activity retry could wait it out."""
PEBBLE_FINALIZE_PREFIX = "/finalize-order/"
PEBBLE_CHALLENGE_PREFIX = "/chalZ/"
WAITING = re.compile(
    r"rate limited by the CA until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): " + re.escape(REFUSAL_DETAIL)
)
REACH_S = 60.0


@pytest.fixture
def tls_ca(stack: StackInfo) -> KeyPair:
    """The stack's local CA, which the issuer's CA bundle trusts."""
    return create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")


async def waiting_reason(
    handle: WorkflowHandle[OrderWorkflow, OrderResult],
) -> OrderProgress | None:
    """The progress while it says it waits out a rate limit; None before (or after)."""
    progress = await current_progress(handle)
    if progress is not None and WAITING.fullmatch(progress.reason):
        return progress
    return None


@pytest.mark.parametrize(
    ("step", "as_http_date"),
    [("new-order", False), ("finalize", False), ("challenge", False), ("new-order", True)],
    ids=["new-order", "finalize", "challenge", "new-order-http-date"],
)
async def test_a_rate_limit_longer_than_every_timeout_is_waited_out(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    tls_ca: KeyPair,
    step: str,
    as_http_date: bool,
) -> None:
    names = [f"rate-limited-{uuid.uuid4().hex[:8]}.example.com"]
    with AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy:
        prefix = {
            "new-order": proxy.new_order_path,
            "finalize": PEBBLE_FINALIZE_PREFIX,
            "challenge": PEBBLE_CHALLENGE_PREFIX,
        }[step]
        proxy.rate_limit(prefix, times=1, retry_after_s=RETRY_AFTER_S, as_http_date=as_http_date)
        prepared = prepare(
            names,
            issuer(stack, tmp_path, server=proxy.directory_url),
            timeouts=SMALL_TIMEOUTS,
        )
        async with build_worker(temporal_client, worker_config(stack, task_queue)):
            handle = await start(temporal_client, prepared, task_queue)
            waiting = await eventually(
                lambda: waiting_reason(handle),
                "the order to say it is rate limited",
                timeout=REACH_S,
            )
            result = await handle.result()
            final = await handle.query(OrderWorkflow.progress)

    # While it waited, the order was not final and said until when, as a Warning Event too.
    assert not waiting.final, waiting.state
    [event] = [e for e in final.events if e.reason == "RateLimited"]
    assert (event.type, event.kind, event.message) == ("Warning", "Order", waiting.reason)
    [refused] = proxy.refused("rateLimited")
    assert refused.path.startswith(prefix)
    assert refused.retry_after.isdigit() is not as_http_date, refused.retry_after
    match = WAITING.fullmatch(waiting.reason)
    assert match is not None
    until = datetime.fromisoformat(match.group(1)).timestamp()
    assert until >= refused.earliest_retry()

    # The same request came again, no earlier than the CA asked, and Pebble answered it.
    again = [e for e in proxy.posts_to(prefix) if e.at > refused.at and not e.refused]
    assert again, f"no {step} POST after the 429"
    assert again[0].at >= refused.earliest_retry(), (again[0].at, refused.earliest_retry())
    assert any(200 <= e.status < 300 for e in again), again  # (Pebble may badNonce one)

    assert result.state == "valid"
    assert final.reason == ""
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    assert proxy.orders_created == [result.url]
