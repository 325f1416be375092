"""One way to build a Kubernetes API client, for every acmeflow process."""

from __future__ import annotations

from pathlib import Path

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
