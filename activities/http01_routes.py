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

An HTTPRoute carries the solver's ``gatewayHTTPRoute.labels`` (``Http01Ingress.route_labels``)
next to acmeflow's own labels, which win on a clash, so a Gateway that admits routes by
label admits it.

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
import re
from functools import partial
from typing import Final

from kubernetes import client

from acmeflow.activities.challenge_values import http01_url_path
from acmeflow.activities.errors import bad_request, still_waiting
from acmeflow.activities.gateway_api import (
    GATEWAY_GROUP,
    HTTP_ROUTE_VERSION,
    REFERENCE_GRANT_VERSION,
    BackendRef,
    HttpPathMatch,
    HttpRoute,
    HttpRouteMatch,
    HttpRouteRule,
    HttpRouteSpec,
    ReferenceGrant,
    ReferenceGrantFrom,
    ReferenceGrantSpec,
    ReferenceGrantTo,
)
from acmeflow.activities.kubernetes_api import (
    MANAGED_LABEL,
    REQUEST_TIMEOUT,
    core_owner_reference,
)
from acmeflow.activities.object_kinds import ObjectKind, Placement
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress
from acmeflow.crds import models as crd

CHALLENGE_LABEL: Final = "acmeflow.io/challenge"
MAX_NAME_LENGTH: Final = 63

_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


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


def route_labels(http01: Http01Ingress, name: str) -> dict[str, str]:
    """The solver's own labels for the route, then acmeflow's, which win on a clash."""
    return {**http01.route_labels, CHALLENGE_LABEL: name, MANAGED_LABEL: "true"}


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
        core, networking = client.CoreV1Api(api_client), client.NetworkingV1Api(api_client)
        builtin = partial(ObjectKind.builtin, api_client, request_timeout=request_timeout)
        custom = partial(ObjectKind.custom, api_client, request_timeout=request_timeout)
        self._services = builtin(core, "service", kind="Service", resource="services", group="")
        self._ingresses = builtin(
            networking, "ingress", kind="Ingress", resource="ingresses", group="networking.k8s.io"
        )
        self._http_routes = custom(GATEWAY_GROUP, HTTP_ROUTE_VERSION, "httproutes", "HTTPRoute")
        self._reference_grants = custom(
            GATEWAY_GROUP, REFERENCE_GRANT_VERSION, "referencegrants", "ReferenceGrant"
        )
        self._challenges = custom(crd.GROUP, crd.VERSION, crd.Challenge.PLURAL, crd.Challenge.KIND)

    # --- Http01Publisher ---------------------------------------------------------------------

    def publish(self, spec: ChallengeSpec) -> None:
        """Create (or converge) the route for ``spec``; the Challenge must exist."""
        http01 = _http01(spec)
        action = f"presenting HTTP-01 for Challenge {spec.namespace}/{spec.name}"
        owner = self._owner_reference(spec, action)
        name = route_name(spec.name)
        placement = Placement(spec.namespace, name, (CHALLENGE_LABEL, name))
        local = spec.namespace == self._solver_namespace
        if http01.gateway_parent_refs:
            if not local:
                grant = self._reference_grant(spec, http01)
                where = Placement(
                    self._solver_namespace, grant.metadata.name, (MANAGED_LABEL, "true")
                )
                self._reference_grants.ensure(grant, where, action)
            self._http_routes.ensure(self._http_route(spec, http01, name, owner), placement, action)
            return
        backend = http01.service_name
        if not local:
            backend = name
            service = self._external_name(spec, http01, name, owner)
            self._services.ensure(service, placement, action)
        ingress = self._ingress(spec, http01, name, owner, backend)
        self._ingresses.ensure(ingress, placement, action)

    def withdraw(self, spec: ChallengeSpec) -> None:
        """Remove the route for ``spec``; what is already gone is fine."""
        http01 = spec.solver.http01
        if http01 is None:
            return
        action = f"cleaning up HTTP-01 for Challenge {spec.namespace}/{spec.name}"
        name = route_name(spec.name)
        placement = Placement(spec.namespace, name, (CHALLENGE_LABEL, name))
        if http01.gateway_parent_refs:
            self._http_routes.remove(placement, action)
            return
        self._ingresses.remove(placement, action)
        if spec.namespace != self._solver_namespace:
            self._services.remove(placement, action)

    # --- What is created ---------------------------------------------------------------------

    def _owner_reference(self, spec: ChallengeSpec, action: str) -> crd.OwnerReference:
        challenge = self._challenges.read(spec.namespace, spec.name, action)
        if challenge is None:
            raise still_waiting(
                f"{action}: the Challenge resource is not there yet; the HTTP-01 route is "
                "owned by it, so it is created once the Challenge exists"
            )
        return crd.OwnerReference(
            api_version=crd.API_VERSION,
            kind=crd.Challenge.KIND,
            name=spec.name,
            uid=str(challenge.uid),
            controller=True,
        )

    @staticmethod
    def _core_metadata(
        spec: ChallengeSpec, name: str, owner: crd.OwnerReference
    ) -> client.V1ObjectMeta:
        return client.V1ObjectMeta(
            name=name,
            namespace=spec.namespace,
            labels={CHALLENGE_LABEL: name, MANAGED_LABEL: "true"},
            owner_references=[core_owner_reference(owner)],
        )

    def _solver_host(self, http01: Http01Ingress) -> str:
        return f"{http01.service_name}.{self._solver_namespace}.svc.{self._cluster_domain}"

    def _external_name(
        self, spec: ChallengeSpec, http01: Http01Ingress, name: str, owner: crd.OwnerReference
    ) -> client.V1Service:
        return client.V1Service(
            api_version="v1",
            kind="Service",
            metadata=self._core_metadata(spec, name, owner),
            spec=client.V1ServiceSpec(
                type="ExternalName",
                external_name=self._solver_host(http01),
                ports=[
                    client.V1ServicePort(
                        name="http",
                        protocol="TCP",
                        port=http01.service_port,
                        target_port=http01.service_port,
                    )
                ],
            ),
        )

    def _ingress(
        self,
        spec: ChallengeSpec,
        http01: Http01Ingress,
        name: str,
        owner: crd.OwnerReference,
        backend: str,
    ) -> client.V1Ingress:
        path = client.V1HTTPIngressPath(
            path=http01_url_path(spec.token),
            path_type="Exact",
            backend=client.V1IngressBackend(
                service=client.V1IngressServiceBackend(
                    name=backend, port=client.V1ServiceBackendPort(number=http01.service_port)
                )
            ),
        )
        rule = client.V1IngressRule(
            host=None if _is_address(spec.dns_name) else spec.dns_name,
            http=client.V1HTTPIngressRuleValue(paths=[path]),
        )
        return client.V1Ingress(
            api_version="networking.k8s.io/v1",
            kind="Ingress",
            metadata=self._core_metadata(spec, name, owner),
            spec=client.V1IngressSpec(
                ingress_class_name=http01.ingress_class_name or None, rules=[rule]
            ),
        )

    def _http_route(
        self, spec: ChallengeSpec, http01: Http01Ingress, name: str, owner: crd.OwnerReference
    ) -> HttpRoute:
        elsewhere = spec.namespace != self._solver_namespace
        backend = BackendRef(
            name=http01.service_name,
            namespace=self._solver_namespace if elsewhere else None,
            port=http01.service_port,
        )
        rule = HttpRouteRule(
            matches=[HttpRouteMatch(path=HttpPathMatch(value=http01_url_path(spec.token)))],
            backend_refs=[backend],
        )
        return HttpRoute(
            metadata=crd.ObjectMeta(
                name=name,
                namespace=spec.namespace,
                labels=route_labels(http01, name),
                owner_references=[owner],
            ),
            spec=HttpRouteSpec(
                parent_refs=[
                    crd.ParentRef.model_validate(ref) for ref in http01.gateway_parent_refs
                ],
                hostnames=None if _is_address(spec.dns_name) else [spec.dns_name],
                rules=[rule],
            ),
        )

    def _reference_grant(self, spec: ChallengeSpec, http01: Http01Ingress) -> ReferenceGrant:
        return ReferenceGrant(
            metadata=crd.ObjectMeta(
                name=f"{http01.service_name}-from-{spec.namespace}",
                namespace=self._solver_namespace,
                labels={MANAGED_LABEL: "true"},
            ),
            spec=ReferenceGrantSpec(
                from_=[
                    ReferenceGrantFrom(
                        group=GATEWAY_GROUP, kind="HTTPRoute", namespace=spec.namespace
                    )
                ],
                to=[ReferenceGrantTo(group="", kind="Service", name=http01.service_name)],
            ),
        )


def _http01(spec: ChallengeSpec) -> Http01Ingress:
    if spec.solver.http01 is None:
        raise bad_request(
            f"Challenge {spec.namespace}/{spec.name} has no http01 solver to route HTTP-01 with"
        )
    return spec.solver.http01


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
