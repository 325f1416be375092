"""Certificates and Issuers, level-triggered: deliver spec and issuer to their workflows.

What happens then (keys, Orders, Secrets, renewals; account registration) is the
workflows' business; here a missing or unusable issuer is reported on the resource.
"""

from __future__ import annotations

import asyncio
from functools import partial

from pydantic import ValidationError

from acmeflow.contracts.progress import EventReason, EventType, OrderEvent
from acmeflow.crds.models import (
    Certificate,
    CertificateStatus,
    ClusterIssuer,
    Issuer,
    IssuerStatus,
    ObjectMeta,
)
from acmeflow.k8s_bridge.certificate_input import certificate_input
from acmeflow.k8s_bridge.conditions import READY, not_ready
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.issuer_lookup import IssuerLookup
from acmeflow.k8s_bridge.issuer_translation import InvalidIssuerError, issuer_config
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.signalled_workflows import SignalledWorkflows
from acmeflow.k8s_bridge.status_writes import write_status
from acmeflow.k8s_bridge.timestamps import now
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
        events: EventRecorder,
    ) -> None:
        self._api = api
        self._config = config
        self._certificates = certificates
        self._issuers = issuers
        self._workflows = workflows
        self._events = events
        self._waiting: dict[str, str] = {}
        """Workflow id -> the issuer problem it was last told (``issuer_unavailable``)."""

    async def reconcile(self, key: str) -> float | None:
        certificate = live_certificate(self._certificates, key)
        if certificate is None:
            namespace, _, name = key.rpartition("/")
            self._waiting.pop(workflow_id(Certificate.KIND, namespace, name), None)
            return None
        namespace, name = certificate.metadata.namespace or "", certificate.metadata.name
        ref = certificate.spec.issuer_ref
        issuer, problem = self._issuers.config_for(namespace, ref)
        problem = problem.replace("the Order starts", "issuance starts")
        if issuer is not None:
            problem = self._issuers.not_ready_problem(namespace, ref)
        wid = workflow_id(Certificate.KIND, namespace, name)
        if issuer is None or problem:
            await self._issuer_unavailable(certificate, wid, problem)
            return None
        if self._waiting.pop(wid, None) is not None:
            self._workflows.forget(wid)  # deliver again, even the very input it had
        value = certificate_input(
            certificate, issuer, observer_task_queue=self._config.bridge_task_queue
        )
        names = value.spec.names.dns_names + value.spec.names.ip_addresses
        await self._workflows.deliver(
            CertificateWorkflow.run,
            wid,
            certificate.metadata.uid or "",
            value,
            summary=f"Certificate {namespace}/{name} for {', '.join(names)}",
        )
        return None

    async def _issuer_unavailable(self, certificate: Certificate, wid: str, problem: str) -> None:
        """Tell the running workflow, which says so and issues nothing meanwhile (once per
        problem); with no workflow yet, say so on the Certificate here."""
        if self._waiting.get(wid) == problem:
            return
        if await self._workflows.signal(wid, CertificateWorkflow.issuer_unavailable, problem):
            self._waiting[wid] = problem
            return
        status = certificate.status or CertificateStatus()
        ready = next((c for c in status.conditions or [] if c.type == READY), None)
        if ready is None or ready.message != problem:
            metadata = certificate.metadata
            involved = InvolvedObject(
                kind=Certificate.KIND,
                namespace=metadata.namespace or "",
                name=metadata.name,
                uid=metadata.uid or "",
            )
            warning = OrderEvent(
                seq=0,
                at=now().isoformat(),
                kind=Certificate.KIND,
                object_name=metadata.name,
                type=EventType.WARNING,
                reason=EventReason.ISSUER_NOT_READY,
                message=problem,
            )
            await asyncio.to_thread(self._events.record, involved, warning)
        await _write_not_ready(
            self._api,
            Certificate.PLURAL,
            certificate.metadata,
            status,
            reason=NOT_READY_ISSUER,
            message=problem,
        )
        self._waiting[wid] = problem


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
            key_check_s=self._config.account_key_check_s,
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
