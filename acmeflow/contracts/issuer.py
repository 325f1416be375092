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
class Dns01Webhook:
    """A cert-manager DNS webhook, reached through the API server's aggregation layer.

    ``config_json`` is the solver's ``config`` as JSON text, passed on unchanged; like
    cert-manager, acmeflow expects it to name Secrets rather than hold credentials.
    """

    group_name: str
    solver_name: str
    config_json: str = ""
    resource_namespace: str = ""
    """Where the webhook reads the Secrets its config names (cert-manager's
    ``resourceNamespace``): the Issuer's namespace, or the cluster resource namespace for a
    ClusterIssuer. Empty: the Challenge's namespace."""
    allow_ambient_credentials: bool = False
    """cert-manager's rule: true for a ClusterIssuer, false for an Issuer unless the
    operator allows ambient credentials for Issuers too."""


@dataclass(frozen=True)
class Route53:
    """AWS Route53, as cert-manager's ``route53`` solver spells it."""

    region: str = ""
    hosted_zone_id: str = ""
    """Empty: the hosted zone is found from the record's zone (found by SOA)."""
    access_key_id: str = ""
    """An access key id given in the clear (cert-manager's ``accessKeyID``); not a secret."""
    access_key_id_secret: SecretRef | None = None
    secret_access_key: SecretRef | None = None
    role: str = ""
    """An IAM role to assume (STS) with whatever credentials are found."""
    ambient: bool = False
    """May use the worker's own credentials (IRSA, instance profile) when none are named."""


@dataclass(frozen=True)
class Lexicon:
    """Any provider dns-lexicon supports; every option comes from a Secret or the spec.

    ``options`` hold values that are not secret (an account email, a server URL);
    ``secret_options`` name one Secret key per option; ``options_secret`` names a whole
    Secret whose every key is an option (``SecretRef.key`` empty).
    """

    provider: str
    zone: str = ""
    """Empty: the zone is found by SOA."""
    options: dict[str, str] = field(default_factory=dict)
    secret_options: dict[str, SecretRef] = field(default_factory=dict)
    options_secret: SecretRef | None = None
    shown_as: str = ""
    """How the Issuer spelled the solver (``cloudflare``, ``lexicon``), for reasons."""
    shown_fields: dict[str, str] = field(default_factory=dict)
    """Clear fields of a cert-manager block that lexicon takes no option for (cloudDNS
    ``project``), never passed to lexicon: kept so the Challenge shows the block as written."""


@dataclass(frozen=True)
class SolverConfig:
    selector: SolverSelector | None = None
    http01: Http01Ingress | None = None
    dns01: Rfc2136 | None = None
    """The RFC 2136 provider (named ``dns01`` before other providers existed)."""
    webhook: Dns01Webhook | None = None
    route53: Route53 | None = None
    lexicon: Lexicon | None = None
    cname_follow: bool = False
    """cert-manager's ``cnameStrategy: Follow``: write where ``_acme-challenge`` points."""

    @property
    def challenge_type(self) -> ChallengeType:
        return ChallengeType.HTTP01 if self.http01 is not None else ChallengeType.DNS01

    @property
    def dns01_provider(self) -> str:
        """Which DNS-01 provider presents, as the Issuer names it; empty for HTTP-01."""
        if self.dns01 is not None:
            return "rfc2136"
        if self.webhook is not None:
            return "webhook"
        if self.route53 is not None:
            return "route53"
        if self.lexicon is not None:
            return self.lexicon.shown_as or "lexicon"
        return ""


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


@dataclass(frozen=True)
class RegisteredAccount:
    """An issuer's ACME account as ``register_account`` found or made it.

    ``thumbprint`` is the account key's public JWK thumbprint (RFC 7638): public, so the
    issuer's workflow may keep it to notice a replaced key, which it never sees itself.
    """

    uri: str
    thumbprint: str
