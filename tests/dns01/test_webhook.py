"""DNS-01 through cert-manager's webhook protocol, to a real webhook built on cert-manager's
own library (deploy/dns01-webhook), registered with the stack's API server by an APIService.

The webhook writes into the stack's BIND9, so Pebble validates what it wrote; it logs
every request it receives, so the tests read the payload as a webhook sees it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from kubernetes import config as kube_config
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.dns01_webhook import (
    WEBHOOK_UNAVAILABLE,
    WebhookPublisher,
    challenge_request,
)
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Dns01Webhook, SolverConfig
from acmeflow.contracts.states import ChallengeType
from acmeflow.devstack import go_builds
from acmeflow.devstack.bind import CNAME_NAME, CNAME_TARGET_ZONE
from acmeflow.devstack.dns_webhook import DnsWebhookEndpoints
from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.order import OrderTimeouts, OrderWorkflow
from tests.dns01.provider_cases import unique_label
from tests.dns01.webhook_stack import kubernetes_worker, received, webhook_solver
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import (
    assert_certificate,
    issuer,
    prepare,
    start,
    txt_values,
)

WEBHOOK = Dns01Webhook(
    group_name="acme.example.test",
    solver_name="example-solver",
    config_json='{"apiTokenSecretRef": {"name": "token", "key": "api-token"}}',
    resource_namespace="team-a",
)


def _spec(
    *, url: str = "https://ca.test/chall/1", webhook: Dns01Webhook = WEBHOOK
) -> ChallengeSpec:
    return ChallengeSpec(
        name="wild-1",
        namespace="team-a",
        order_name="wild",
        dns_name="example.org",
        wildcard=True,
        type=ChallengeType.DNS01,
        token="token",
        key="txt-value",
        url=url,
        authorization_url="https://ca.test/authz/1",
        solver=SolverConfig(webhook=webhook),
    )


TARGET = TxtTarget(fqdn="_acme-challenge.example.org.", zone="example.org.", value="txt-value")


def test_the_request_carries_cert_managers_fields_with_one_uid_per_challenge() -> None:
    present = challenge_request(_spec(), TARGET, WEBHOOK, "Present")
    clean_up = challenge_request(_spec(), TARGET, WEBHOOK, "CleanUp")
    sent = present.model_dump(by_alias=True)
    assert sent == {
        "uid": present.uid,
        "action": "Present",
        "type": "dns-01",
        "dnsName": "example.org",
        "key": "txt-value",
        "resourceNamespace": "team-a",
        "resolvedFQDN": "_acme-challenge.example.org.",
        "resolvedZone": "example.org.",
        "allowAmbientCredentials": False,
        "config": {"apiTokenSecretRef": {"name": "token", "key": "api-token"}},
    }
    assert clean_up.action == "CleanUp"
    assert clean_up.uid == present.uid, "clean-up must name the challenge present named"
    other = challenge_request(_spec(url="https://ca.test/chall/2"), TARGET, WEBHOOK, "Present")
    assert other.uid != present.uid


def test_without_a_resource_namespace_the_challenges_namespace_is_sent() -> None:
    webhook = replace(WEBHOOK, resource_namespace="", allow_ambient_credentials=True)
    sent = challenge_request(_spec(webhook=webhook), TARGET, webhook, "Present")
    assert sent.resource_namespace == "team-a"
    assert sent.allow_ambient_credentials is True


@pytest.mark.stack
async def test_a_wildcard_and_its_apex_issue_through_the_webhook_and_leave_no_txt(
    stack: StackInfo,
    dns_webhook: DnsWebhookEndpoints,
    webhook_namespace: str,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
) -> None:
    label = unique_label("wh")
    names = [f"*.{label}.example.com", f"{label}.example.com"]
    solver = webhook_solver(stack, dns_webhook, webhook_namespace)
    prepared = prepare(names, issuer(stack, tmp_path, solvers=[solver]))
    async with kubernetes_worker(stack, temporal_client, task_queue):
        handle = await start(temporal_client, prepared, task_queue)
        result = await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    keys = {c.spec.key for c in progress.challenges}
    assert len(keys) == 2
    assert txt_values(stack, dns01_record_name(f"{label}.example.com")) == []
    actions = sorted((r["action"], r["key"]) for r in received(dns_webhook, keys))
    assert actions == sorted((a, k) for a in ("Present", "CleanUp") for k in keys)


@pytest.mark.stack
async def test_the_webhook_receives_the_zone_found_by_soa_past_a_cname(
    stack: StackInfo,
    dns_webhook: DnsWebhookEndpoints,
    webhook_namespace: str,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
) -> None:
    solver = replace(webhook_solver(stack, dns_webhook, webhook_namespace), cname_follow=True)
    assert solver.webhook is not None
    prepared = prepare([CNAME_NAME], issuer(stack, tmp_path, solvers=[solver]))
    async with kubernetes_worker(stack, temporal_client, task_queue):
        handle = await start(temporal_client, prepared, task_queue)
        await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    [challenge] = progress.challenges
    requests = received(dns_webhook, {challenge.spec.key})
    assert [r["action"] for r in requests] == ["Present", "CleanUp"]
    resolved = f"_acme-challenge.{CNAME_NAME.split('.')[0]}.{CNAME_TARGET_ZONE}."
    for request in requests:
        assert request["dnsName"] == CNAME_NAME
        assert request["type"] == "dns-01"
        assert request["resolvedFQDN"] == resolved
        assert request["resolvedZone"] == f"{CNAME_TARGET_ZONE}."
        assert request["resourceNamespace"] == webhook_namespace
        assert request["allowAmbientCredentials"] is False
        assert request["config"] == json.loads(solver.webhook.config_json)
    assert requests[0]["uid"] == requests[1]["uid"]
    assert challenge.spec.key not in txt_values(stack, resolved)


@pytest.mark.stack
async def test_a_webhook_failure_is_the_challenges_reason_and_disturbs_no_other_order(
    stack: StackInfo,
    dns_webhook: DnsWebhookEndpoints,
    webhook_namespace: str,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
) -> None:
    label = unique_label("whfail")
    said = "provider refused the API token (401 from api.dns.example)"
    refused = prepare(
        [f"refused.{label}.example.com"],
        issuer(
            stack,
            tmp_path,
            solvers=[webhook_solver(stack, dns_webhook, webhook_namespace, refuse=said)],
        ),
        # Were the refusal taken for success, the self-check would fail it soon, not hang.
        timeouts=OrderTimeouts(self_check_s=20),
    )
    fine = prepare(
        [f"fine.{label}.example.com"],
        issuer(stack, tmp_path, solvers=[webhook_solver(stack, dns_webhook, webhook_namespace)]),
    )
    async with kubernetes_worker(stack, temporal_client, task_queue):
        refused_handle = await start(temporal_client, refused, task_queue)
        fine_handle = await start(temporal_client, fine, task_queue)
        fine_result, refused_outcome = await asyncio.gather(
            fine_handle.result(), refused_handle.result(), return_exceptions=True
        )
        progress = await refused_handle.query(OrderWorkflow.progress)
    assert isinstance(refused_outcome, WorkflowFailureError)
    [challenge] = progress.challenges
    expected = f"webhook {dns_webhook.solver_name}.{dns_webhook.group_name}: Present: {said}"
    assert challenge.reason == expected
    assert expected in progress.reason
    assert not isinstance(fine_result, BaseException), fine_result
    assert_certificate(
        fine_result.certificate, fine.key, [f"fine.{label}.example.com"], stack.pebble_roots
    )
    assert [r["action"] for r in received(dns_webhook, {challenge.spec.key})][:1] == ["Present"]
    for name in ("refused", "fine"):
        assert txt_values(stack, dns01_record_name(f"{name}.{label}.example.com")) == []


def _publisher(stack: StackInfo) -> WebhookPublisher:
    return WebhookPublisher(kube_config.new_client_from_config(config_file=str(stack.kubeconfig)))


COPY = CopyOwner("order/test/webhook", "team-a/wild-1")


@pytest.mark.stack
def test_a_webhook_the_cluster_does_not_serve_is_refused_with_a_reason(stack: StackInfo) -> None:
    with pytest.raises(ApplicationError) as refused:
        _publisher(stack).add_txt(_spec(), TARGET, copy=COPY)
    assert refused.value.non_retryable
    assert "webhook example-solver.acme.example.test: not served by this cluster" in str(
        refused.value
    )


@pytest.mark.stack
def test_a_registered_webhook_that_is_down_is_retried(stack: StackInfo, kubectl: Kubectl) -> None:
    group = f"{unique_label('down')}.acmeflow.test"
    api_service = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"v1alpha1.{group}"},
        "spec": {
            "group": group,
            "version": "v1alpha1",
            "groupPriorityMinimum": 1000,
            "versionPriority": 15,
            # The stack's webhook Service (ExternalName localhost), at a port nobody serves.
            "service": {
                "name": "acmeflow-dns01-webhook",
                "namespace": "acmeflow-dns01-webhook",
                "port": free_port(),
            },
            "insecureSkipTLSVerify": True,
        },
    }
    kubectl.create(api_service)
    try:
        webhook = replace(WEBHOOK, group_name=group)
        with pytest.raises(ApplicationError) as down:
            _publisher(stack).add_txt(_spec(webhook=webhook), TARGET, copy=COPY)
    finally:
        kubectl("delete", "apiservice", f"v1alpha1.{group}", "--wait=false", check=False)
    assert not down.value.non_retryable
    assert down.value.type == WEBHOOK_UNAVAILABLE
    assert f"webhook example-solver.{group}: Present:" in str(down.value)


def test_an_edited_webhook_program_gets_a_binary_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "dns01-webhook"
    shutil.copytree(go_builds.DNS01_WEBHOOK_PROGRAM, program)
    monkeypatch.setattr(go_builds, "DNS01_WEBHOOK_PROGRAM", program)
    before = go_builds.dns01_webhook_binary()
    with (program / "solver.go").open("a") as solver_go:
        solver_go.write("\n// a change\n")
    after = go_builds.dns01_webhook_binary()
    assert after != before
    assert after.parent.parent == go_builds.cache_base() / "dns01-webhook"
    version = go_builds.required_version(go_builds.CERT_MANAGER_MODULE, program)
    assert after.parent.name.startswith(f"{version}-")


@pytest.mark.stack
def test_clean_up_through_the_webhook_removes_only_its_own_value(
    stack: StackInfo, dns_webhook: DnsWebhookEndpoints, webhook_namespace: str
) -> None:
    """A wildcard and its apex share one name: each clean-up leaves the other's value."""
    name = f"{unique_label('pair')}.example.com"
    record = dns01_record_name(name)
    solver = webhook_solver(stack, dns_webhook, webhook_namespace)
    assert solver.webhook is not None
    publisher = _publisher(stack)
    pair = []
    for wildcard in (True, False):
        spec = replace(
            _spec(url=f"https://ca.test/chall/{name}/{wildcard}", webhook=solver.webhook),
            dns_name=name,
            wildcard=wildcard,
            key=f"value-{wildcard}",
        )
        pair.append((spec, TxtTarget(fqdn=record, zone="example.com.", value=spec.key)))
    for spec, target in pair:
        publisher.add_txt(spec, target, copy=COPY)
        publisher.add_txt(spec, target, copy=COPY)
    assert sorted(txt_values(stack, record)) == ["value-False", "value-True"]
    publisher.delete_txt(*pair[0], copy=COPY)
    assert txt_values(stack, record) == ["value-False"]
    publisher.delete_txt(*pair[1], copy=COPY)
    publisher.delete_txt(*pair[1], copy=COPY)
    assert txt_values(stack, record) == []
