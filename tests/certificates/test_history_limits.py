"""Orders and Challenges don't pile up: revisionHistoryLimit prunes old Orders, and a valid
Challenge goes once it is cleaned up, its Events staying behind; a failed Challenge stays,
for ``kubectl describe`` to say why, until its Order is pruned and takes it along."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from temporalio.client import Client

from acmeflow.contracts.progress import OrderUpdate
from acmeflow.devstack.pebble import PebbleEndpoints
from acmeflow.devstack.stack import StackInfo
from acmeflow.k8s_bridge.event_recorder import EventRecorder
from acmeflow.k8s_bridge.kube_api import load_kube_api
from acmeflow.k8s_bridge.order_mirror import KubernetesOrderObserver
from acmeflow.workflows.resource_ids import order_workflow_id
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    challenge_names,
    describe_events,
    issuer_manifest,
    wait_for,
    wait_for_state,
    workflow_progress,
)
from tests.certificates.status_fixtures import ResourceWatch, condition
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack

NAME = "pruned"
LIMIT = 2


def _orders(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    """The Certificate's Orders, oldest first."""
    listed = json.loads(
        kubectl(
            "get", "orders", "-n", namespace, "-l", f"acmeflow.io/certificate={NAME}", "-o", "json"
        ).stdout
    )
    items: list[dict[str, Any]] = listed["items"]
    return sorted(items, key=lambda o: str(o["metadata"]["creationTimestamp"]))


def _order_names(kubectl: Kubectl, namespace: str) -> list[str]:
    return [o["metadata"]["name"] for o in _orders(kubectl, namespace)]


def _challenge_events(kubectl: Kubectl, namespace: str, order: str) -> dict[str, list[str]]:
    """The reasons of the Events about each of ``order``'s Challenges, by Challenge."""
    listed = json.loads(
        kubectl(
            "get", "events", "-n", namespace,
            "--field-selector", "involvedObject.kind=Challenge", "-o", "json",
        ).stdout
    )  # fmt: skip
    found: dict[str, list[str]] = {}
    for event in sorted(listed["items"], key=lambda e: str(e["metadata"]["name"])):
        name = event["involvedObject"]["name"]
        if name.startswith(f"{order}-"):
            found.setdefault(name, []).append(event["reason"])
    return found


def _renew(stack: StackInfo, namespace: str) -> None:
    async def signal() -> None:
        temporal = await Client.connect(stack.temporal_address)
        await temporal.get_workflow_handle(f"certificate/{namespace}/{NAME}").signal("renew", "")

    asyncio.run(signal())


def _at_revision(kubectl: Kubectl, namespace: str, revision: int) -> None:
    wait_for(
        lambda: (
            (c := kubectl.get("certificate", NAME, namespace=namespace))
            .get("status", {})
            .get("revision")
            == revision
            and condition(c["status"], "Ready").get("status") == "True"
        ),
        f"Certificate {NAME} Ready at revision {revision}",
        timeout_s=120,
    )


def _publish_again(stack: StackInfo, namespace: str, order: str, uid: str) -> None:
    """What a restarted bridge does with the Order workflow's last snapshot."""
    progress = workflow_progress(stack, order_workflow_id(namespace, order))
    api = load_kube_api(stack.kubeconfig)
    observer = KubernetesOrderObserver(api, EventRecorder(api))
    update = OrderUpdate(
        workflow_id=order_workflow_id(namespace, order),
        namespace=namespace,
        order_name=order,
        progress=progress,
        resource_uid=uid,
    )
    observer.publish(update)
    observer.publish(update)


def test_history_limit_prunes_orders_and_challenges_go_or_stay_as_cert_manager_has_them(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    refusing_pebble: PebbleEndpoints,
) -> None:
    kubectl.create(
        issuer_manifest(stack, namespace, "refusing", server=refusing_pebble.directory_url)
    )
    manifest = certificate_manifest(
        namespace, NAME, ["pruned.example.com"], issuer="refusing", revisionHistoryLimit=LIMIT
    )
    with ResourceWatch(stack, namespace, "challenges") as challenges:
        kubectl.create(manifest)
        _prune_and_clean_up(stack, kubectl, namespace, challenges)


def _prune_and_clean_up(
    stack: StackInfo, kubectl: Kubectl, namespace: str, challenges: ResourceWatch
) -> None:
    # A failed Challenge stays, saying why, for as long as its Order does.
    [failed_order] = wait_for(lambda: _order_names(kubectl, namespace), "the first Order")
    assert wait_for_state(kubectl, namespace, failed_order, ("valid", "invalid")) == "invalid"
    [failed_challenge] = challenge_names(kubectl, namespace, failed_order)
    challenge = kubectl.get("challenge", failed_challenge, namespace=namespace)
    assert challenge["status"]["state"] == "invalid"
    assert challenge["status"]["reason"], "the failed Challenge does not say why"
    assert [o["kind"] for o in challenge["metadata"]["ownerReferences"]] == ["Order"]
    described = kubectl("describe", "challenge", failed_challenge, "-n", namespace).stdout
    assert ("Warning", "Failed") in [(t, r) for t, r, _ in describe_events(described)]

    # The right issuer: a valid Order whose Challenge is deleted once cleaned up.
    patch = json.dumps({"spec": {"issuerRef": {"name": "pebble"}}})
    kubectl("patch", "certificate", NAME, "-n", namespace, "--type=merge", "-p", patch)
    _at_revision(kubectl, namespace, 1)
    assert len(_order_names(kubectl, namespace)) == 2, "within the limit, nothing is pruned"
    good = _orders(kubectl, namespace)[-1]
    first_good = good["metadata"]["name"]
    assert good["status"]["state"] == "valid"
    wait_for(
        lambda: not challenge_names(kubectl, namespace, first_good),
        "the valid Challenge to be deleted",
    )
    events = _challenge_events(kubectl, namespace, first_good)
    assert list(events.values()) == [["Started", "Presented", "DomainVerified"]], events
    order_events = describe_events(kubectl("describe", "order", first_good, "-n", namespace).stdout)
    assert [r for _, r, _ in order_events] == ["Created", "OrderValid"]
    [authorization] = good["status"]["authorizations"]
    assert authorization["identifier"] == "pruned.example.com"
    assert challenge_names(kubectl, namespace, failed_order) == [failed_challenge]

    # A snapshot delivered again (a restarted bridge) does not bring the Challenge back.
    _publish_again(stack, namespace, first_good, good["metadata"]["uid"])
    assert challenge_names(kubectl, namespace, first_good) == []

    # Beyond the limit the oldest Order goes, and its failed Challenge with it.
    _renew(stack, namespace)
    _at_revision(kubectl, namespace, 2)
    orders = wait_for(
        lambda: (names := _order_names(kubectl, namespace)) and failed_order not in names and names,
        "the failed Order to be pruned",
    )
    assert len(orders) == LIMIT and orders[0] == first_good, orders
    wait_for(
        lambda: not challenge_names(kubectl, namespace, failed_order),
        "the pruned Order's Challenge to be collected with it",
    )
    _renew(stack, namespace)
    _at_revision(kubectl, namespace, 3)
    wait_for(
        lambda: first_good not in _order_names(kubectl, namespace),
        "the oldest valid Order to be pruned",
    )
    assert len(_order_names(kubectl, namespace)) == LIMIT
    # Created once, deleted once: no later snapshot, of the live bridge or the restarted
    # one above, made it again (once the watch has seen the newest Challenge go).
    newest = _order_names(kubectl, namespace)[-1]
    wait_for(
        lambda: any(
            kind == "DELETED" and obj["metadata"]["name"].startswith(f"{newest}-")
            for kind, obj in challenges.changes()
        ),
        "the watch to see the newest Order's Challenge deleted",
    )
    of_first = [
        kind
        for kind, obj in challenges.changes()
        if kind != "MODIFIED" and obj["metadata"]["name"].startswith(f"{first_good}-")
    ]
    assert of_first == ["ADDED", "DELETED"], of_first
