"""Fixtures of the webhook tests: acmeflow's own cert-manager webhook on the session stack
(acmeflow.devstack.dns_webhook), a namespace holding the TSIG Secret it reads, order
workers that reach it through the API server, and what it logged it was sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from kubernetes import config as kube_config
from temporalio.client import Client
from temporalio.worker import Worker

from acmeflow.contracts.issuer import Dns01Webhook, SolverConfig
from acmeflow.devstack.dns_webhook import DnsWebhookEndpoints
from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import build_worker
from acmeflow.worker.kubernetes import kubernetes_services
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.orders.order_harness import worker_config

__all__ = ["dns_webhook", "webhook_namespace"]

TSIG_SECRET = "webhook-tsig"
"""The Secret (key ``secret``) the webhook's config names, in the challenge's namespace."""


@pytest.fixture(scope="session")
def dns_webhook(stack: StackInfo) -> DnsWebhookEndpoints:
    """The stack's webhook; a stack without one fails the test (never skips it)."""
    if stack.dns_webhook is None:
        pytest.fail("the stack runs no DNS webhook (StackInfo.dns_webhook)", pytrace=False)
    return stack.dns_webhook


@pytest.fixture
def webhook_namespace(kubectl: Kubectl, stack: StackInfo) -> Iterator[str]:
    """A fresh namespace holding the TSIG Secret the webhook reads for its updates."""
    with temporary_namespace(kubectl, "webhook") as namespace:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": TSIG_SECRET, "namespace": namespace},
            "stringData": {"secret": stack.tsig_secret_path.read_text().strip()},
        }
        kubectl.create(secret)
        yield namespace


def webhook_config(stack: StackInfo, **extra: str) -> dict[str, Any]:
    """The config of acmeflow's webhook program (deploy/dns01-webhook): BIND9 and its key."""
    return {
        "nameserver": stack.dns_address,
        "tsigKeyName": stack.tsig_key_name,
        "tsigAlgorithm": "HMACSHA256",
        "tsigSecretSecretRef": {"name": TSIG_SECRET, "key": "secret"},
        **extra,
    }


def webhook_solver(
    stack: StackInfo, endpoints: DnsWebhookEndpoints, namespace: str, **extra: str
) -> SolverConfig:
    """An Issuer's ``dns01.webhook`` as the order sees it; ``extra`` joins its config."""
    return SolverConfig(
        webhook=Dns01Webhook(
            group_name=endpoints.group_name,
            solver_name=endpoints.solver_name,
            config_json=json.dumps(webhook_config(stack, **extra)),
            resource_namespace=namespace,
        )
    )


@asynccontextmanager
async def kubernetes_worker(
    stack: StackInfo, client: Client, task_queue: str
) -> AsyncIterator[Worker]:
    """An order worker that uses the cluster (as the admin), so it reaches webhooks."""
    config = worker_config(stack, task_queue)
    api_client = kube_config.new_client_from_config(config_file=str(stack.kubeconfig))
    async with build_worker(
        client, config, kubernetes=kubernetes_services(config, api_client)
    ) as worker:
        yield worker


def received(endpoints: DnsWebhookEndpoints, keys: set[str]) -> list[dict[str, Any]]:
    """The requests the webhook logged for these challenge keys, in the order it got them."""
    if not endpoints.requests_log.is_file():
        return []
    requests = [
        json.loads(line) for line in endpoints.requests_log.read_text().splitlines() if line
    ]
    return [request for request in requests if request.get("key") in keys]
