"""The TLS Secrets acmeflow wrote, watched so that a user's edit or delete is answered now.

Only Secrets carrying ``TLS_SECRET_LABEL`` are listed and watched (the API server applies
the selector), and the cache keeps their metadata only: the bridge's memory follows the
number of Certificates, not of Secrets in the cluster, and no private key sits in it.

A Secret that changes or disappears wakes its Certificate's workflow with the
``secret_changed`` signal; the workflow looks at the Secret and decides. A Secret seen
for the first time (just written by its workflow, or listed as the bridge starts) wakes
nothing: a starting bridge already hands every Certificate workflow its spec, and each
looks at its Secret then.
"""

from __future__ import annotations

from typing import Any, Final

from kubernetes import client

from acmeflow.contracts.certificate import CERTIFICATE_ANNOTATION, TLS_SECRET_LABEL
from acmeflow.crds.models import Certificate
from acmeflow.k8s_bridge.certificate_reconciler import live_certificate
from acmeflow.k8s_bridge.informer import Informer, Obj, OnChange
from acmeflow.k8s_bridge.signalled_workflows import SignalledWorkflows
from acmeflow.workflows.certificate import CertificateWorkflow
from acmeflow.workflows.resource_ids import workflow_id

TLS_SECRET: Final = "TLSSecret"
"""The work queue's kind for "a Certificate's TLS Secret changed" (keyed by Certificate)."""
_KEPT_METADATA: Final = ("name", "namespace", "uid", "resourceVersion", "labels", "annotations")


def tls_secret_informer(
    core: client.CoreV1Api, on_change: OnChange, *, resync_s: float
) -> Informer:
    """An informer over acmeflow's TLS Secrets in every namespace, metadata only."""

    def list_tls_secrets(**kwargs: Any) -> Any:
        listed = core.list_secret_for_all_namespaces(label_selector=TLS_SECRET_LABEL, **kwargs)
        if kwargs.get("watch"):
            return listed  # the raw stream: the watch decodes each event into a dict
        return core.api_client.sanitize_for_serialization(listed)

    return Informer("secrets", list_tls_secrets, on_change, resync_s=resync_s, keep=metadata_only)


def metadata_only(secret: Obj) -> Obj:
    metadata = secret.get("metadata") or {}
    return {"metadata": {k: metadata[k] for k in _KEPT_METADATA if k in metadata}}


def touched(old: Obj | None, new: Obj | None) -> bool:
    """Changed or deleted since last seen; not a Secret seen for the first time."""
    if old is None:
        return False
    if new is None:
        return True
    before: str | None = old["metadata"].get("resourceVersion")
    after: str | None = new["metadata"].get("resourceVersion")
    return before != after


def certificate_of(secret: Obj, certificates: Informer) -> str | None:
    """The informer key of the Certificate whose ``secretName`` this Secret is, if any."""
    metadata = secret["metadata"]
    name = (metadata.get("annotations") or {}).get(CERTIFICATE_ANNOTATION) or (
        metadata.get("labels") or {}
    ).get(TLS_SECRET_LABEL)
    if not name:
        return None
    key = f"{metadata.get('namespace', '')}/{name}"
    certificate = certificates.get(key)
    if certificate is None or certificate.get("spec", {}).get("secretName") != metadata["name"]:
        return None
    return key


class TlsSecretReconciler:
    """Wakes the workflow of a Certificate whose TLS Secret changed."""

    def __init__(self, *, certificates: Informer, workflows: SignalledWorkflows) -> None:
        self._certificates = certificates
        self._workflows = workflows

    async def reconcile(self, key: str) -> float | None:
        certificate = live_certificate(self._certificates, key)
        if certificate is None:
            return None
        metadata = certificate.metadata
        await self._workflows.signal(
            workflow_id(Certificate.KIND, metadata.namespace or "", metadata.name),
            CertificateWorkflow.secret_changed,
            certificate.spec.secret_name,
        )
        return None
