"""Certificates and Issuers, level-triggered: deliver spec and issuer to their workflows.

What happens then (keys, Orders, Secrets, renewals; account registration) is the
workflows' business; here a missing or unusable issuer is reported on the resource.
"""

from __future__ import annotations

import asyncio
from functools import partial

from pydantic import ValidationError

from acmeflow.crds.models import (
    Certificate,
    CertificateStatus,
    ClusterIssuer,
    Issuer,
    IssuerStatus,
    ObjectMeta,
)
from acmeflow.k8s_bridge.certificate_input import certificate_input
from acmeflow.k8s_bridge.conditions import not_ready
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.issuer_lookup import IssuerLookup
from acmeflow.k8s_bridge.issuer_translation import InvalidIssuerError, issuer_config
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.signalled_workflows import SignalledWorkflows
from acmeflow.k8s_bridge.status_writes import write_status
from acmeflow.workflows.certificate import CertificateWorkflow
from acmeflow.workflows.issuer_account import IssuerAccountInput, IssuerAccountWorkflow
from acmeflow.workflows.resource_ids import workflow_id

NOT_READY_ISSUER = "IssuerNotReady"
"""Ready reason of a Certificate whose issuer is missing or unusable."""
NOT_READY_CONFIG = "ErrInvalidConfig"
"""Ready reason of an Issuer or ClusterIssuer whose spec cannot be used."""


def live_certificate(certificates: Informer, key: str) -> Certificate | None:
    """The Certificate under ``key``, unless it is gone or being deleted."""
    obj = certificates.get(key)
    if obj is None:
        return None
    certificate = Certificate.model_validate(obj)
    return None if certificate.metadata.deletion_timestamp else certificate


class CertificateReconciler:
    def __init__(
        self,
        *,
        api: KubeApi,
        config: BridgeConfig,
        certificates: Informer,
        issuers: IssuerLookup,
        workflows: SignalledWorkflows,
    ) -> None:
        self._api = api
        self._config = config
        self._certificates = certificates
        self._issuers = issuers
        self._workflows = workflows

    async def reconcile(self, key: str) -> float | None:
        certificate = live_certificate(self._certificates, key)
        if certificate is None:
            return None
        namespace, name = certificate.metadata.namespace or "", certificate.metadata.name
        issuer, problem = self._issuers.config_for(namespace, certificate.spec.issuer_ref)
        if issuer is None:
            await _write_not_ready(
                self._api,
                Certificate.PLURAL,
                certificate.metadata,
                certificate.status or CertificateStatus(),
                reason=NOT_READY_ISSUER,
                message=problem.replace("the Order starts", "issuance starts"),
            )
            return None
        value = certificate_input(
            certificate, issuer, observer_task_queue=self._config.bridge_task_queue
        )
        names = value.spec.names.dns_names + value.spec.names.ip_addresses
        await self._workflows.deliver(
            CertificateWorkflow.run,
            workflow_id(Certificate.KIND, namespace, name),
            certificate.metadata.uid or "",
            value,
            summary=f"Certificate {namespace}/{name} for {', '.join(names)}",
        )
        return None


class IssuerReconciler:
    def __init__(
        self,
        *,
        api: KubeApi,
        config: BridgeConfig,
        issuers: Informer,
        cluster_issuers: Informer,
        workflows: SignalledWorkflows,
    ) -> None:
        self._api = api
        self._config = config
        self._informers = {Issuer.KIND: issuers, ClusterIssuer.KIND: cluster_issuers}
        self._workflows = workflows

    async def reconcile(self, kind: str, key: str) -> float | None:
        obj = self._informers[kind].get(key)
        if obj is None:
            return None
        model = ClusterIssuer if kind == ClusterIssuer.KIND else Issuer
        try:
            resource = model.model_validate(obj)
            config = issuer_config(
                resource, cluster_resource_namespace=self._config.cluster_resource_namespace
            )
        except (InvalidIssuerError, ValidationError) as error:
            # Read as metadata and status only: the spec may be what the models cannot read.
            await _write_not_ready(
                self._api,
                model.PLURAL,
                ObjectMeta.model_validate(obj["metadata"]),
                IssuerStatus.model_validate(obj.get("status") or {}),
                reason=NOT_READY_CONFIG,
                message=str(error),
            )
            return None
        metadata = resource.metadata
        value = IssuerAccountInput(
            kind=kind,
            namespace=metadata.namespace or "",
            name=metadata.name,
            uid=metadata.uid or "",
            generation=metadata.generation or 0,
            issuer=config,
            observer_task_queue=self._config.bridge_task_queue,
        )
        await self._workflows.deliver(
            IssuerAccountWorkflow.run,
            workflow_id(kind, value.namespace, value.name),
            value.uid,
            value,
            summary=f"ACME account of {config.name} at {config.server}",
        )
        return None


async def _write_not_ready(
    api: KubeApi,
    plural: str,
    metadata: ObjectMeta,
    status: CertificateStatus | IssuerStatus,
    *,
    reason: str,
    message: str,
) -> None:
    """Say in the resource's Ready condition why it cannot be used (yet)."""
    desired = not_ready(status, reason=reason, message=message, generation=metadata.generation or 0)
    write = partial(write_status, api, plural=plural, metadata=metadata)
    await asyncio.to_thread(write, current=status, desired=desired)
