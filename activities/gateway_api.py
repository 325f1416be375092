"""The two Gateway API objects acmeflow writes, HTTPRoute and ReferenceGrant, as typed models.

The ``kubernetes`` client has no models for Gateway API (it is a set of CRDs), so these
hold exactly the fields acmeflow sets, camelCase on the wire like acmeflow's own CRD
models (``to_api()``), read back the same way.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from acmeflow.crds.models import CrdModel, ObjectMeta, ParentRef

GATEWAY_GROUP: Final = "gateway.networking.k8s.io"
HTTP_ROUTE_VERSION: Final = "v1"
REFERENCE_GRANT_VERSION: Final = "v1beta1"


class HttpPathMatch(CrdModel):
    type: Literal["Exact", "PathPrefix"] = "Exact"
    value: str


class HttpRouteMatch(CrdModel):
    path: HttpPathMatch


class BackendRef(CrdModel):
    """A Service the route forwards to; another namespace needs a ReferenceGrant there."""

    name: str
    namespace: str | None = None
    port: int


class HttpRouteRule(CrdModel):
    matches: list[HttpRouteMatch]
    backend_refs: list[BackendRef]


class HttpRouteSpec(CrdModel):
    parent_refs: list[ParentRef]
    hostnames: list[str] | None = None
    """Absent for an IP address identifier: hostnames cannot be addresses."""
    rules: list[HttpRouteRule]


class GatewayObject(CrdModel):
    metadata: ObjectMeta


class HttpRoute(GatewayObject):
    api_version: str = f"{GATEWAY_GROUP}/{HTTP_ROUTE_VERSION}"
    kind: Literal["HTTPRoute"] = "HTTPRoute"
    spec: HttpRouteSpec


class ReferenceGrantFrom(CrdModel):
    group: str
    kind: str
    namespace: str


class ReferenceGrantTo(CrdModel):
    group: str
    kind: str
    name: str | None = None
    """Only this object of the kind; every one when absent."""


class ReferenceGrantSpec(CrdModel):
    from_: list[ReferenceGrantFrom] = Field(validation_alias="from", serialization_alias="from")
    to: list[ReferenceGrantTo]


class ReferenceGrant(GatewayObject):
    """Lets HTTPRoutes of another namespace name a Service here (the solver's)."""

    api_version: str = f"{GATEWAY_GROUP}/{REFERENCE_GRANT_VERSION}"
    kind: Literal["ReferenceGrant"] = "ReferenceGrant"
    spec: ReferenceGrantSpec
