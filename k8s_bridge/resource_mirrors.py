"""Mirror Certificate and Issuer workflows into their resources' status and Events.

Like the Order mirror, these receive whole snapshots and converge the resource to them;
an object that is gone (or was recreated under the same name) is left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio import activity

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import CertificateUpdate, IssuerUpdate
from acmeflow.crds.models import Certificate, ClusterIssuer, Issuer
from acmeflow.k8s_bridge.conditions import condition, set_conditions
from acmeflow.k8s_bridge.event_recorder import EventRecorder, InvolvedObject
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.status_writes import write_status

log = logging.getLogger(__name__)


def _current(
    api: KubeApi, plural: str, namespace: str, name: str, uid: str
) -> dict[str, Any] | None:
    """The object if it still exists with this UID."""
    try:
        obj = api.get(plural, namespace, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return obj if obj["metadata"].get("uid") == uid else None


def certificate_status(update: CertificateUpdate, current: dict[str, Any]) -> dict[str, Any]:
    status = update.status
    conditions = current.get("conditions")
    ready = condition(
        conditions,
        type_="Ready",
        status=status.ready,
        reason=status.ready_reason,
        message=status.ready_message,
        generation=status.observed_generation,
    )
    issuing = condition(
        conditions,
        type_="Issuing",
        status="True" if status.issuing else "False",
        reason=status.issuing_reason or "Issued",
        message=status.issuing_message or "No issuance in progress",
        generation=status.observed_generation,
    )
    return {
        "conditions": set_conditions(conditions, ready, issuing),
        "notBefore": status.not_before or None,
        "notAfter": status.not_after or None,
        "renewalTime": status.renewal_time or None,
        "revision": status.revision or None,
        "lastFailureTime": status.last_failure_time or None,
        "failedIssuanceAttempts": status.failed_issuance_attempts or None,
        "nextPrivateKeySecretName": status.next_private_key_secret_name or None,
    }


class ResourceMirrors:
    """The bridge's implementations of the Certificate and Issuer observer activities."""

    def __init__(self, api: KubeApi, events: EventRecorder) -> None:
        self._api = api
        self._events = events

    @activity.defn(name=ActivityName.PUBLISH_CERTIFICATE_PROGRESS)
    def publish_certificate_progress(self, update: CertificateUpdate) -> None:
        obj = _current(self._api, Certificate.PLURAL, update.namespace, update.name, update.uid)
        if obj is None:
            log.info(
                "Certificate %s/%s is gone; ignoring its progress", update.namespace, update.name
            )
            return
        write_status(
            self._api,
            plural=Certificate.PLURAL,
            namespace=update.namespace,
            name=update.name,
            current=obj.get("status"),
            desired=certificate_status(update, obj.get("status") or {}),
        )
        involved = InvolvedObject(
            kind=Certificate.KIND, namespace=update.namespace, name=update.name, uid=update.uid
        )
        for event in update.status.events:
            self._events.record(involved, event)

    @activity.defn(name=ActivityName.PUBLISH_ISSUER_STATUS)
    def publish_issuer_status(self, update: IssuerUpdate) -> None:
        plural = ClusterIssuer.PLURAL if update.kind == ClusterIssuer.KIND else Issuer.PLURAL
        obj = _current(self._api, plural, update.namespace, update.name, update.uid)
        if obj is None:
            return
        current = obj.get("status") or {}
        status = update.status
        ready = condition(
            current.get("conditions"),
            type_="Ready",
            status=status.ready,
            reason=status.reason,
            message=status.message,
            generation=status.observed_generation,
        )
        acme = {"uri": status.account_uri, "lastRegisteredEmail": status.email or None}
        write_status(
            self._api,
            plural=plural,
            namespace=update.namespace,
            name=update.name,
            current=current,
            desired={
                "conditions": set_conditions(current.get("conditions"), ready),
                "acme": {k: v for k, v in acme.items() if v},
            },
        )
