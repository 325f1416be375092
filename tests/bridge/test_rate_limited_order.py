"""A rate-limited Order says so in Kubernetes while it waits, then ends valid.

An Order applied with kubectl, through the real bridge, whose Issuer talks to Pebble
through the test's proxy; the proxy answers the first new-order with 429 ``rateLimited``.
While the Order waits out the CA's Retry-After, ``status.reason`` and a Warning Event
(``RateLimited``, as ``kubectl describe`` lists it) say until when and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from acmeflow.devstack.stack import StackInfo
from acmeflow.devstack.tls import create_ca
from tests.bridge.bridge_harness import (
    BridgeProcess,
    describe_events,
    describe_field,
    issuer_manifest,
    order_manifest,
    tsig_secret,
    wait_for,
    wait_for_state,
)
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.orders.durability_proxy import REFUSAL_DETAIL, AcmeProxy

RETRY_AFTER_S = 8
WAITING = re.compile(
    r"rate limited by the CA until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: " + re.escape(REFUSAL_DETAIL)
)
FINAL = ("valid", "invalid", "errored")


@pytest.fixture
def proxy(stack: StackInfo, tmp_path: Path) -> Iterator[AcmeProxy]:
    tls_ca = create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    with AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy:
        yield proxy


def test_a_rate_limited_order_says_so_until_the_ca_lets_it_go_on(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    proxy: AcmeProxy,
) -> None:
    proxy.rate_limit(proxy.new_order_path, times=1, retry_after_s=RETRY_AFTER_S)
    with temporary_namespace(kubectl, "rate-limited") as namespace:
        kubectl.create(tsig_secret(stack, namespace))
        kubectl.create(issuer_manifest(stack, namespace, "limited", server=proxy.directory_url))
        kubectl.create(
            order_manifest(namespace, "limited-order", ["test7.example.com"], issuer="limited")
        )

        def waiting_reason() -> str | None:
            order = kubectl.get("order", "limited-order", namespace=namespace)
            reason = str(order.get("status", {}).get("reason", ""))
            return reason if WAITING.fullmatch(reason) else None

        reason = wait_for(waiting_reason, "the Order's reason to say it is rate limited")
        described = kubectl("describe", "order", "limited-order", "-n", namespace).stdout
        assert describe_field(described, "Status", "Reason") == reason
        assert describe_field(described, "Status", "State") in (None, "")
        assert ("Warning", "RateLimited", reason) in describe_events(described)

        assert wait_for_state(kubectl, namespace, "limited-order", FINAL) == "valid"
        after = kubectl("describe", "order", "limited-order", "-n", namespace).stdout
        assert describe_field(after, "Status", "Reason") == ""
        # The wait came at new-order, before any Challenge existed.
        assert [r for _, r, _ in describe_events(after)] == ["RateLimited", "Created", "OrderValid"]

    [refused] = proxy.refused("rateLimited")
    assert refused.path == proxy.new_order_path
    assert len(proxy.orders_created) == 1
