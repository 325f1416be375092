"""Orders whose workflow ended while no bridge heard its snapshots still show their ending.

A workflow waits for the bridge only so long; if the bridge is away when a run ends, the
final snapshot is never delivered. The workflow here runs with no observer at all (as the
bridge would start it, but delivering nothing), and the bridge starts only after it ended.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from acmeflow.crds.models import API_VERSION, Certificate, Issuer, Order
from acmeflow.devstack.stack import StackInfo
from acmeflow.k8s_bridge.issuer_translation import issuer_config
from acmeflow.k8s_bridge.order_input import order_input
from acmeflow.workflows.order import OrderResult, OrderWorkflow
from acmeflow.workflows.resource_ids import UID_MEMO, order_workflow_id
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    challenge_names,
    describe_events,
    object_events,
    order_manifest,
    order_state,
    wait_for_state,
)
from tests.k8s.kube_helpers import Kubectl


def _run_unobserved(
    stack: StackInfo, kubectl: Kubectl, *, namespace: str, name: str, task_queue: str
) -> OrderResult:
    """Run the Order's workflow to its end as its starter would, but with no observer."""
    order = Order.model_validate(kubectl.get("order", name, namespace=namespace))
    issuer = Issuer.model_validate(kubectl.get("issuer", "pebble", namespace=namespace))
    workflow_input = order_input(order, issuer_config(issuer), observer_task_queue="")

    async def run() -> OrderResult:
        client = await Client.connect(stack.temporal_address)
        return await client.execute_workflow(
            OrderWorkflow.run,
            workflow_input,
            id=order_workflow_id(namespace, name),
            task_queue=task_queue,
            memo={UID_MEMO: order.metadata.uid},
        )

    return asyncio.run(run())


def _owned_by_certificate(kubectl: Kubectl, namespace: str, manifest: dict[str, object]) -> None:
    """Make the Order a Certificate's, as the Certificate's workflow creates it. The
    Certificate names no existing issuer, so it issues nothing of its own."""
    kubectl.create(certificate_manifest(namespace, "owner", ["owner.example.com"], issuer="none"))
    owner = kubectl.get("certificate", "owner", namespace=namespace)["metadata"]
    manifest["metadata"] = {
        **manifest["metadata"],  # type: ignore[dict-item]
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": Certificate.KIND,
                "name": owner["name"],
                "uid": owner["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


@pytest.mark.parametrize("owner", ["user", "certificate"])
def test_an_order_that_ended_unheard_shows_valid_once_the_bridge_runs(
    stack: StackInfo,
    kubectl: Kubectl,
    queues: tuple[str, str],
    order_worker: None,
    namespace: str,
    tmp_path: Path,
    owner: str,
) -> None:
    name = "unheard"
    dns_name = f"unheard-{uuid.uuid4().hex[:6]}.example.com"
    manifest = order_manifest(namespace, name, [dns_name])
    if owner == "certificate":
        _owned_by_certificate(kubectl, namespace, manifest)
    kubectl.create(manifest)
    result = _run_unobserved(stack, kubectl, namespace=namespace, name=name, task_queue=queues[0])
    assert result.state == "valid"
    assert order_state(kubectl, namespace, name) == ""  # nothing reached Kubernetes

    bridge = BridgeProcess(stack, *queues, tmp_path / "bridge.log")
    bridge.start()
    try:
        assert wait_for_state(kubectl, namespace, name, ("valid", "invalid", "errored")) == "valid"
        status = kubectl.get("order", name, namespace=namespace)["status"]
        assert status["certificate"] == result.certificate
        assert "BEGIN CERTIFICATE" in status["certificate"]
        described = kubectl("describe", "order", name, "-n", namespace).stdout
        assert describe_events(described) == [
            ("Normal", "Created", f'Created Challenge resource "{name}-0" for domain "{dns_name}"'),
            ("Normal", "OrderValid", "Order completed successfully"),
        ]
        # Valid and cleaned up before the bridge heard of it: no Challenge is made for it
        # now, but its Events are recorded all the same.
        assert challenge_names(kubectl, namespace, name) == []
        events = object_events(kubectl, namespace, "Challenge", f"{name}-0")
        assert [r for _, r, _ in events] == ["Started", "Presented", "DomainVerified"]
    finally:
        bridge.stop()
        print(f"bridge log:\n{bridge.log()[-4000:]}")
