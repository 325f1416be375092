"""What an order needs to know about its issuer: public settings and secret references."""

from __future__ import annotations

from dataclasses import dataclass, field

from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import ChallengeType


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
    route_labels: dict[str, str] = field(default_factory=dict)
    """Labels for the HTTPRoute (``gatewayHTTPRoute.labels``), so a Gateway can select it."""


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
    def challenge_type(self) -> ChallengeType:
        return ChallengeType.HTTP01 if self.http01 is not None else ChallengeType.DNS01


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


@dataclass(frozen=True)
class AccountRef:
    """An ACME account as a protocol step needs it: where, which key, and how to trust the CA.

    Steps after registration carry this instead of the whole ``IssuerConfig`` (solvers,
    EAB, contact), so each activity input in history stays small.
    """

    server: str
    account_key: SecretRef
    account_uri: str
    skip_tls_verify: bool = False
    ca_bundle_pem: str = ""

    @classmethod
    def of(cls, issuer: IssuerConfig, account_uri: str) -> AccountRef:
        return cls(
            server=issuer.server,
            account_key=issuer.account_key,
            account_uri=account_uri,
            skip_tls_verify=issuer.skip_tls_verify,
            ca_bundle_pem=issuer.ca_bundle_pem,
        )
