"""``acmeflow status certificate`` and ``acmeflow renew``, run as an operator runs them.

Each command runs as its own process with what ``acmeflow dev env`` exports (KUBECONFIG,
TEMPORAL_ADDRESS, ACMEFLOW_TEMPORAL_UI), against Certificates the bridge and a worker
issue for real on the stack's Pebble.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from temporalio.client import Client

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import CertificateStatus, CertificateUpdate
from acmeflow.devstack.stack import StackInfo
from acmeflow.renew_command import WHY
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    condition_of,
    describe_events,
    wait_for,
    wait_for_ready,
)
from tests.k8s.kube_helpers import Kubectl

STAMP = "%Y-%m-%dT%H:%M:%SZ"


def acmeflow(stack: StackInfo, *args: str) -> subprocess.CompletedProcess[str]:
    """``acmeflow ARGS`` after ``eval "$(acmeflow dev env)"``, with acmeflow on PATH."""
    env = {**os.environ, **stack.env()}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["acmeflow", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _names(label: str) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{label}-{tag}.example.com", f"{label}-{tag}-www.example.com"]


def _issued(kubectl: Kubectl, namespace: str, name: str, names: list[str]) -> dict[str, Any]:
    kubectl.create(certificate_manifest(namespace, name, names))
    return wait_for_ready(kubectl, "certificate", namespace, name)


def _leaf(kubectl: Kubectl, namespace: str, secret: str) -> x509.Certificate:
    found = kubectl.get("secret", secret, namespace=namespace)
    return x509.load_pem_x509_certificates(base64.b64decode(found["data"]["tls.crt"]))[0]


def _owned_orders(kubectl: Kubectl, namespace: str, uid: str) -> list[dict[str, Any]]:
    listed = json.loads(kubectl("get", "orders", "-n", namespace, "-o", "json").stdout)
    owned = [
        order
        for order in listed["items"]
        if any(ref["uid"] == uid for ref in order["metadata"].get("ownerReferences", []))
    ]
    return sorted(owned, key=lambda o: o["metadata"]["creationTimestamp"])


def _revision(kubectl: Kubectl, namespace: str, name: str) -> int:
    certificate = kubectl.get("certificate", name, namespace=namespace)
    return int(certificate.get("status", {}).get("revision") or 0)


def _wait_for_revision(kubectl: Kubectl, namespace: str, name: str, revision: int) -> None:
    wait_for(
        lambda: (
            _revision(kubectl, namespace, name) == revision
            and condition_of(kubectl.get("certificate", name, namespace=namespace), "Ready").get(
                "status"
            )
            == "True"
        ),
        f"Certificate {namespace}/{name} Ready at revision {revision}",
    )


def _published_statuses(stack: StackInfo, workflow_id: str) -> list[CertificateStatus]:
    """Every status the Certificate's workflow told the bridge, over all its runs."""

    async def read() -> list[CertificateStatus]:
        client = await Client.connect(stack.temporal_address)
        statuses: list[CertificateStatus] = []
        async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            handle = client.get_workflow_handle(workflow_id, run_id=run.run_id)
            history = await handle.fetch_history()
            for event in history.events:
                scheduled = event.activity_task_scheduled_event_attributes
                if scheduled.activity_type.name != ActivityName.PUBLISH_CERTIFICATE_PROGRESS:
                    continue
                [update] = await client.data_converter.decode(
                    scheduled.input.payloads, [CertificateUpdate]
                )
                statuses.append(update.status)
        return statuses

    return asyncio.run(read())


def test_status_shows_one_certificate_from_its_conditions_to_its_workflows(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    names = _names("status")
    certificate = _issued(kubectl, namespace, "web", names)
    leaf = _leaf(kubectl, namespace, "web-tls")
    [order] = _owned_orders(kubectl, namespace, certificate["metadata"]["uid"])
    order_name = order["metadata"]["name"]

    shown = acmeflow(stack, "status", "certificate", "web", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "Ready: True, Reason: Ready, Message: Certificate is up to date and has not expired" in (
        line.strip() for line in lines
    )
    # The Secret's certificate, read from tls.crt itself.
    secret = lines[lines.index("Secret:") : lines.index("Secret:") + 12]
    assert "  Name: web-tls" in secret
    assert f"  Issuer: {leaf.issuer.rfc4514_string()}" in secret
    assert f"  Not Before: {leaf.not_valid_before_utc.strftime(STAMP)}" in secret
    assert f"  Not After: {leaf.not_valid_after_utc.strftime(STAMP)}" in secret
    assert f"  Serial Number: {leaf.serial_number:x}" in secret
    assert [f"  - {name}" for name in sorted(names)] == sorted(
        line for line in secret if line.startswith("  - ")
    )
    # The renewal time as the Certificate says it just before or just after (the round
    # after an issuance may move it, to the CA's ARI window), with the rule that set it.
    after = kubectl.get("certificate", "web", namespace=namespace)
    said = {
        f"Renewal Time: {status['renewalTime']} ({status['renewalRule']})"
        for status in (certificate["status"], after["status"])
    }
    assert said & set(lines), (said, lines)
    assert "Revision: 1" in lines
    # The current Order, its Challenges (as resources, or as the workflow tells them once
    # the valid ones are deleted), and the workflows behind them.
    assert f"  Name: {order_name}" in lines
    assert "  State: valid, Reason: " in lines
    challenges = [line for line in lines if line.startswith("- Name: ")]
    assert sorted(c.split("Domain: ")[1].split(",")[0] for c in challenges) == sorted(names)
    assert all("State: valid" in c for c in challenges), challenges
    assert f"  Certificate: certificate/{namespace}/web (Running)" in lines
    assert f"  Order: order/{namespace}/{order_name} (Completed)" in lines
    ui = f"{stack.temporal_ui_url}/namespaces/default/workflows"
    assert f"    Temporal UI: {ui}/certificate%2F{namespace}%2Fweb" in lines
    assert f"    Temporal UI: {ui}/order%2F{namespace}%2F{order_name}" in lines
    events = [line.split(None, 2) for line in lines[lines.index("Events:") + 1 :]]
    reasons = [cells[1] for cells in events[:3]]
    assert reasons == ["Generated", "OrderCreated", "Issuing"]


def test_status_and_renew_refuse_what_does_not_exist(
    stack: StackInfo, kubectl: Kubectl, namespace: str
) -> None:
    not_found = f'error: Certificate "nope" not found in namespace "{namespace}"'
    missing = acmeflow(stack, "status", "certificate", "nope", "-n", namespace)
    assert missing.returncode == 1
    assert missing.stderr.strip() == not_found
    assert missing.stdout == ""
    gone = f"gone-{uuid.uuid4().hex[:6]}"
    no_namespace = acmeflow(stack, "status", "certificate", "web", "-n", gone)
    assert no_namespace.returncode == 1
    assert no_namespace.stderr.strip() == f'error: namespace "{gone}" not found'
    renew = acmeflow(stack, "renew", "nope", "-n", namespace)
    assert renew.returncode == 1
    assert renew.stderr.strip() == not_found
    assert renew.stdout == ""
    renew_all = acmeflow(stack, "renew", "--all", "-n", gone)
    assert renew_all.returncode == 1
    assert renew_all.stderr.strip() == f'error: namespace "{gone}" not found'
    nothing = acmeflow(stack, "renew", "-n", namespace)
    assert nothing.returncode == 1
    assert "name at least one Certificate, or pass --all" in nothing.stderr
    # A Temporal out of reach: status still shows what Kubernetes knows and says which
    # part it could not read; renew cannot do its one job and fails.
    kubectl.create(certificate_manifest(namespace, "unreached", _names("unreached")))
    away = ("--temporal-address", "127.0.0.1:1")
    shown = acmeflow(stack, "status", "certificate", "unreached", "-n", namespace, *away)
    assert shown.returncode == 0, shown.stderr
    assert "Name: unreached" in shown.stdout
    said = f"  Certificate: certificate/{namespace}/unreached (cannot reach Temporal at 127.0.0.1:1"
    assert said in shown.stdout
    refused = acmeflow(stack, "renew", "unreached", "-n", namespace, *away)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: cannot reach Temporal at 127.0.0.1:1")
    assert refused.stdout == ""


def test_renew_reissues_through_the_workflow_and_replaces_the_secret_in_place(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    first = _issued(kubectl, namespace, "renewed", _names("renew"))
    other = _issued(kubectl, namespace, "other", _names("other"))
    secret_uid = kubectl.get("secret", "renewed-tls", namespace=namespace)["metadata"]["uid"]
    serial = _leaf(kubectl, namespace, "renewed-tls").serial_number

    renewed = acmeflow(stack, "renew", "renewed", "-n", namespace)
    assert renewed.returncode == 0, renewed.stderr
    assert renewed.stdout == f"Manually triggered issuance of Certificate {namespace}/renewed\n"
    _wait_for_revision(kubectl, namespace, "renewed", 2)

    # Replaced in place: the same Secret object (never deleted), a new certificate in it.
    secret = kubectl.get("secret", "renewed-tls", namespace=namespace)
    assert secret["metadata"]["uid"] == secret_uid
    assert _leaf(kubectl, namespace, "renewed-tls").serial_number != serial
    orders = _owned_orders(kubectl, namespace, first["metadata"]["uid"])
    assert len(orders) == 2, "a new Order for the new revision"
    assert orders[-1]["status"]["state"] == "valid"
    described = kubectl("describe", "certificate", "renewed", "-n", namespace).stdout
    created = [m for _, reason, m in describe_events(described) if reason == "OrderCreated"]
    assert created == [f'Created Order resource "{o["metadata"]["name"]}"' for o in orders]
    # What the Certificate showed while it reissued: Issuing True, ManuallyTriggered.
    issuing = [
        (s.issuing_reason, s.issuing_message)
        for s in _published_statuses(stack, f"certificate/{namespace}/renewed")
        if s.issuing
    ]
    assert ("ManuallyTriggered", WHY) in issuing
    assert _revision(kubectl, namespace, "other") == 1, "only the named Certificate"

    everything = acmeflow(stack, "renew", "--all", "-n", namespace)
    assert everything.returncode == 0, everything.stderr
    assert sorted(everything.stdout.splitlines()) == [
        f"Manually triggered issuance of Certificate {namespace}/other",
        f"Manually triggered issuance of Certificate {namespace}/renewed",
    ]
    _wait_for_revision(kubectl, namespace, "renewed", 3)
    _wait_for_revision(kubectl, namespace, "other", 2)
    assert len(_owned_orders(kubectl, namespace, other["metadata"]["uid"])) == 2
