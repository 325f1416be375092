"""What a fault run left behind, read from every place a user or operator would look.

- the API server: each Certificate's Ready condition and TLS Secret (its certificate must
  name exactly the requested names, match the key beside it and chain to the CA's root),
  the Orders of each Certificate, every Challenge's status;
- the ACME proxy: which orders the CA created, so each Order shows exactly one;
- BIND9: the ``_acme-challenge`` TXT records of the run's DNS-01 names;
- the HTTP-01 responder's directory: the tokens of the run's HTTP-01 Challenges;
- the run's own Temporal: every workflow and how it ended.

``inspect_run`` gathers them; ``Findings.problems()`` lists whatever is wrong in words.
The test asserts that list is empty; the benchmark prints the counts.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.query
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowExecutionStatus

from harness.acmeflow_api import (
    CERTIFICATE_LABEL,
    ActivityName,
    StackInfo,
    crds,
    load_private_key,
    workflow_id,
)
from harness.fault_histories import steps_redone_after_timeout
from harness.fault_plan import PlannedCertificate
from harness.kube import Kube
from harness.suite_helpers import assert_certificate

PUBLISH_ORDER_PROGRESS = ActivityName.PUBLISH_ORDER_PROGRESS.value
ORDER_WORKFLOW, CERTIFICATE_WORKFLOW, ISSUER_WORKFLOW = (
    "OrderWorkflow",
    "CertificateWorkflow",
    "IssuerAccountWorkflow",
)
LONG_RUNNING = {CERTIFICATE_WORKFLOW, ISSUER_WORKFLOW}
"""Workflows that run for as long as their resource exists: a Certificate sleeps until its
renewal, an Issuer waits for a spec change. Their closed runs may only have continued-as-new."""
FAILED_REASON = "Failed"
"""The reason of a Certificate's condition after a failed issuance (cert-manager's)."""
RUNNING, COMPLETED, CONTINUED = (
    WorkflowExecutionStatus.RUNNING,
    WorkflowExecutionStatus.COMPLETED,
    WorkflowExecutionStatus.CONTINUED_AS_NEW,
)


@dataclass(frozen=True)
class WorkflowRun:
    workflow_id: str
    run_id: str
    type: str
    status: str


@dataclass
class Findings:
    """Everything the run's checks found; empty problem lists mean all is well."""

    certificates: int
    ready: int = 0
    not_ready: dict[str, str] = field(default_factory=dict)
    """Each Certificate not Ready, and what its conditions say."""
    failed_issuances: dict[str, str] = field(default_factory=dict)
    """Certificates that count a failed issuance attempt, Ready or not: a user sees it."""
    secret_problems: dict[str, str] = field(default_factory=dict)
    orders_by_certificate: dict[str, list[str]] = field(default_factory=dict)
    new_orders: int = 0
    new_orders_by_order: dict[str, int] = field(default_factory=dict)
    stray_new_orders: list[str] = field(default_factory=list)
    """Orders the CA created that no Order resource shows."""
    challenges: int = 0
    """Challenges the Orders' workflows last reported; a valid one's resource is deleted once
    cleaned up, so the cluster alone no longer counts them."""
    unfinished_challenges: dict[str, str] = field(default_factory=dict)
    txt_left: dict[str, list[str]] = field(default_factory=dict)
    tokens_left: list[str] = field(default_factory=list)
    workflows: list[WorkflowRun] = field(default_factory=list)
    workflow_problems: list[str] = field(default_factory=list)
    steps_redone: dict[str, int] = field(default_factory=dict)
    """Steps a kill interrupted (the attempt timed out) and a worker ran again, by activity."""

    @property
    def orders(self) -> int:
        return sum(len(orders) for orders in self.orders_by_certificate.values())

    def workflow_counts(self) -> dict[str, dict[str, int]]:
        """Runs by workflow type and status."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for run in self.workflows:
            counts[run.type][run.status] += 1
        return {kind: dict(by_status) for kind, by_status in sorted(counts.items())}

    def problems(self) -> list[str]:
        found = [f"Certificate {n} not Ready: {why}" for n, why in sorted(self.not_ready.items())]
        found += [
            f"Certificate {n} failed an issuance attempt: {why}"
            for n, why in sorted(self.failed_issuances.items())
        ]
        found += [f"Secret of {n}: {why}" for n, why in sorted(self.secret_problems.items())]
        found += [
            f"Certificate {n} has {len(orders)} Orders: {orders}"
            for n, orders in sorted(self.orders_by_certificate.items())
            if len(orders) != 1
        ]
        found += [
            f"Order {n} was created {count} times at the CA"
            for n, count in sorted(self.new_orders_by_order.items())
            if count != 1
        ]
        found += [f"the CA created an order no Order shows: {url}" for url in self.stray_new_orders]
        found += [f"Challenge {n}: {why}" for n, why in sorted(self.unfinished_challenges.items())]
        found += [f"TXT left at {name}: {values}" for name, values in sorted(self.txt_left.items())]
        found += [f"HTTP-01 token left in the responder: {t}" for t in self.tokens_left]
        return found + self.workflow_problems

    def counts(self) -> dict[str, Any]:
        """The figures a benchmark prints."""
        return {
            "certificates": self.certificates,
            "ready": self.ready,
            "not_ready": len(self.not_ready),
            "failed_issuances": len(self.failed_issuances),
            "secrets_wrong": len(self.secret_problems),
            "orders": self.orders,
            "new_orders": self.new_orders,
            "challenges": self.challenges,
            "challenges_unfinished": len(self.unfinished_challenges),
            "txt_left": sum(len(v) for v in self.txt_left.values()),
            "tokens_left": len(self.tokens_left),
            "workflows": self.workflow_counts(),
            "steps_redone": dict(sorted(self.steps_redone.items())),
            "problems": len(self.problems()),
        }


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def is_ready(obj: dict[str, Any]) -> bool:
    return bool(_conditions(obj).get("Ready", {}).get("status") == "True")


def has_failed(obj: dict[str, Any]) -> bool:
    """The Certificate's issuance failed: it waits out its back-off (an hour at first)."""
    conditions = _conditions(obj)
    reasons = {conditions.get(t, {}).get("reason") for t in ("Ready", "Issuing")}
    return FAILED_REASON in reasons


def certificate_state(obj: dict[str, Any]) -> str:
    """The Ready and Issuing conditions in words, for a Certificate that is not Ready."""
    conditions = _conditions(obj)
    return "; ".join(
        f"{t} {c.get('status')} ({c.get('reason')}): {c.get('message')}"
        for t in ("Ready", "Issuing")
        if (c := conditions.get(t))
    )


def list_objects(kube: Kube, resource: type[crds.KubeResource], namespace: str) -> list[Any]:
    listing = kube.custom.list_namespaced_custom_object(
        crds.GROUP, crds.VERSION, namespace, resource.PLURAL
    )
    return list(listing.get("items") or [])


def secret_problem(
    kube: Kube, namespace: str, planned: PlannedCertificate, stack: StackInfo
) -> str | None:
    """Why the TLS Secret does not hold a certificate for the names and its key, if so."""
    try:
        secret = kube.core.read_namespaced_secret(planned.secret_name, namespace)
    except ApiException as error:
        return f"unreadable: {error.status} {error.reason}"
    data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    if secret.type != "kubernetes.io/tls" or not data.get("tls.crt") or not data.get("tls.key"):
        return f"type {secret.type} with keys {sorted(data)}"
    try:
        assert_certificate(
            data["tls.crt"].decode(),
            load_private_key(data["tls.key"]),
            list(planned.dns_names),
            stack.pebble_roots,
        )
    except (AssertionError, ValueError) as error:
        return f"{type(error).__name__}: {str(error)[:300]}"
    return None


def txt_values(stack: StackInfo, record: str) -> list[str]:
    host, port = stack.dns_address.rsplit(":", 1)
    answer = dns.query.udp(dns.message.make_query(record, "TXT"), host, port=int(port), timeout=5)
    return [b"".join(r.strings).decode() for rrset in answer.answer for r in rrset]


def challenge_problem(obj: dict[str, Any]) -> str | None:
    status = obj.get("status") or {}
    if (
        status.get("state") not in ("valid", "invalid")
        or status.get("processing")
        or (status.get("presented"))
    ):
        return (
            f"state {status.get('state')}, processing {status.get('processing')}, "
            f"presented {status.get('presented')}, reason {status.get('reason')!r}"
        )
    return None


async def workflow_runs(temporal_address: str, namespace: str) -> list[WorkflowRun]:
    """The runs of the resources in ``namespace`` (ids ``<kind>/<namespace>/<name>``).

    The bridge watches the whole cluster, so resources other tests left in theirs start
    workflows here too; they are not this run's.
    """
    client = await Client.connect(temporal_address)
    return [
        WorkflowRun(e.id, e.run_id, e.workflow_type, e.status.name if e.status else "UNKNOWN")
        async for e in client.list_workflows()
        if e.id.split("/")[1:2] == [namespace]
    ]


async def published_challenges(temporal_address: str, order_ids: list[str]) -> list[dict[str, Any]]:
    """The Challenges (spec and state) in each Order workflow's last published snapshot."""
    client = await Client.connect(temporal_address)
    found: list[dict[str, Any]] = []
    for order_id in order_ids:
        history = await client.get_workflow_handle(order_id).fetch_history()
        last: list[dict[str, Any]] = []
        for event in history.events:
            if not event.HasField("activity_task_scheduled_event_attributes"):
                continue
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == PUBLISH_ORDER_PROGRESS:
                update = json.loads(scheduled.input.payloads[0].data)
                last = list((update.get("progress") or {}).get("challenges") or last)
        found += last
    return found


def _unfinished(challenge: dict[str, Any]) -> str | None:
    if challenge.get("state") == "valid" and challenge.get("cleaned_up"):
        return None
    return f"state {challenge.get('state')}, cleaned up {challenge.get('cleaned_up')}"


def running_orders(temporal_address: str, namespace: str) -> int:
    """Order workflows still running (their Certificate may already show Ready)."""
    runs = asyncio.run(workflow_runs(temporal_address, namespace))
    return sum(1 for r in runs if r.type == ORDER_WORKFLOW and r.status == RUNNING.name)


def workflow_problems(
    runs: list[WorkflowRun], namespace: str, planned: list[PlannedCertificate]
) -> list[str]:
    """Order workflows completed, one per Certificate; long-running ones running, once each."""
    problems = []
    for run in runs:
        allowed = {RUNNING.name, CONTINUED.name} if run.type in LONG_RUNNING else {COMPLETED.name}
        if run.type not in LONG_RUNNING | {ORDER_WORKFLOW}:
            problems.append(f"unexpected workflow {run.workflow_id} ({run.type}) {run.status}")
        elif run.status not in allowed:
            problems.append(f"workflow {run.workflow_id} ({run.type}) {run.status}")
    orders = {r.workflow_id for r in runs if r.type == ORDER_WORKFLOW}
    if len(orders) != len(planned):
        problems.append(f"{len(orders)} Order workflows for {len(planned)} Certificates")
    running = Counter(
        r.workflow_id for r in runs if r.type == CERTIFICATE_WORKFLOW and r.status == RUNNING.name
    )
    for certificate in planned:
        wanted = workflow_id(crds.Certificate.KIND, namespace, certificate.name)
        if running[wanted] != 1:
            problems.append(f"{wanted}: {running[wanted]} running runs, not 1")
    return problems


def inspect_run(
    *,
    kube: Kube,
    stack: StackInfo,
    namespace: str,
    planned: list[PlannedCertificate],
    created_orders: list[str],
    temporal_address: str,
) -> Findings:
    """Look everywhere; ``created_orders``: the order URLs the proxy saw created."""
    findings = Findings(certificates=len(planned), new_orders=len(created_orders))
    listed = {c["metadata"]["name"]: c for c in list_objects(kube, crds.Certificate, namespace)}
    for certificate in planned:
        obj = listed.get(certificate.name)
        if obj is None or not is_ready(obj):
            findings.not_ready[certificate.name] = certificate_state(obj) if obj else "missing"
        if obj and (obj.get("status") or {}).get("failedIssuanceAttempts"):
            findings.failed_issuances[certificate.name] = certificate_state(obj)
    findings.ready = len(planned) - len(findings.not_ready)
    for certificate in planned:
        problem = secret_problem(kube, namespace, certificate, stack)
        if problem:
            findings.secret_problems[certificate.name] = problem
        txt = {r: v for r in certificate.txt_records if (v := txt_values(stack, r))}
        findings.txt_left.update(txt)
    _note_orders(findings, list_objects(kube, crds.Order, namespace), planned, created_orders)
    for challenge in list_objects(kube, crds.Challenge, namespace):  # those still there
        if problem := challenge_problem(challenge):
            findings.unfinished_challenges[challenge["metadata"]["name"]] = problem
    findings.workflows = asyncio.run(workflow_runs(temporal_address, namespace))
    order_ids = sorted({r.workflow_id for r in findings.workflows if r.type == ORDER_WORKFLOW})
    published = asyncio.run(published_challenges(temporal_address, order_ids))
    findings.challenges = len(published)
    for challenge in published:
        spec = challenge.get("spec") or {}
        if problem := _unfinished(challenge):
            findings.unfinished_challenges.setdefault(str(spec.get("name")), problem)
        token = str(spec.get("token") or "")
        if spec.get("type") == "HTTP-01" and token and (stack.http01_store / token).exists():
            findings.tokens_left.append(token)
    findings.workflow_problems = workflow_problems(findings.workflows, namespace, planned)
    executions = [(r.workflow_id, r.run_id) for r in findings.workflows]
    findings.steps_redone = dict(
        asyncio.run(steps_redone_after_timeout(temporal_address, executions))
    )
    return findings


def _note_orders(
    findings: Findings,
    orders: list[dict[str, Any]],
    planned: list[PlannedCertificate],
    created_orders: list[str],
) -> None:
    by_certificate: dict[str, list[str]] = {p.name: [] for p in planned}
    created = Counter(created_orders)
    shown = set()
    for order in orders:
        name = order["metadata"]["name"]
        owner = (order["metadata"].get("labels") or {}).get(CERTIFICATE_LABEL, "")
        by_certificate.setdefault(owner, []).append(name)
        url = str((order.get("status") or {}).get("url") or "")
        findings.new_orders_by_order[name] = created[url] if url else 0
        shown.add(url)
    findings.orders_by_certificate = by_certificate
    findings.stray_new_orders = sorted(url for url in created if url not in shown)
