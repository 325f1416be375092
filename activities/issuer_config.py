"""What an order needs to know about its issuer: public settings and secret references.

These values travel through workflow history, so they hold references to secrets and
never the secrets themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acmeflow.activities.secret_refs import SecretRef

HTTP01 = "HTTP-01"
DNS01 = "DNS-01"
ACME_CHALLENGE_TYPES = {HTTP01: "http-01", DNS01: "dns-01"}


@dataclass(frozen=True)
class SolverSelector:
    """Which identifiers a solver serves; an empty selector serves all."""

    dns_names: list[str] = field(default_factory=list)
    dns_zones: list[str] = field(default_factory=list)
    match_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Http01Ingress:
    """Routing for HTTP-01 inside a cluster: an Ingress rule or a Gateway HTTPRoute."""

    service_name: str = "acmeflow-solver"
    service_port: int = 8089
    ingress_class_name: str = ""
    gateway_parent_refs: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Rfc2136:
    """A DNS-01 provider: TSIG-signed dynamic updates to an authoritative server."""

    nameserver: str
    tsig_key_name: str = ""
    tsig_secret: SecretRef | None = None
    tsig_algorithm: str = "HMACSHA256"


@dataclass(frozen=True)
class SolverConfig:
    selector: SolverSelector | None = None
    http01: Http01Ingress | None = None
    dns01: Rfc2136 | None = None

    @property
    def challenge_type(self) -> str:
        return HTTP01 if self.http01 is not None else DNS01


@dataclass(frozen=True)
class ExternalAccountBinding:
    key_id: str
    key_secret: SecretRef
    key_algorithm: str = "HS256"


@dataclass(frozen=True)
class IssuerConfig:
    """One ACME issuer: the CA, the account, and how to solve challenges."""

    name: str
    server: str
    account_key: SecretRef
    email: str = ""
    skip_tls_verify: bool = False
    ca_bundle_pem: str = ""
    external_account_binding: ExternalAccountBinding | None = None
    preferred_chain: str = ""
    profile: str = ""
    solvers: list[SolverConfig] = field(default_factory=list)
