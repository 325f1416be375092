"""Kubernetes for the worker (and the solver): one API client, configured once at start-up.

With ``WorkerConfig.kubernetes`` the worker keeps secrets in core/v1 Secrets
(``acmeflow.activities.kubernetes_secrets``) and presents HTTP-01 by routing the CA's request to
the shared ``acmeflow solver`` (``acmeflow.activities.http01_routes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acmeflow.activities.certificate_steps import CertificateActivities
from acmeflow.activities.http01_routes import KubernetesHttp01Routes
from acmeflow.activities.kubernetes_secrets import KubernetesSecrets
from acmeflow.worker.config import WorkerConfig
from kubernetes import client, config

DEFAULT_POOL_SIZE = 32


def kubernetes_api_client(
    kubeconfig: Path | None = None, *, pool_size: int = DEFAULT_POOL_SIZE
) -> client.ApiClient:
    """A client for ``kubeconfig``; without one, the in-cluster service account.

    Outside a cluster and without ``kubeconfig``, ``$KUBECONFIG`` or ``~/.kube/config``
    is used, as kubectl would. ``pool_size`` bounds the connections kept open; use one
    per thread that calls the API at once.
    """
    configuration = client.Configuration()
    if kubeconfig is not None:
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class KubernetesServices:
    """What the worker uses a cluster for."""

    secrets: KubernetesSecrets
    http01: KubernetesHttp01Routes
    certificates: CertificateActivities


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
        certificates=CertificateActivities(api_client),
        http01=KubernetesHttp01Routes(
            api_client,
            solver_namespace=worker_config.solver_namespace,
            cluster_domain=worker_config.cluster_domain,
        ),
    )
