"""The Temporal UI shows an Order as the runbook says: listed, summarised, its details live.

Headless Chromium opens the dev server's UI. The order stays ``pending`` (its name is one
the stack's DNS does not serve, so the HTTP-01 self-check cannot pass), which is when an
operator looks. Screenshots go to ``artifacts/`` at the repository's top level.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import BridgeProcess, order_manifest, wait_for
from tests.k8s.kube_helpers import Kubectl
from tests.operations.ui_browser import Browser, find_chromium

TEMPORAL_NAMESPACE = "default"
# The columns the runbook suggests: search attributes make the list read like kubectl.
COLUMNS = ["Status", "Workflow ID", "AcmeflowOrderState", "AcmeflowDomains", "Type", "Start"]


def waiting(domain: str) -> str:
    """The reason of a Challenge whose name the stack's DNS answers NXDOMAIN for."""
    return f"Waiting for HTTP-01 challenge propagation: {domain} has no A or AAAA record"


@pytest.fixture
def browser(tmp_path: Path, artifacts: Path) -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    browser = Browser(executable, tmp_path / "chromium-profile", evidence_dir=artifacts)
    try:
        yield browser
    except BaseException:
        print(f"chromium log:\n{browser.log()[-3000:]}")
        raise
    finally:
        browser.close()


def _stuck_order(kubectl: Kubectl, namespace: str, name: str) -> str:
    domain = f"ui-{uuid.uuid4().hex[:6]}.unserved.test"
    kubectl.create(order_manifest(namespace, name, [domain]))
    wait_for(
        lambda: (
            waiting(domain)
            in str(
                json.loads(
                    kubectl(
                        "get", "challenge", f"{name}-0", "-n", namespace, "-o", "json", check=False
                    ).stdout
                    or "{}"
                )
                .get("status", {})
                .get("reason")
            )
        ),
        "the Challenge to say why it waits",
    )
    return domain


def test_the_ui_lists_the_order_and_shows_its_progress(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    browser: Browser,
    artifacts: Path,
) -> None:
    domain = _stuck_order(kubectl, namespace, "on-screen")
    workflow_id = f"order/{namespace}/on-screen"
    ui = stack.temporal_ui_url.rstrip("/")

    # The workflows page, filtered as the runbook's queries do, with its columns chosen.
    browser.navigate(f"{ui}/namespaces/{TEMPORAL_NAMESPACE}/workflows")
    browser.wait_for_text("Workflows")
    columns = {TEMPORAL_NAMESPACE: [{"label": label} for label in COLUMNS]}
    browser.evaluate(
        "localStorage.setItem('namespace-workflow-table-columns', "
        f"{json.dumps(json.dumps(columns))})"
    )
    query = quote(f"AcmeflowNamespace = '{namespace}' AND AcmeflowOrderState = 'pending'")
    browser.navigate(f"{ui}/namespaces/{TEMPORAL_NAMESPACE}/workflows?query={query}")
    listing = browser.wait_for_text(workflow_id, domain, "AcmeflowOrderState")
    row = next(line for line in listing.splitlines() if workflow_id in line)
    assert row.split("\t")[1:5] == [workflow_id, "pending", domain, "OrderWorkflow"], row
    browser.screenshot(artifacts / "temporal-ui-order-list.png")

    # The workflow's page: summary, details and the current details (the progress text).
    page = f"{ui}/namespaces/{TEMPORAL_NAMESPACE}/workflows/{quote(workflow_id, safe='')}"
    browser.navigate(page)
    browser.wait_for_text(workflow_id, "RUNNING", "Request Cancellation", "User Metadata")
    # The runbook's commands as buttons: cancel above, reset and terminate in the menu.
    browser.evaluate(
        "[...document.querySelectorAll('button')]"
        ".find(b => b.innerText.trim() === 'More Actions' && b.offsetParent !== null)"
        ".click()"
    )
    browser.wait_for_text("Reset", "Terminate")
    run_id = browser.evaluate("location.pathname.split('/')[5]")
    browser.navigate(f"{page}/{run_id}/user-metadata")
    shown = browser.wait_for_text(
        f"ACME order for {domain}",
        f"Order {namespace}/on-screen",
        "pending",
        "solving 1 challenge(s)",
        f"HTTP-01 for {domain} (on-screen-0): self-checking",
        waiting(domain),
    )
    uid = kubectl.get("order", "on-screen", namespace=namespace)["metadata"]["uid"]
    assert uid in shown
    browser.screenshot(artifacts / "temporal-ui-order-details.png")
