"""Mirror Certificate and Issuer workflows into their resources' status and Events.

Like the Order mirror, these receive whole snapshots and converge the resource to them;
an object that is gone (or was recreated under the same name) is left alone.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from kubernetes.client.exceptions import ApiException
from temporalio import activity

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import CertificateUpdate, ConditionStatus, IssuerUpdate
from acmeflow.contracts.progress import IssuerStatus as IssuerProgress
from acmeflow.crds.models import (
    AcmeIssuerStatus,
    Certificate,
    CertificateStatus,
    ClusterIssuer,
    Issuer,
    IssuerStatus,
    KubeResource,
)
from acmeflow.k8s_bridge.conditions import ISSUING, READY, condition, set_conditions
from acmeflow.k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.status_writes import write_status
from acmeflow.k8s_bridge.timestamps import timestamp

log = logging.getLogger(__name__)
Resource = TypeVar("Resource", bound=KubeResource)


def _current(
    api: KubeApi, model: type[Resource], namespace: str, name: str, uid: str
) -> Resource | None:
    """The object if it still exists with this UID."""
    try:
        resource = model.model_validate(api.get(model.PLURAL, namespace, name))
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return resource if resource.metadata.uid == uid else None


def certificate_status(update: CertificateUpdate, current: CertificateStatus) -> CertificateStatus:
    """The status cert-manager would show: Issuing only while issuing or after a failed
    attempt (False, ``Failed``); a successful issuance removes it, as cert-manager's does."""
    status = update.status
    conditions = current.conditions
    ready = condition(
        conditions,
        type_=READY,
        status=ConditionStatus(status.ready),
        reason=status.ready_reason,
        message=status.ready_message,
        generation=status.observed_generation,
    )
    shown = [ready]
    if status.issuing or status.issuing_reason:
        issuing = condition(
            conditions,
            type_=ISSUING,
            status=ConditionStatus.TRUE if status.issuing else ConditionStatus.FALSE,
            reason=status.issuing_reason,
            message=status.issuing_message,
            generation=status.observed_generation,
        )
        shown.append(issuing)
    else:
        conditions = [c for c in conditions or [] if c.type != ISSUING]
    return CertificateStatus(
        conditions=set_conditions(conditions, *shown),
        not_before=timestamp(status.not_before),
        not_after=timestamp(status.not_after),
        renewal_time=timestamp(status.renewal_time),
        renewal_rule=status.renewal_rule or None,
        revision=status.revision or None,
        last_failure_time=timestamp(status.last_failure_time),
        failed_issuance_attempts=status.failed_issuance_attempts or None,
        next_private_key_secret_name=status.next_private_key_secret_name or None,
    )


def issuer_status(status: IssuerProgress, current: IssuerStatus) -> IssuerStatus:
    ready = condition(
        current.conditions,
        type_=READY,
        status=ConditionStatus(status.ready),
        reason=status.reason,
        message=status.message,
        generation=status.observed_generation,
    )
    # Only what is known: an account not (yet) registered keeps showing the last one.
    account = AcmeIssuerStatus()
    if status.account_uri:
        account.uri = status.account_uri
    if status.email:
        account.last_registered_email = status.email
    return IssuerStatus(conditions=set_conditions(current.conditions, ready), acme=account)


class ResourceMirrors:
    """The bridge's implementations of the Certificate and Issuer observer activities."""

    def __init__(self, api: KubeApi, events: EventRecorder) -> None:
        self._api = api
        self._events = events

    @activity.defn(name=ActivityName.PUBLISH_CERTIFICATE_PROGRESS)
    def publish_certificate_progress(self, update: CertificateUpdate) -> None:
        certificate = _current(self._api, Certificate, update.namespace, update.name, update.uid)
        if certificate is None:
            log.info(
                "Certificate %s/%s is gone; ignoring its progress", update.namespace, update.name
            )
            return
        write_status(
            self._api,
            plural=Certificate.PLURAL,
            metadata=certificate.metadata,
            current=certificate.status,
            desired=certificate_status(update, certificate.status or CertificateStatus()),
        )
        self._record_events(Certificate.KIND, update)

    @activity.defn(name=ActivityName.PUBLISH_ISSUER_STATUS)
    def publish_issuer_status(self, update: IssuerUpdate) -> None:
        where = (update.namespace, update.name, update.uid)
        issuer = (
            _current(self._api, ClusterIssuer, *where)
            if update.kind == ClusterIssuer.KIND
            else _current(self._api, Issuer, *where)
        )
        if issuer is None:
            return
        write_status(
            self._api,
            plural=issuer.PLURAL,
            metadata=issuer.metadata,
            current=issuer.status,
            desired=issuer_status(update.status, issuer.status or IssuerStatus()),
        )
        self._record_events(update.kind, update)

    def _record_events(self, kind: str, update: CertificateUpdate | IssuerUpdate) -> None:
        """Each Event the workflow told of, created once (a snapshot repeats them all)."""
        involved = InvolvedObject(
            kind=kind, namespace=update.namespace, name=update.name, uid=update.uid
        )
        for event in update.status.events:
            self._events.record(involved, event)
