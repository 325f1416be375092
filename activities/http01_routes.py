"""HTTP-01 inside a cluster: route the CA's request to the shared ``acmeflow solver``.

Nothing here stores the token: ``acmeflow solver --kubernetes`` serves it straight from
the Challenge resource (``spec.token``, ``spec.key``, checked against ``spec.dnsName``).
Presenting a challenge makes the CA's request reach the solver; cleaning up removes that
route again. Every object created for a challenge is named ``route_name(<challenge>)``
(the Challenge's own name when it fits), labelled ``acmeflow.io/challenge=<that name>``
and owned by the Challenge, so deleting the Challenge removes it too (garbage collection)
even when clean-up never ran. Presenting twice converges on the same objects; cleaning up
what is not there does nothing; an object of the same name that acmeflow did not create
for this challenge is never changed or deleted.

Where the solver lives
----------------------
One solver Deployment runs in acmeflow's namespace (``acmeflow`` by default) behind the
Service ``Http01Ingress.service_name`` (``acmeflow-solver``, port 8089). A cert-manager
user expects nothing to prepare per namespace, because cert-manager starts a solver Pod
and Service next to each challenge. acmeflow keeps the one shared solver and bridges the
namespace gap per challenge instead:

- **Ingress** (``networking.k8s.io/v1``): an Ingress backend can only name a Service in
  the Ingress's own namespace, so acmeflow creates, next to the Ingress and with the same
  name, a Service of type ExternalName pointing at
  ``<service>.<acmeflow namespace>.svc.<cluster domain>``. ingress-nginx, HAProxy and
  Kong follow ExternalName backends; Traefik needs ``allowExternalNameServices``;
  controllers that do not follow them (GKE's, Contour by default) need the Gateway route.
- **Gateway API** (``gateway.networking.k8s.io/v1`` HTTPRoute): a route may name a Service
  in another namespace when a ReferenceGrant there allows it, which is the portable way
  (Gateway implementations are told not to follow ExternalName Services). acmeflow keeps
  one ReferenceGrant per route namespace in its own namespace, ``<service>-from-<ns>``,
  letting that namespace's HTTPRoutes reach the solver Service and nothing else. Grants
  stay after clean-up, for the namespace's next challenges.

A challenge in acmeflow's own namespace is routed to the solver Service directly. An IP
address identifier gets a rule without a host (Ingress hosts and HTTPRoute hostnames
cannot be addresses); the solver still compares the request's Host with the Challenge.

RBAC the worker needs: ``get`` on ``challenges.acmeflow.io``; ``get``, ``create``,
``patch``, ``delete`` on ``ingresses.networking.k8s.io``, ``services`` and
``httproutes.gateway.networking.k8s.io`` where Challenges live; ``get``, ``create``,
``patch`` on ``referencegrants.gateway.networking.k8s.io`` in acmeflow's namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client

from acmeflow.activities.challenge_values import http01_url_path
from acmeflow.activities.errors import bad_request, still_waiting
from acmeflow.activities.kubernetes_api import (
    KUBERNETES_ERRORS,
    MANAGED_LABEL,
    REQUEST_TIMEOUT,
    Permission,
    api_failure,
    server_message,
    status_of,
)
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress
from acmeflow.crds.models import API_VERSION, GROUP, VERSION, Challenge

log = logging.getLogger(__name__)

CHALLENGE_LABEL: Final = "acmeflow.io/challenge"
GATEWAY_GROUP: Final = "gateway.networking.k8s.io"
HTTP_ROUTE_VERSION: Final = "v1"
REFERENCE_GRANT_VERSION: Final = "v1beta1"
MERGE_PATCH: Final = "application/merge-patch+json"
MAX_NAME_LENGTH: Final = 63
MAX_ATTEMPTS: Final = 5

_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
Manifest = dict[str, Any]


def route_name(challenge_name: str) -> str:
    """Name of the objects routing one challenge.

    The Challenge's own name when it is a valid Service name (a DNS-1035 label of at most
    63 characters); otherwise a readable prefix of it and a hash of the whole name.
    """
    if len(challenge_name) <= MAX_NAME_LENGTH and _SERVICE_NAME.fullmatch(challenge_name):
        return challenge_name
    digest = hashlib.sha256(challenge_name.encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9]+", "-", challenge_name.lower()).strip("-")
    if not readable[:1].isalpha():
        readable = f"c-{readable}"
    readable = readable[: MAX_NAME_LENGTH - len(digest) - 1].rstrip("-")
    return f"{readable}-{digest}"


@dataclass(frozen=True)
class _Kind:
    """The calls acmeflow makes for one kind of object, on wire-form dicts."""

    kind: str
    resource: str
    group: str
    create: Callable[[str, Manifest], object]
    read: Callable[[str, str], Manifest]
    patch: Callable[[str, str, Manifest], object]
    delete: Callable[[str, str, client.V1DeleteOptions], object]

    def permission(self, verb: str, namespace: str) -> Permission:
        return Permission(verb=verb, resource=self.resource, namespace=namespace, group=self.group)


class KubernetesHttp01Routes:
    """An ``Http01Publisher`` that routes each challenge to the shared solver Service."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        solver_namespace: str = "acmeflow",
        cluster_domain: str = "cluster.local",
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self._solver_namespace = solver_namespace
        self._cluster_domain = cluster_domain
        self._custom = client.CustomObjectsApi(api_client)
        self._call: dict[str, Any] = {"_request_timeout": request_timeout}
        core = client.CoreV1Api(api_client)
        networking = client.NetworkingV1Api(api_client)
        call = self._call

        def wire(obj: object) -> Manifest:
            serialized: Manifest = api_client.sanitize_for_serialization(obj)
            return serialized

        self._services = _Kind(
            kind="Service",
            resource="services",
            group="",
            create=lambda ns, body: core.create_namespaced_service(
                ns, client.V1Service.model_validate(body), **call
            ),
            read=lambda ns, name: wire(core.read_namespaced_service(name, ns, **call)),
            patch=lambda ns, name, body: core.patch_namespaced_service(
                name, ns, body, _content_type=MERGE_PATCH, **call
            ),
            delete=lambda ns, name, options: core.delete_namespaced_service(
                name, ns, body=options, **call
            ),
        )
        self._ingresses = _Kind(
            kind="Ingress",
            resource="ingresses",
            group="networking.k8s.io",
            create=lambda ns, body: networking.create_namespaced_ingress(
                ns, client.V1Ingress.model_validate(body), **call
            ),
            read=lambda ns, name: wire(networking.read_namespaced_ingress(name, ns, **call)),
            patch=lambda ns, name, body: networking.patch_namespaced_ingress(
                name, ns, body, _content_type=MERGE_PATCH, **call
            ),
            delete=lambda ns, name, options: networking.delete_namespaced_ingress(
                name, ns, body=options, **call
            ),
        )
        self._http_routes = self._custom_kind("HTTPRoute", "httproutes", HTTP_ROUTE_VERSION)
        self._reference_grants = self._custom_kind(
            "ReferenceGrant", "referencegrants", REFERENCE_GRANT_VERSION
        )

    def _custom_kind(self, kind: str, plural: str, version: str) -> _Kind:
        custom, call = self._custom, self._call
        where = (GATEWAY_GROUP, version)
        return _Kind(
            kind=kind,
            resource=plural,
            group=GATEWAY_GROUP,
            create=lambda ns, body: custom.create_namespaced_custom_object(
                *where, ns, plural, body, **call
            ),
            read=lambda ns, name: _as_manifest(
                custom.get_namespaced_custom_object(*where, ns, plural, name, **call)
            ),
            patch=lambda ns, name, body: custom.patch_namespaced_custom_object(
                *where, ns, plural, name, body, _content_type=MERGE_PATCH, **call
            ),
            delete=lambda ns, name, options: custom.delete_namespaced_custom_object(
                *where, ns, plural, name, body=options, **call
            ),
        )

    # --- Http01Publisher ---------------------------------------------------------------------

    def publish(self, spec: ChallengeSpec) -> None:
        """Create (or converge) the route for ``spec``; the Challenge must exist."""
        http01 = _http01(spec)
        action = f"presenting HTTP-01 for Challenge {spec.namespace}/{spec.name}"
        owner = self._owner_reference(spec, action)
        name = route_name(spec.name)
        local = spec.namespace == self._solver_namespace
        if http01.gateway_parent_refs:
            if not local:
                self._ensure(self._reference_grants, self._reference_grant(spec, http01), action)
            self._ensure(self._http_routes, self._http_route(spec, http01, name, owner), action)
            return
        backend = http01.service_name
        if not local:
            backend = name
            self._ensure(self._services, self._external_name(spec, http01, name, owner), action)
        self._ensure(self._ingresses, self._ingress(spec, http01, name, owner, backend), action)

    def withdraw(self, spec: ChallengeSpec) -> None:
        """Remove the route for ``spec``; what is already gone is fine."""
        http01 = spec.solver.http01
        if http01 is None:
            return
        action = f"cleaning up HTTP-01 for Challenge {spec.namespace}/{spec.name}"
        name = route_name(spec.name)
        if http01.gateway_parent_refs:
            self._remove(self._http_routes, spec.namespace, name, action)
            return
        self._remove(self._ingresses, spec.namespace, name, action)
        if spec.namespace != self._solver_namespace:
            self._remove(self._services, spec.namespace, name, action)

    # --- What is created ---------------------------------------------------------------------

    def _owner_reference(self, spec: ChallengeSpec, action: str) -> Manifest:
        try:
            challenge = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, spec.namespace, Challenge.PLURAL, spec.name, **self._call
            )
        except KUBERNETES_ERRORS as error:
            if status_of(error) == 404:
                raise still_waiting(
                    f"{action}: the Challenge resource is not there yet; the HTTP-01 route is "
                    "owned by it, so it is created once the Challenge exists"
                ) from error
            permission = Permission(
                verb="get", resource=Challenge.PLURAL, namespace=spec.namespace, group=GROUP
            )
            raise api_failure(error, action=action, permission=permission) from error
        metadata = _as_manifest(challenge).get("metadata") or {}
        return {
            "apiVersion": API_VERSION,
            "kind": Challenge.KIND,
            "name": spec.name,
            "uid": metadata["uid"],
            "controller": True,
        }

    def _metadata(self, spec: ChallengeSpec, name: str, owner: Manifest) -> Manifest:
        return {
            "name": name,
            "namespace": spec.namespace,
            "labels": {CHALLENGE_LABEL: name, MANAGED_LABEL: "true"},
            "ownerReferences": [owner],
        }

    def _solver_host(self, http01: Http01Ingress) -> str:
        return f"{http01.service_name}.{self._solver_namespace}.svc.{self._cluster_domain}"

    def _external_name(
        self, spec: ChallengeSpec, http01: Http01Ingress, name: str, owner: Manifest
    ) -> Manifest:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self._metadata(spec, name, owner),
            "spec": {
                "type": "ExternalName",
                "externalName": self._solver_host(http01),
                "ports": [
                    {
                        "name": "http",
                        "protocol": "TCP",
                        "port": http01.service_port,
                        "targetPort": http01.service_port,
                    }
                ],
            },
        }

    def _ingress(
        self, spec: ChallengeSpec, http01: Http01Ingress, name: str, owner: Manifest, backend: str
    ) -> Manifest:
        rule: Manifest = {
            "http": {
                "paths": [
                    {
                        "path": http01_url_path(spec.token),
                        "pathType": "Exact",
                        "backend": {
                            "service": {
                                "name": backend,
                                "port": {"number": http01.service_port},
                            }
                        },
                    }
                ]
            }
        }
        if not _is_address(spec.dns_name):
            rule = {"host": spec.dns_name, **rule}
        ingress_spec: Manifest = {"rules": [rule]}
        if http01.ingress_class_name:
            ingress_spec = {"ingressClassName": http01.ingress_class_name, **ingress_spec}
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": self._metadata(spec, name, owner),
            "spec": ingress_spec,
        }

    def _http_route(
        self, spec: ChallengeSpec, http01: Http01Ingress, name: str, owner: Manifest
    ) -> Manifest:
        backend: Manifest = {"name": http01.service_name, "port": http01.service_port}
        if spec.namespace != self._solver_namespace:
            backend["namespace"] = self._solver_namespace
        route_spec: Manifest = {
            "parentRefs": [dict(ref) for ref in http01.gateway_parent_refs],
            "rules": [
                {
                    "matches": [{"path": {"type": "Exact", "value": http01_url_path(spec.token)}}],
                    "backendRefs": [backend],
                }
            ],
        }
        if not _is_address(spec.dns_name):
            route_spec["hostnames"] = [spec.dns_name]
        return {
            "apiVersion": f"{GATEWAY_GROUP}/{HTTP_ROUTE_VERSION}",
            "kind": "HTTPRoute",
            "metadata": self._metadata(spec, name, owner),
            "spec": route_spec,
        }

    def _reference_grant(self, spec: ChallengeSpec, http01: Http01Ingress) -> Manifest:
        return {
            "apiVersion": f"{GATEWAY_GROUP}/{REFERENCE_GRANT_VERSION}",
            "kind": "ReferenceGrant",
            "metadata": {
                "name": f"{http01.service_name}-from-{spec.namespace}",
                "namespace": self._solver_namespace,
                "labels": {MANAGED_LABEL: "true"},
            },
            "spec": {
                "from": [
                    {"group": GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": spec.namespace}
                ],
                "to": [{"group": "", "kind": "Service", "name": http01.service_name}],
            },
        }

    # --- Create-or-converge and guarded delete -----------------------------------------------

    def _ensure(self, kind: _Kind, manifest: Manifest, action: str) -> None:
        """Create ``manifest``; if it exists and is acmeflow's, patch it to match."""
        metadata = manifest["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        ours = _ownership_label(metadata)
        for _ in range(MAX_ATTEMPTS):
            try:
                kind.create(namespace, manifest)
                return
            except KUBERNETES_ERRORS as error:
                if status_of(error) == 404:
                    raise bad_request(
                        f"{action}: cannot create {kind.kind} {namespace}/{name}: "
                        f"{server_message(error)} (does this cluster serve {kind.kind} "
                        f"from {kind.group or 'core/v1'}, and does namespace {namespace} exist?)"
                    ) from error
                if status_of(error) != 409:
                    raise api_failure(
                        error, action=action, permission=kind.permission("create", namespace)
                    ) from error
            existing = self._read(kind, namespace, name, action)
            if existing is None:
                continue
            if not _has_label(existing, *ours):
                raise bad_request(
                    f"{action}: {kind.kind} {namespace}/{name} already exists and acmeflow did "
                    f"not create it (no label {ours[0]}={ours[1]}); rename or delete it"
                )
            patch = {
                "metadata": {
                    key: metadata[key] for key in ("labels", "ownerReferences") if key in metadata
                },
                "spec": manifest["spec"],
            }
            try:
                kind.patch(namespace, name, patch)
                return
            except KUBERNETES_ERRORS as error:
                if status_of(error) != 404:
                    raise api_failure(
                        error, action=action, permission=kind.permission("patch", namespace)
                    ) from error
        raise still_waiting(f"{action}: {kind.kind} {namespace}/{name} kept changing; retrying")

    def _remove(self, kind: _Kind, namespace: str, name: str, action: str) -> None:
        """Delete acmeflow's object ``name``, precondition on its uid; others stay."""
        for _ in range(MAX_ATTEMPTS):
            existing = self._read(kind, namespace, name, action)
            if existing is None:
                return
            if not _has_label(existing, CHALLENGE_LABEL, name):
                log.warning(
                    "%s: leaving %s %s/%s alone: acmeflow did not create it",
                    action,
                    kind.kind,
                    namespace,
                    name,
                )
                return
            options = client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid=existing["metadata"]["uid"]),
                propagation_policy="Background",
            )
            try:
                kind.delete(namespace, name, options)
                return
            except KUBERNETES_ERRORS as error:
                if status_of(error) == 404:
                    return
                if status_of(error) != 409:
                    raise api_failure(
                        error, action=action, permission=kind.permission("delete", namespace)
                    ) from error
        raise still_waiting(f"{action}: {kind.kind} {namespace}/{name} kept changing; retrying")

    def _read(self, kind: _Kind, namespace: str, name: str, action: str) -> Manifest | None:
        try:
            return kind.read(namespace, name)
        except KUBERNETES_ERRORS as error:
            if status_of(error) == 404:
                return None
            raise api_failure(
                error, action=action, permission=kind.permission("get", namespace)
            ) from error


def _http01(spec: ChallengeSpec) -> Http01Ingress:
    if spec.solver.http01 is None:
        raise bad_request(
            f"Challenge {spec.namespace}/{spec.name} has no http01 solver to route HTTP-01 with"
        )
    return spec.solver.http01


def _as_manifest(obj: object) -> Manifest:
    """A custom object as the client returns it: a JSON dict."""
    if not isinstance(obj, dict):
        raise TypeError(f"expected a JSON object from the API server, got {type(obj).__name__}")
    return obj


def _ownership_label(metadata: Manifest) -> tuple[str, str]:
    labels: dict[str, str] = metadata["labels"]
    if CHALLENGE_LABEL in labels:
        return CHALLENGE_LABEL, labels[CHALLENGE_LABEL]
    return MANAGED_LABEL, labels[MANAGED_LABEL]


def _has_label(obj: Manifest, label: str, value: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(label) == value)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
