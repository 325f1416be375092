"""deploy/components/dns01-webhook, rendered and applied for real: the worker's ServiceAccount
may ask a cert-manager webhook to present (``create`` on ``<solverName>`` in ``<groupName>``)
and nothing else of it; without the component the API server refuses, and the Challenge's
reason says which rule is missing.

The worker's own publisher runs with a real token of the ServiceAccount (TokenRequest, as a
pod mounts it) against the stack's webhook, which writes into BIND9.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.dns01_webhook import WebhookPublisher
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.states import ChallengeType
from acmeflow.devstack.dns_webhook import DnsWebhookEndpoints
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from tests.deploy.manifests import NAMESPACE, Rendered, render_overlay
from tests.deploy.test_rbac import ACCOUNT_PREFIX, service_account_kubeconfig
from tests.dns01.provider_cases import query_txt, unique_label
from tests.dns01.webhook_stack import TSIG_SECRET, webhook_solver
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack

WORKER = "acmeflow-worker"
ROLE = "acmeflow-worker-dns01-webhook"


def component(kubectl: Kubectl, endpoints: DnsWebhookEndpoints) -> Rendered:
    """The component's objects as an operator's overlay renders them (with the base, whose
    worker ServiceAccount its binding names), its placeholders replaced."""
    replace = [
        {"op": "replace", "path": "/rules/0/apiGroups/0", "value": endpoints.group_name},
        {"op": "replace", "path": "/rules/0/resources/0", "value": endpoints.solver_name},
    ]
    rendered = render_overlay(
        kubectl,
        {
            "namespace": NAMESPACE,
            "resources": ["base"],
            "components": ["components/dns01-webhook"],
            "patches": [
                {"target": {"kind": "ClusterRole", "name": ROLE}, "patch": json.dumps(replace)}
            ],
        },
    )
    names = {"ClusterRole": ROLE, "ClusterRoleBinding": ROLE}
    return Rendered(
        [obj for obj in rendered.objects if names.get(obj["kind"]) == obj["metadata"]["name"]]
    )


@pytest.fixture
def endpoints(stack: StackInfo) -> DnsWebhookEndpoints:
    if stack.dns_webhook is None:
        pytest.fail("the stack runs no DNS webhook (StackInfo.dns_webhook)", pytrace=False)
    return stack.dns_webhook


@pytest.fixture
def worker_publisher(
    kubectl: Kubectl, stack: StackInfo, tmp_path: Path
) -> Iterator[WebhookPublisher]:
    """The worker's webhook publisher, authenticated as the worker's ServiceAccount alone,
    with the TSIG Secret the webhook reads in acmeflow's namespace."""
    kubectl("create", "namespace", NAMESPACE, check=False)
    kubectl("create", "serviceaccount", WORKER, "-n", NAMESPACE, check=False)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TSIG_SECRET, "namespace": NAMESPACE},
        "stringData": {"secret": stack.tsig_secret_path.read_text().strip()},
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    kubeconfig = service_account_kubeconfig(kubectl, stack, WORKER, tmp_path)
    yield WebhookPublisher(kubernetes_api_client(kubeconfig))
    kubectl("delete", "clusterrolebinding,clusterrole", ROLE, "--ignore-not-found")


def _challenge(stack: StackInfo, endpoints: DnsWebhookEndpoints) -> tuple[ChallengeSpec, TxtTarget]:
    name = f"{unique_label('rbac')}.example.com"
    spec = ChallengeSpec(
        name=f"{name}-1",
        namespace=NAMESPACE,
        order_name=name,
        dns_name=name,
        wildcard=False,
        type=ChallengeType.DNS01,
        token="token",
        key=f"value-{unique_label('key')}",
        url=f"https://ca.test/chall/{name}",
        authorization_url=f"https://ca.test/authz/{name}",
        solver=webhook_solver(stack, endpoints, NAMESPACE),
    )
    return spec, TxtTarget(fqdn=f"_acme-challenge.{name}.", zone="example.com.", value=spec.key)


def _wait_until_allowed(kubectl: Kubectl, endpoints: DnsWebhookEndpoints) -> None:
    """RBAC applies once the API server's informer has the binding (milliseconds)."""
    resource = f"{endpoints.solver_name}.{endpoints.group_name}"
    for _ in range(50):
        answer = kubectl(
            "auth", "can-i", "create", resource, f"--as={ACCOUNT_PREFIX}{WORKER}", check=False
        )
        if answer.stdout.strip() == "yes":
            return
        time.sleep(0.1)
    pytest.fail(f"{WORKER} was never allowed to create {resource}")


def test_the_component_grants_create_on_exactly_the_webhooks_solver(
    kubectl: Kubectl, endpoints: DnsWebhookEndpoints
) -> None:
    rendered = component(kubectl, endpoints)
    [role] = rendered.of_kind("ClusterRole")
    assert role["rules"] == [
        {
            "apiGroups": [endpoints.group_name],
            "resources": [endpoints.solver_name],
            "verbs": ["create"],
        }
    ]
    [binding] = rendered.of_kind("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": WORKER, "namespace": NAMESPACE}
    ]


def test_the_worker_presents_through_the_webhook_only_with_the_component(
    kubectl: Kubectl,
    stack: StackInfo,
    endpoints: DnsWebhookEndpoints,
    worker_publisher: WebhookPublisher,
) -> None:
    spec, target = _challenge(stack, endpoints)
    copy = CopyOwner("order/test/rbac", f"{NAMESPACE}/{spec.name}")
    with pytest.raises(ApplicationError) as refused:
        worker_publisher.add_txt(spec, target, copy=copy)
    assert refused.value.non_retryable
    reason = str(refused.value)
    assert f"webhook {endpoints.solver_name}.{endpoints.group_name}: Present forbidden" in reason
    assert f'"create" on "{endpoints.solver_name}" in API group "{endpoints.group_name}"' in reason
    assert query_txt(stack.dns_address, target.fqdn) == []

    kubectl("apply", "-f", "-", stdin=component(kubectl, endpoints).as_yaml())
    _wait_until_allowed(kubectl, endpoints)
    worker_publisher.add_txt(spec, target, copy=copy)
    assert query_txt(stack.dns_address, target.fqdn) == [spec.key]
    worker_publisher.delete_txt(spec, target, copy=copy)
    assert query_txt(stack.dns_address, target.fqdn) == []
