"""A CertificateRequest deleted mid-order: its Order goes, its workflow is cancelled, and
nothing it presented stays behind.

The worker here asks for the TXT record at a port where no DNS server listens, so its
self-check never passes: the order waits with its record published, and the test decides
when it ends.
"""

from __future__ import annotations

import uuid

import pytest

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    challenge_names,
    wait_for,
    workflow_runs,
)
from tests.cert_manager.request_harness import (
    ORDERS,
    REQUESTS,
    order_names,
    requested,
    wait_for_reason,
)
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import txt_values

WORKER_OVERRIDES = {"self_check_dns_port": free_port()}
pytestmark = pytest.mark.usefixtures("bridge", "order_worker")


def test_deleting_a_request_mid_order_cancels_and_cleans_up(
    stack: StackInfo,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    name = f"doomed-{uuid.uuid4().hex[:6]}.example.com"
    record = dns01_record_name(name)
    request = requested(kubectl, namespace, "doomed", [name], issuer="dns")
    wait_for(lambda: txt_values(stack, record), "the TXT record to be presented")
    challenge = f"{request.order_name}-0"
    wait_for(
        lambda: (
            "propagation"
            in str(
                kubectl.get("challenges.acmeflow.io", challenge, namespace=namespace)
                .get("status", {})
                .get("reason")
            )
        ),
        "the Challenge to say why it waits",
    )
    pending = wait_for_reason(kubectl, request, "Pending")
    assert (
        f'Waiting on certificate issuance from Order "{request.order_name}"'
        in (next(c for c in pending["status"]["conditions"] if c["type"] == "Ready")["message"])
    )
    workflow_id = f"order/{namespace}/{request.order_name}"
    assert workflow_runs(stack, workflow_id) == ["RUNNING"]

    kubectl("delete", REQUESTS, "doomed", "-n", namespace, "--wait=true")
    wait_for(
        lambda: request.order_name not in order_names(kubectl, namespace),
        "the garbage collector to delete the request's Order",
    )
    wait_for(
        lambda: workflow_runs(stack, workflow_id) == ["CANCELED"],
        "the Order's workflow to be cancelled",
    )
    assert txt_values(stack, record) == []
    wait_for(
        lambda: challenge_names(kubectl, namespace, request.order_name) == [],
        "the Challenge to be gone",
    )
    assert kubectl("get", ORDERS, "-n", namespace, "-o", "name").stdout.strip() == ""
