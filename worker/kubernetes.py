"""Kubernetes for the worker (and the solver): one API client, configured once at start-up.

With ``WorkerConfig.kubernetes`` the worker keeps secrets in core/v1 Secrets
(``acmeflow.activities.kubernetes_secrets``), copies of the credentials clean-up needs in its
own namespace (``acmeflow.activities.credential_copies``), and presents HTTP-01 by routing the
CA's request to the shared ``acmeflow solver`` (``acmeflow.activities.http01_routes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

from acmeflow.activities.certificate_steps import CertificateActivities
from acmeflow.activities.credential_copies import KubernetesCredentialCopies
from acmeflow.activities.dns01_webhook import WebhookPublisher
from acmeflow.activities.http01_routes import KubernetesHttp01Routes
from acmeflow.activities.kubernetes_secrets import KubernetesSecrets
from acmeflow.activities.order_history import OrderHistoryActivities
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from acmeflow.worker.config import WorkerConfig


@dataclass(frozen=True)
class KubernetesServices:
    """What the worker uses a cluster for."""

    secrets: KubernetesSecrets
    copies: KubernetesCredentialCopies
    http01: KubernetesHttp01Routes
    certificates: CertificateActivities
    order_history: OrderHistoryActivities
    """revisionHistoryLimit: a Certificate's old Orders deleted."""
    dns01_webhook: WebhookPublisher
    """cert-manager DNS webhooks, reached through the API server with the worker's identity."""


def kubernetes_services(
    worker_config: WorkerConfig, api_client: client.ApiClient | None = None
) -> KubernetesServices:
    """Secrets and HTTP-01 routing over ``api_client`` (loaded from the config when None)."""
    if api_client is None:
        api_client = kubernetes_api_client(
            worker_config.kubeconfig, pool_size=worker_config.max_concurrent_activities
        )
    return KubernetesServices(
        secrets=KubernetesSecrets(api_client),
        copies=KubernetesCredentialCopies(api_client, namespace=worker_config.own_namespace),
        certificates=CertificateActivities(api_client),
        order_history=OrderHistoryActivities(api_client),
        dns01_webhook=WebhookPublisher(api_client),
        http01=KubernetesHttp01Routes(
            api_client,
            solver_namespace=worker_config.solver_namespace,
            cluster_domain=worker_config.cluster_domain,
        ),
    )
