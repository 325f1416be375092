"""Every command of ``docs/runbook.md``, run against the stack, and what kubectl shows after.

Orders here fail or stall for reasons a person meets in practice: a name the CA refuses
(``blocked.test`` errors at once), a name nobody serves (its HTTP-01 self-check cannot
resolve it, so the order stays ``pending`` and its Challenge says why), and a DNS-01
issuer whose TSIG Secret does not exist yet (``errored`` at once; creating the Secret
and resetting the workflow issues the certificate).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.certificate_status_view import NO_UI
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.order import CANCELLED_REASON
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    challenge_names,
    describe_events,
    describe_field,
    dns01_solver,
    issuer_manifest,
    object_events,
    order_manifest,
    order_state,
    wait_for,
    wait_for_ready,
    wait_for_state,
)
from tests.certificates.status_fixtures import ResourceWatch
from tests.k8s.kube_helpers import Kubectl
from tests.operations.runbook_commands import (
    ENV_BLOCK,
    PLACEHOLDERS,
    RUNBOOK,
    Runbook,
    parse_blocks,
    placeholders,
)
from tests.orders.order_harness import txt_values


def waiting_for_http01(domain: str) -> str:
    """The reason of a Challenge whose name the stack's DNS answers NXDOMAIN for."""
    return f"Waiting for HTTP-01 challenge propagation: {domain} has no A or AAAA record"


@pytest.fixture(scope="module")
def runbook(stack: StackInfo) -> Iterator[Runbook]:
    yield Runbook.load(stack)


def _unserved_name(label: str) -> str:
    """A name the stack's DNS does not serve: its HTTP-01 self-check can never pass."""
    return f"{label}-{uuid.uuid4().hex[:6]}.unserved.test"


def _challenge(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    result = kubectl("get", "challenge", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _wait_until_waiting(kubectl: Kubectl, namespace: str, challenge: str) -> dict[str, Any]:
    """Until the Challenge says its self-check finds no address for the name."""
    found: dict[str, Any] = wait_for(
        lambda: (
            (c := _challenge(kubectl, namespace, challenge))
            and waiting_for_http01(c["spec"]["dnsName"]) in str(c.get("status", {}).get("reason"))
            and c
        ),
        f"Challenge {namespace}/{challenge} to say why it waits",
    )
    return found


def _uid(kubectl: Kubectl, namespace: str, order: str) -> str:
    return str(kubectl.get("order", order, namespace=namespace)["metadata"]["uid"])


def _json_in(output: str) -> Any:
    """The JSON document in a ``temporal workflow query`` answer."""
    return json.loads(output[output.index("{") : output.rindex("}") + 1])


def _listed(output: str) -> list[tuple[str, str]]:
    """(status, workflow id) of each row of ``temporal workflow list``."""
    rows = []
    for line in output.splitlines()[1:]:
        cells = line.split()
        if len(cells) >= 2:
            rows.append((cells[0], cells[1]))
    return rows


def _event_reasons(kubectl: Kubectl, namespace: str, kind: str, name: str) -> list[str]:
    described = kubectl("describe", kind, name, "-n", namespace).stdout
    return [reason for _, reason, _ in describe_events(described)]


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_the_runbook_marks_every_command_it_shows() -> None:
    """The convention the other tests rely on: named ``sh`` blocks, known placeholders."""
    text = RUNBOOK.read_text()
    blocks = parse_blocks(text)
    assert ENV_BLOCK in blocks
    for name, body in blocks.items():
        assert placeholders(body) <= PLACEHOLDERS, name
        assert body.strip(), name
    # A command named inline in the prose must be one a block runs, so none escapes.
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    lines = [line.strip() for body in blocks.values() for line in body.splitlines()]
    for command in re.findall(r"`((?:kubectl|temporal) [^`.]*)`", prose):
        assert any(line.startswith(command) for line in lines), command


def test_a_certificate_that_is_not_issued_from_kubectl_to_temporal(
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    runbook: Runbook,
) -> None:
    """Section 1 to 3: Certificate -> Order -> Challenge, then the workflow behind them."""
    assert "TEMPORAL_API_KEY" in runbook.run("cli-options").stdout
    assert "temporal" in runbook.run("dev-status").stdout
    domain = _unserved_name("cert")
    kubectl.create(certificate_manifest(namespace, "stuck-cert", [domain]))

    def created_order() -> str:
        described = runbook.run(
            "describe-certificate", namespace=namespace, certificate="stuck-cert"
        ).stdout
        for _, reason, message in describe_events(described) if "Events:" in described else []:
            if reason == "OrderCreated":
                return message.split('"')[1]
        return ""

    order: str = wait_for(created_order, "the Certificate to name its Order")
    _wait_until_waiting(kubectl, namespace, f"{order}-0")
    _status_says_why(runbook, namespace, order, domain)
    _follow_kubectl(runbook, namespace, order, domain)
    _follow_temporal(runbook, kubectl, namespace, order, domain)

    workflow_id = f"order/{namespace}/{order}"
    assert _listed(runbook.run("list-domain", domain=domain).stdout) == [("Running", workflow_id)]
    time.sleep(1.5)
    stuck = _listed(runbook.run("list-stuck", age="1 second").stdout)
    assert ("Running", workflow_id) in stuck
    assert ("Running", workflow_id) not in _listed(
        runbook.run("list-stuck", age="10 minutes").stdout
    )
    in_namespace = _listed(runbook.run("list-namespace", namespace=namespace).stdout)
    assert in_namespace == [("Running", workflow_id)]  # not the Certificate's workflow


def _status_says_why(runbook: Runbook, namespace: str, order: str, domain: str) -> None:
    """The one screen: the Order pending, its Challenge (a resource) saying what it waits for."""
    lines = runbook.run(
        "status-certificate", namespace=namespace, certificate="stuck-cert"
    ).stdout.splitlines()
    secret_missing = 'Issuing certificate as Secret "stuck-cert-tls" does not exist'
    assert f"  Ready: False, Reason: DoesNotExist, Message: {secret_missing}" in lines
    assert f"  Issuing: True, Reason: DoesNotExist, Message: {secret_missing}" in lines
    assert f"  Name: {order}" in lines
    assert "  State: pending, Reason: " in lines
    assert (
        f"- Name: {order}-0, Type: HTTP-01, Domain: {domain}, State: pending, "
        f"Reason: {waiting_for_http01(domain)}, Processing: true, Presented: true"
    ) in lines
    assert f"  Order: order/{namespace}/{order} (Running)" in lines


def test_a_certificate_is_read_on_one_screen_and_renewed(
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    runbook: Runbook,
) -> None:
    """acmeflow's own commands: the status screen of an issued Certificate, then renew."""
    domain = f"runbook-{uuid.uuid4().hex[:6]}.example.com"
    kubectl.create(certificate_manifest(namespace, "web", [domain]))
    wait_for_ready(kubectl, "certificate", namespace, "web")
    lines = runbook.run("status-certificate", namespace=namespace, certificate="web").stdout
    assert "Ready: True, Reason: Ready" in lines
    if runbook.stack.temporal_ui_url:
        ui = f"{runbook.stack.temporal_ui_url}/namespaces/default/workflows"
        assert f"    Temporal UI: {ui}/certificate%2F{namespace}%2Fweb" in lines.splitlines()
    else:  # a Temporal cluster here has no UI: no link to a page that is not there
        assert f"    Temporal UI: {NO_UI}" in lines.splitlines()
    triggered = f"Manually triggered issuance of Certificate {namespace}/web\n"
    for block, revision in (("renew-certificate", 2), ("renew-all", 3)):
        assert runbook.run(block, namespace=namespace, certificate="web").stdout == triggered
        wait_for(
            lambda revision=revision: (
                kubectl.get("certificate", "web", namespace=namespace)
                .get("status", {})
                .get("revision")
                == revision
            ),
            f"revision {revision} of the Certificate",
        )


def _follow_kubectl(runbook: Runbook, namespace: str, order: str, domain: str) -> None:
    """Section 1: the Order and its Challenge say what they wait for."""
    challenge = f"{order}-0"
    rows = _rows(runbook.run("get-orders", namespace=namespace).stdout)
    assert [f"order.acmeflow.io/{order}", "pending", "pebble"] in [row[:3] for row in rows]
    assert [f"challenge.acmeflow.io/{challenge}", "pending", domain] in [row[:3] for row in rows]
    described = runbook.run("describe-order", namespace=namespace, order=order).stdout
    assert describe_field(described, "Status", "State") == "pending"
    assert describe_events(described) == [
        ("Normal", "Created", f'Created Challenge resource "{challenge}" for domain "{domain}"')
    ]
    rows = _rows(runbook.run("get-challenges", namespace=namespace, order=order).stdout)
    assert rows[0][:4] == ["NAME", "STATE", "DOMAIN", "REASON"]
    assert rows[1][:3] == [challenge, "pending", domain]
    assert waiting_for_http01(domain) in " ".join(rows[1])
    described = runbook.run("describe-challenge", namespace=namespace, challenge=challenge).stdout
    assert waiting_for_http01(domain) in (describe_field(described, "Status", "Reason") or "")


def _follow_temporal(
    runbook: Runbook, kubectl: Kubectl, namespace: str, order: str, domain: str
) -> None:
    """Section 2: the same order as a workflow: describe, details, progress, history."""
    challenge = f"{order}-0"
    described = runbook.run("describe-workflow", namespace=namespace, order=order).stdout
    assert f"order/{namespace}/{order}" in described
    assert f"certificate/{namespace}/stuck-cert" in described  # ParentWorkflowId
    assert "resourceUID" in described
    assert _uid(kubectl, namespace, order) in described
    assert f'"ACME order {order} for Certificate stuck-cert"' in described
    details = runbook.run("workflow-metadata", namespace=namespace, order=order).stdout
    assert "**pending**: solving 1 challenge(s)" in details
    assert f"HTTP-01 for {domain} ({challenge}): self-checking" in details
    assert waiting_for_http01(domain) in details
    progress = _json_in(runbook.run("query-progress", namespace=namespace, order=order).stdout)
    assert progress["state"] == "pending"
    assert progress["url"] == kubectl.get("order", order, namespace=namespace)["status"]["url"]
    [solving] = progress["challenges"]
    assert solving["spec"]["name"] == challenge
    assert waiting_for_http01(domain) in solving["reason"]
    history = runbook.run("show-history", namespace=namespace, order=order).stdout
    for event in ("WorkflowExecutionStarted", "UpsertWorkflowSearchAttributes", "ActivityTask"):
        assert event in history
    status = _json_in(
        runbook.run("query-certificate", namespace=namespace, certificate="stuck-cert").stdout
    )
    assert status["issuing"] is True
    assert [e["reason"] for e in status["events"]] == ["Generated", "OrderCreated"]


def test_an_order_the_ca_refuses_is_listed_as_failed(
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    runbook: Runbook,
) -> None:
    kubectl.create(order_manifest(namespace, "refused", ["blocked.test"]))
    assert wait_for_state(kubectl, namespace, "refused", ("errored", "invalid")) == "errored"
    reason = kubectl.get("order", "refused", namespace=namespace)["status"]["reason"]
    assert "blocked.test" in reason
    failed = _listed(runbook.run("list-failed").stdout)
    assert ("Failed", f"order/{namespace}/refused") in failed
    history = runbook.run("show-history", namespace=namespace, order="refused").stdout
    assert "WorkflowExecutionFailed" in history


def test_a_stuck_order_is_cancelled_retried_and_terminated(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    runbook: Runbook,
) -> None:
    """Section 4 and 5 on an order that cannot finish: cancel cleans up, reset starts it
    again (the Order shows the new attempt), terminate ends it without clean-up."""
    domain = _unserved_name("stuck")
    kubectl.create(order_manifest(namespace, "stuck", [domain]))
    first = _wait_until_waiting(kubectl, namespace, "stuck-0")
    first_token = first["spec"]["token"]
    assert (stack.http01_store / first_token).exists()
    uid = _uid(kubectl, namespace, "stuck")
    first_url = kubectl.get("order", "stuck", namespace=namespace)["status"]["url"]

    runbook.run("cancel", namespace=namespace, order="stuck")
    assert wait_for_state(kubectl, namespace, "stuck", ("errored",)) == "errored"
    status = kubectl.get("order", "stuck", namespace=namespace)["status"]
    assert status["reason"] == CANCELLED_REASON
    assert _event_reasons(kubectl, namespace, "order", "stuck") == ["Created", "OrderFailed"]
    assert not (stack.http01_store / first_token).exists(), "cancel cleans up"
    failed = _listed(runbook.run("list-failed").stdout)
    assert ("Canceled", f"order/{namespace}/stuck") in failed

    runbook.run("reset", namespace=namespace, order="stuck")
    wait_for(
        lambda: (
            order_state(kubectl, namespace, "stuck") == "pending"
            and _event_reasons(kubectl, namespace, "order", "stuck").count("Created") == 2
        ),
        "the Order to show the new attempt",
    )
    status = kubectl.get("order", "stuck", namespace=namespace)["status"]
    assert status["reason"] == ""
    assert "failureTime" not in status
    assert _event_reasons(kubectl, namespace, "order", "stuck") == [
        "Created",
        "OrderFailed",
        "Created",
    ]
    progress = _json_in(runbook.run("query-progress", namespace=namespace, order="stuck").stdout)
    second_token = progress["challenges"][0]["spec"]["token"]
    assert status["url"] == progress["url"] != first_url, "a new ACME order"
    again = _wait_until_waiting(kubectl, namespace, "stuck-0")
    assert again["spec"]["token"] == second_token, "the Challenge shows the new attempt"
    runs = _listed(runbook.run("list-runs", namespace=namespace, order="stuck").stdout)
    workflow_id = f"order/{namespace}/stuck"
    assert runs == [("Running", workflow_id), ("Canceled", workflow_id)]
    described = runbook.run("describe-workflow", namespace=namespace, order="stuck").stdout
    assert uid in described, "the memo survives the reset"
    assert f'"ACME order for {domain}"' in described
    assert ("Running", f"order/{namespace}/stuck") in _listed(
        runbook.run("list-domain", domain=domain).stdout
    ), "the search attributes survive the reset"
    assert runbook.run("order-uid", namespace=namespace, order="stuck").stdout.strip() == uid

    runbook.run("terminate", namespace=namespace, order="stuck")
    assert wait_for_state(kubectl, namespace, "stuck", ("errored",)) == "errored"
    reason = kubectl.get("order", "stuck", namespace=namespace)["status"]["reason"]
    assert reason == (
        f"Order workflow order/{namespace}/stuck was terminated from Temporal: "
        "stuck on a name nobody serves"
    )
    assert _event_reasons(kubectl, namespace, "order", "stuck")[-1] == "OrderFailed"
    terminated = _listed(runbook.run("list-terminated", namespace=namespace).stdout)
    assert terminated == [("Terminated", f"order/{namespace}/stuck")]
    # Terminate skips clean-up: the second attempt's token is still published.
    assert (stack.http01_store / second_token).exists()
    (stack.http01_store / second_token).unlink()


def test_an_order_that_failed_for_a_fixable_reason_is_retried_and_issued(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    runbook: Runbook,
) -> None:
    """The retry path: errored for want of a TSIG Secret; create it, reset, valid."""
    solver = dns01_solver(stack)
    solver["dns01"]["rfc2136"]["tsigSecretSecretRef"] = {"name": "tsig-later", "key": "secret"}
    kubectl.create(issuer_manifest(stack, namespace, "dns", solvers=[solver]))
    domain = f"retry-{uuid.uuid4().hex[:6]}.example.com"
    kubectl.create(order_manifest(namespace, "fixable", [domain], issuer="dns"))
    assert wait_for_state(kubectl, namespace, "fixable", ("errored", "valid")) == "errored"
    failed = kubectl.get("order", "fixable", namespace=namespace)["status"]
    assert "tsig-later" in failed["reason"]
    assert "does not exist" in failed["reason"]
    assert ("Failed", f"order/{namespace}/fixable") in _listed(runbook.run("list-failed").stdout)
    uid = _uid(kubectl, namespace, "fixable")

    secret = stack.tsig_secret_path.read_text().strip()
    kubectl(
        "create",
        "secret",
        "generic",
        "tsig-later",
        "-n",
        namespace,
        f"--from-literal=secret={secret}",
    )
    # The retry's Challenge is deleted once valid and cleaned up: a watch sees it live.
    with ResourceWatch(stack, namespace, "challenges") as watched:
        runbook.run("reset", namespace=namespace, order="fixable")
        wait_for(
            lambda: (
                kubectl.get("order", "fixable", namespace=namespace)["status"].get("url")
                not in (None, failed["url"])
            ),
            "the Order to show the new attempt's ACME order",
        )
        assert wait_for_state(kubectl, namespace, "fixable", ("valid", "errored")) == "valid", (
            kubectl.get("order", "fixable", namespace=namespace)["status"]["reason"]
        )
        wait_for(
            lambda: not challenge_names(kubectl, namespace, "fixable"),
            "the valid Challenge to be deleted",
        )

    order = kubectl.get("order", "fixable", namespace=namespace)
    status = order["status"]
    assert status["reason"] == ""
    assert "failureTime" not in status
    assert status["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert status["url"] != failed["url"], "the retry is a new ACME order"
    described = kubectl("describe", "order", "fixable", "-n", namespace).stdout
    events = describe_events(described)
    created = f'Created Challenge resource "fixable-0" for domain "{domain}"'
    assert events == [
        ("Normal", "Created", created),
        ("Warning", "OrderFailed", failed["reason"]),
        ("Normal", "Created", created),
        ("Normal", "OrderValid", "Order completed successfully"),
    ]
    progress = _json_in(runbook.run("query-progress", namespace=namespace, order="fixable").stdout)
    [challenge] = [o for kind, o in watched.changes() if kind == "ADDED"]
    assert challenge["spec"]["url"] == progress["challenges"][0]["spec"]["url"]
    # The first attempt's Challenge named a token of the abandoned ACME order; its spec is
    # immutable, so the bridge replaced it: this one tells the second attempt only.
    this_one = challenge["metadata"]["uid"]
    challenge_events = object_events(kubectl, namespace, "Challenge", "fixable-0", uid=this_one)
    assert [r for _, r, _ in challenge_events] == ["Started", "Presented", "DomainVerified"]
    assert txt_values(stack, dns01_record_name(domain)) == []

    workflow_id = f"order/{namespace}/fixable"
    runs = _listed(runbook.run("list-runs", namespace=namespace, order="fixable").stdout)
    assert runs == [("Completed", workflow_id), ("Failed", workflow_id)]
    described = runbook.run("describe-workflow", namespace=namespace, order="fixable").stdout
    assert uid in described, "the memo survives the reset"
    assert ("Completed", workflow_id) in _listed(runbook.run("list-domain", domain=domain).stdout)


def test_an_order_deleted_and_created_again_gets_a_new_run(
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    runbook: Runbook,
) -> None:
    """The namesake policy, the hard way: the bridge is down while the Order is replaced."""
    workflow_id = f"order/{namespace}/again"
    kubectl.create(order_manifest(namespace, "again", [_unserved_name("again")]))
    _wait_until_waiting(kubectl, namespace, "again-0")
    old_uid = _uid(kubectl, namespace, "again")
    bridge.kill()
    try:
        runbook.run("delete-order", namespace=namespace, order="again")
        kubectl.create(order_manifest(namespace, "again", [_unserved_name("again")]))
    finally:
        bridge.start()
    new_uid = runbook.run("order-uid", namespace=namespace, order="again").stdout.strip()
    assert new_uid not in ("", old_uid)
    wait_for(
        lambda: (
            _listed(runbook.run("list-runs", namespace=namespace, order="again").stdout)
            == [("Running", workflow_id), ("Canceled", workflow_id)]
        ),
        "the old run to be cancelled and a new one started",
    )
    described = runbook.run("describe-workflow", namespace=namespace, order="again").stdout
    assert new_uid in described
    assert old_uid not in described
    _wait_until_waiting(kubectl, namespace, "again-0")
    challenge = kubectl.get("challenge", "again-0", namespace=namespace)
    assert challenge["metadata"]["ownerReferences"][0]["uid"] == new_uid
    assert order_state(kubectl, namespace, "again") == "pending"
    # The old run's cancellation never reaches the new Order.
    assert _event_reasons(kubectl, namespace, "order", "again") == ["Created"]


def test_every_runbook_command_was_run(runbook: Runbook, request: pytest.FixtureRequest) -> None:
    """Runs last: a command added to the runbook without a test fails here."""
    module = request.node.module
    tests = {name for name in vars(module) if name.startswith("test_")}
    selected = {
        item.name
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is module
    }
    if tests - selected:
        pytest.skip(f"only meaningful with the whole module; not selected: {tests - selected}")
    assert set(runbook.blocks) - runbook.ran == set()
