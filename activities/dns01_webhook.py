"""DNS-01 through a cert-manager webhook: a ``ChallengePayload`` POSTed via the API server.

Every cert-manager DNS webhook (Hetzner, OVH, Gandi, ...) is an extension API server
registered with an APIService for ``<groupName>/v1alpha1``; cert-manager presents and cleans
up by creating a ``<solverName>`` object there, and so does acmeflow, with the worker's own
credentials (RBAC: ``create`` on ``<solverName>`` in ``<groupName>``;
deploy/components/dns01-webhook). The webhook reads its provider's credentials itself,
from the Secrets its ``config`` names in ``resourceNamespace``: no secret passes through
acmeflow, so there is nothing to keep a clean-up copy of (``credential_copies``); a webhook
whose Secret went with its namespace cannot clean up, under cert-manager or here.

How answers map onto the error taxonomy (``acmeflow.activities.errors``)::

    response.success false        BadRequest: "webhook <solver>.<group>: <its message>"
    403, 404, other 4xx           BadRequest: RBAC missing, webhook not registered, refused
    503, other 5xx, 429, 401,     Dns01WebhookUnavailable, retryable: the APIService is
    unreachable API server        down or starting, a token is being rotated
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final, Literal

from kubernetes import client
from pydantic import BaseModel, ConfigDict, Field
from temporalio.exceptions import ApplicationError

from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.errors import bad_request
from acmeflow.activities.kubernetes_api import (
    KUBERNETES_ERRORS,
    REQUEST_TIMEOUT,
    server_message,
    status_of,
)
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Dns01Webhook

WEBHOOK_UNAVAILABLE: Final = "Dns01WebhookUnavailable"
"""Retryable: the webhook's APIService or the API server could not answer."""
PAYLOAD_API_VERSION: Final = "webhook.acme.cert-manager.io/v1alpha1"
SOLVER_VERSION: Final = "v1alpha1"
_RETRYABLE_CLIENT_STATUSES: Final = (401, 408, 429)

Action = Literal["Present", "CleanUp"]


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


def _named(wire_name: str, **default: Any) -> Any:
    """A field spelled ``wire_name`` on the wire (both ways) and by its Python name in code."""
    return Field(serialization_alias=wire_name, validation_alias=wire_name, **default)


class ChallengeRequest(_Wire):
    """cert-manager's ``ChallengeRequest``, field for field."""

    uid: str
    action: Action
    type: str = "dns-01"
    dns_name: str = _named("dnsName")
    key: str
    resource_namespace: str = _named("resourceNamespace")
    resolved_fqdn: str = _named("resolvedFQDN")
    resolved_zone: str = _named("resolvedZone")
    allow_ambient_credentials: bool = _named("allowAmbientCredentials")
    config: Any = None


class ResponseStatus(_Wire):
    """The part of a ``metav1.Status`` a webhook fills in when it fails."""

    message: str = ""
    reason: str = ""


class ChallengeResponse(_Wire):
    uid: str = ""
    success: bool = False
    status: ResponseStatus | None = None


class ChallengePayload(_Wire):
    api_version: str = _named("apiVersion", default=PAYLOAD_API_VERSION)
    kind: str = "ChallengePayload"
    request: ChallengeRequest | None = None
    response: ChallengeResponse | None = None


def webhook_name(webhook: Dns01Webhook) -> str:
    """How reasons name the webhook: ``<solverName>.<groupName>``."""
    return f"webhook {webhook.solver_name}.{webhook.group_name}"


def request_uid(spec: ChallengeSpec) -> str:
    """The same for present and clean-up of one challenge on any worker: derived from the
    challenge's URL at the CA, as cert-manager sends the Challenge object's UID."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, spec.url))


def solver_config(webhook: Dns01Webhook) -> Any:
    """The Issuer's ``config``, parsed so it travels as JSON rather than as a string."""
    if not webhook.config_json:
        return None
    try:
        return json.loads(webhook.config_json)
    except ValueError as error:
        raise bad_request(f"{webhook_name(webhook)}: config is not JSON: {error}") from error


def challenge_request(
    spec: ChallengeSpec, target: TxtTarget, webhook: Dns01Webhook, action: Action
) -> ChallengeRequest:
    return ChallengeRequest(
        uid=request_uid(spec),
        action=action,
        dns_name=spec.dns_name,
        key=target.value,
        resource_namespace=webhook.resource_namespace or spec.namespace,
        resolved_fqdn=target.fqdn,
        resolved_zone=target.zone,
        allow_ambient_credentials=webhook.allow_ambient_credentials,
        config=solver_config(webhook),
    )


def _call_failure(error: BaseException, webhook: Dns01Webhook, action: Action) -> ApplicationError:
    name = webhook_name(webhook)
    status = status_of(error)
    said = server_message(error)
    if status == 403:
        return bad_request(
            f"{name}: {action} forbidden; grant the worker's service account the RBAC verb "
            f'"create" on "{webhook.solver_name}" in API group "{webhook.group_name}" '
            f"(deploy/components/dns01-webhook) (the API server said: {said})"
        )
    if status == 404:
        return bad_request(
            f"{name}: not served by this cluster; is the webhook installed with an APIService "
            f"{SOLVER_VERSION}.{webhook.group_name}? (the API server said: {said})"
        )
    if status is not None and status < 500 and status not in _RETRYABLE_CLIENT_STATUSES:
        return bad_request(f"{name}: {action} refused (HTTP {status}): {said}")
    if status is None:
        said = f"Kubernetes API unreachable: {said}"
    return ApplicationError(f"{name}: {action}: {said}", type=WEBHOOK_UNAVAILABLE)


def _failure_message(response: ChallengeResponse | None) -> str:
    if response is None:
        return "answered without a response"
    if response.status is not None and response.status.message:
        return response.status.message
    return "answered success: false without a message"


class WebhookPublisher:
    """A ``TxtPublisher`` that asks a cert-manager webhook to present and clean up.

    Both calls are as idempotent as the webhook is: cert-manager's contract asks webhooks
    to add a value beside others and delete only their own.
    """

    def __init__(self, api_client: client.ApiClient) -> None:
        self._objects = client.CustomObjectsApi(api_client)

    def _call(self, spec: ChallengeSpec, target: TxtTarget, action: Action) -> None:
        webhook = spec.solver.webhook
        if webhook is None:
            raise bad_request(f"challenge {spec.name} has no DNS-01 webhook solver")
        payload = ChallengePayload(request=challenge_request(spec, target, webhook, action))
        try:
            answer = self._objects.create_cluster_custom_object(
                webhook.group_name,
                SOLVER_VERSION,
                webhook.solver_name,
                payload.model_dump(by_alias=True, exclude_none=True),
                _request_timeout=REQUEST_TIMEOUT,
            )
        except KUBERNETES_ERRORS as error:
            raise _call_failure(error, webhook, action) from error
        response = ChallengePayload.model_validate(answer).response
        if response is None or not response.success:
            raise bad_request(f"{webhook_name(webhook)}: {action}: {_failure_message(response)}")

    def add_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        self._call(spec, target, "Present")

    def delete_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        self._call(spec, target, "CleanUp")
