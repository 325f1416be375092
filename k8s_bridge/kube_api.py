"""The Kubernetes clients the bridge uses, configured once from a kubeconfig or in-cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from acmeflow.crds.models import API_VERSION, GROUP, VERSION
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client


@dataclass(frozen=True)
class KubeApi:
    api_client: client.ApiClient
    core: client.CoreV1Api
    custom: client.CustomObjectsApi

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """A namespaced object, or a cluster-scoped one when ``namespace`` is empty."""
        if not namespace:
            return dict(self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name))
        return dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        )

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        )

    def list(self, plural: str, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        listing = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, label_selector=label_selector
        )
        return list(listing.get("items", []))

    def patch_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        api_version: str = API_VERSION,
    ) -> dict[str, Any]:
        """Merge-patch the status subresource of an acmeflow object (or, by ``api_version``,
        of another group's: cert-manager's CertificateRequests)."""
        group, _, version = api_version.partition("/")
        if not namespace:
            return dict(
                self.custom.patch_cluster_custom_object_status(group, version, plural, name, patch)
            )
        return dict(
            self.custom.patch_namespaced_custom_object_status(
                group, version, namespace, plural, name, patch
            )
        )


def load_kube_api(kubeconfig: Path | None = None) -> KubeApi:
    """From ``kubeconfig`` when given, else in-cluster (else $KUBECONFIG, as kubectl)."""
    api_client = kubernetes_api_client(kubeconfig)
    return KubeApi(
        api_client=api_client,
        core=client.CoreV1Api(api_client),
        custom=client.CustomObjectsApi(api_client),
    )
