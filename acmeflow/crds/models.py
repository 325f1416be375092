"""The acmeflow.io/v1alpha1 resources as pydantic models: how the code reads and writes them.

The models are also the source of the CustomResourceDefinitions: ``acmeflow.crds.generate`` turns
their JSON schema into structural OpenAPI schemas. So the docstrings of classes and
fields are what ``kubectl explain`` shows, and the CEL rules attached here
(``x-kubernetes-validations``) are what the API server enforces at admission.

Field names are snake_case in Python and camelCase on the wire; ``to_api()`` gives the
wire form. Every model ignores unknown fields, so a newer CRD never breaks an older reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from acmeflow.contracts.progress import ConditionStatus
from acmeflow.contracts.states import AuthorizationStatus, ChallengeState, ChallengeType, OrderState

GROUP: Final = "acmeflow.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Wire names that plain camelCase would spell differently.
_ALIASES = {
    "finalize_url": "finalizeURL",
    "authorization_url": "authorizationURL",
    "skip_tls_verify": "skipTLSVerify",
    "key_id": "keyID",
    "gateway_http_route": "gatewayHTTPRoute",
    "class_": "class",
    "cloud_dns": "cloudDNS",
    "azure_dns": "azureDNS",
    "acme_dns": "acmeDNS",
    "hosted_zone_id": "hostedZoneID",
    "access_key_id": "accessKeyID",
    "access_key_id_secret_ref": "accessKeyIDSecretRef",
    "client_id": "clientID",
    "subscription_id": "subscriptionID",
    "tenant_id": "tenantID",
    "is_ca": "isCA",
}


def wire_name(field_name: str) -> str:
    """The camelCase name of a field on the wire."""
    return _ALIASES.get(field_name) or to_camel(field_name)


def cel(rule: str, message: str, *, field_path: str = "") -> dict[str, str]:
    """One CEL admission rule; the message is what a person sees when it fails."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


@dataclass(frozen=True)
class Refusal:
    """A field declared only to be refused at admission, with why and what to do instead.

    Undeclared, the field would be pruned from the stored object (a pasted cert-manager
    spec losing it silently) or refused by kubectl's strict validation as "unknown field",
    which says nothing about what to do. ``acmeflow convert-issuer`` reads the same
    refusals, so it says exactly what admission would.
    """

    field: str
    """Wire name of the field in its object."""
    why: str
    """The reason, then what to do."""
    shown_as: str = ""
    """How a person names the field, e.g. ``ingress.name``; ``field`` when empty."""
    values: tuple[str | bool, ...] = ()
    """Only these values are refused (``NodePort``, ``true``); every value when empty."""
    drops_solver: bool = False
    """The solver cannot work without the field, so a conversion leaves the solver out."""

    @property
    def message(self) -> str:
        shown = " or ".join(_cel_literal(value).strip("'") for value in self.values)
        name = " ".join(filter(None, (self.shown_as or self.field, shown)))
        return f"{name} is not supported: {self.why}"

    def refuses(self, value: object) -> bool:
        if not self.values:
            return True
        return any(value == bad and type(value) is type(bad) for bad in self.values)

    def rule(self) -> dict[str, str]:
        condition = f"!has(self.{self.field})"
        if self.values:
            literals = ", ".join(_cel_literal(value) for value in self.values)
            condition += f" || !(self.{self.field} in [{literals}])"
        return cel(condition, self.message, field_path=f".{self.field}")


@dataclass(frozen=True)
class Requirement:
    """Fields acmeflow needs where cert-manager falls back to something acmeflow lacks.

    cert-manager's cloudDNS and azureDNS work without credentials by using the controller's
    ambient ones; acmeflow reaches them through dns-lexicon, which cannot. Admission refuses
    such a block with the reason, and ``acmeflow convert-issuer`` reads the same requirement
    and leaves the solver out, in the same words.
    """

    fields: tuple[str, ...]
    """Wire names of the fields, every one needed."""
    why: str
    shown_as: str
    """How a person names the block, e.g. ``dns01.cloudDNS``."""

    @property
    def message(self) -> str:
        *first, last = self.fields
        names = f"{', '.join(first)} and {last}" if first else last
        return f"{self.shown_as} needs {names} in acmeflow: {self.why}"

    def missing(self, written: Mapping[str, object]) -> bool:
        return any(written.get(name) in (None, "") for name in self.fields)

    def rule(self) -> dict[str, str]:
        condition = " && ".join(f"has(self.{name})" for name in self.fields)
        return cel(condition, self.message, field_path=f".{self.fields[0]}")


def _cel_literal(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'"


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """JSON-schema extra carrying CEL rules into the generated CRD."""
    return {"x-kubernetes-validations": list(rules)}


class CrdModel(BaseModel):
    """Base of every acmeflow resource part: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=wire_name,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    REFUSED: ClassVar[tuple[Refusal, ...]] = ()
    """Fields of cert-manager's dialect this part declares only to refuse (see ``Refusal``)."""
    REQUIRED: ClassVar[tuple[Requirement, ...]] = ()
    """Fields acmeflow needs that cert-manager may go without (see ``Requirement``)."""

    def to_api(self) -> dict[str, Any]:
        """The JSON-ready wire form, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- Reusable value types ------------------------------------------------------------------

_LABEL = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DNS_NAME_PATTERN = f"^({_LABEL}[.])*{_LABEL}$"
WILDCARD_DNS_NAME_PATTERN = f"^([*][.])?({_LABEL}[.])*{_LABEL}$"
SECRET_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
GO_DURATION_PATTERN = "^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$"
BASE64_PATTERN = "^[A-Za-z0-9+/]*={0,2}$"
MAX_IDENTIFIERS = 100
"""Let's Encrypt's limit of names per certificate; it also bounds the cost of CEL rules."""
UNIQUE_ITEMS: Final[dict[str, Any]] = {"x-kubernetes-list-type": "set"}
"""A list of names as a set: the API server refuses a duplicate ("Duplicate value")."""

IDN_EXAMPLE = "xn--bcher-kva.example for bücher.example"
"""The A-label of an internationalized name, as a person would look it up."""


def dns_name_rules(pattern: str, shape: str, *, or_ip: bool = False) -> dict[str, Any]:
    """CEL rules for one DNS name: each common mistake gets its own message, then the shape.

    The shape rule stays quiet when a specific rule already explains the name, so a person
    reads one reason per mistake (uppercase is checked on the lowercased name for that).
    ``or_ip`` admits an IP address too, where an identifier of either kind fits.
    """
    specific = (
        "!self.matches('^[[:ascii:]]*$')",
        "self.endsWith('.')",
        "isIP(self)",
        "self.matches('[^.]{64,}')",
    )
    rules = (
        cel(
            "self.matches('^[[:ascii:]]*$')",
            "must be ASCII: write an internationalized name as its A-label (xn--...), e.g. "
            f"{IDN_EXAMPLE} (python3 -c \"print('bücher.example'.encode('idna').decode())\")",
        ),
        cel(
            "self == self.lowerAscii()",
            "must be lowercase: DNS names are case-insensitive and CAs certify them in "
            "lowercase; write www.example.com, not WWW.Example.com",
        ),
        cel(
            "!self.endsWith('.')",
            "must not end with a dot: write example.com, not example.com.",
        ),
        cel(
            "!isIP(self)",
            "is an IP address, not a DNS name: list IP addresses under ipAddresses",
        ),
        cel(
            "!self.matches('[^.]{64,}')",
            "each label (the part between dots) must be at most 63 characters",
        ),
        cel(
            " || ".join((*specific, f"self.lowerAscii().matches('{pattern}')")),
            f"must be a lowercase DNS name such as {shape}",
        ),
    )
    if not or_ip:
        return validations(*rules)
    return validations(
        *(
            cel(f"isIP(self) || {rule['rule']}", rule["message"])
            for rule in rules
            if rule["rule"] != "!isIP(self)"
        )
    )


DnsName = Annotated[
    str,
    Field(
        max_length=253,
        json_schema_extra=dns_name_rules(WILDCARD_DNS_NAME_PATTERN, "example.com or *.example.com"),
    ),
]
"""A DNS name, possibly a wildcard (``*.example.com``)."""

PlainDnsName = Annotated[
    str,
    Field(
        max_length=253,
        json_schema_extra=dns_name_rules(DNS_NAME_PATTERN, "example.com, without a '*.' prefix"),
    ),
]
"""A DNS name that is not a wildcard."""

DnsNameOrIp = Annotated[
    str,
    Field(
        max_length=253,
        json_schema_extra=dns_name_rules(
            DNS_NAME_PATTERN, "example.com, without a '*.' prefix, or an IP address", or_ip=True
        ),
    ),
]
"""What an ACME identifier names: a DNS name without ``*.``, or an IP address."""

Unread = Annotated[
    dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
]
"""An object stored as written and never read: the shape of a field refused at admission."""

Passed = Annotated[
    dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
]
"""A free-form JSON object stored as written and passed on unread (a webhook's config)."""

IpAddress = Annotated[
    str,
    Field(
        max_length=45,
        json_schema_extra=validations(
            cel("isIP(self)", "must be an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1")
        ),
    ),
]

GoDuration = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra=validations(
            cel(
                f"self.matches('{GO_DURATION_PATTERN}')",
                "must be a duration in hours, minutes or seconds such as 2160h, 90m or 1h30m",
            )
        ),
    ),
]
"""A Go duration string (``2160h``); days are not a unit, as in Go."""

SecretName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        json_schema_extra=validations(
            cel(
                f"self.matches('{SECRET_NAME_PATTERN}')",
                "must be a valid Secret name: lowercase letters, digits, '-' and '.', "
                "starting and ending with a letter or digit",
            )
        ),
    ),
]

HAS_IDENTIFIER = (
    "(has(self.commonName) && self.commonName != '')"
    " || (has(self.dnsNames) && size(self.dnsNames) > 0)"
    " || (has(self.ipAddresses) && size(self.ipAddresses) > 0)"
)

NAME_RULES = (
    cel(
        "(has(self.dnsNames) ? size(self.dnsNames) : 0)"
        f" + (has(self.ipAddresses) ? size(self.ipAddresses) : 0) <= {MAX_IDENTIFIERS}",
        f"at most {MAX_IDENTIFIERS} names per certificate, dnsNames and ipAddresses together "
        "(Let's Encrypt's limit): split the names over several Certificates",
    ),
    cel(
        "!has(self.commonName) || self.commonName == '' || isIP(self.commonName)"
        f" || self.commonName.matches('{WILDCARD_DNS_NAME_PATTERN}')",
        "commonName must be one of the certificate's names: a lowercase DNS name such as "
        "www.example.com, or an IP address",
        field_path=".commonName",
    ),
)
"""Rules on the names of an Order or a Certificate as a whole."""


class TsigAlgorithm(StrEnum):
    """TSIG algorithm names as BIND and cert-manager spell them."""

    HMACMD5 = "HMACMD5"
    HMACSHA1 = "HMACSHA1"
    HMACSHA224 = "HMACSHA224"
    HMACSHA256 = "HMACSHA256"
    HMACSHA384 = "HMACSHA384"
    HMACSHA512 = "HMACSHA512"


# --- Shared parts --------------------------------------------------------------------------


class IssuerRef(CrdModel):
    """The Issuer or ClusterIssuer that signs; an Issuer must be in the same namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Issuer or ClusterIssuer."""
    kind: Literal["Issuer", "ClusterIssuer"] = "Issuer"
    """Issuer (same namespace) or ClusterIssuer."""
    group: Literal["acmeflow.io"] = GROUP
    """API group of the issuer; acmeflow serves only its own issuers."""


class Condition(CrdModel):
    """One observation about the resource, as in metav1.Condition."""

    type: str = Field(min_length=1, max_length=316)
    """Ready, or Issuing for a Certificate."""
    status: ConditionStatus
    reason: str | None = None
    """A CamelCase word a program can switch on."""
    message: str | None = None
    """What a person needs to know."""
    last_transition_time: datetime | None = None
    """When status last changed."""
    observed_generation: int | None = None
    """The metadata.generation this condition describes."""


Conditions = Annotated[
    list[Condition],
    Field(
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        }
    ),
]
"""Conditions keyed by type, so server-side apply merges them one by one."""


# --- Issuer and ClusterIssuer --------------------------------------------------------------
#
# spec.acme is cert-manager's ACMEIssuer, field for field: a cert-manager Issuer's spec pastes
# in unchanged. What acmeflow lacks is declared too and refused with a reason (``refused``);
# docs/cert-manager-dialect.md lists every field.

SHARED_SOLVER_SERVICE: Final = (
    "every HTTP-01 request goes to acmeflow's one shared ClusterIP solver Service, so there is "
    "no per-challenge Service to expose; remove serviceType (or set ClusterIP)"
)
NO_SOLVER_PODS: Final = (
    "acmeflow runs no pod per challenge, its shared solver Deployment answers every HTTP-01 "
    "request (schedule that Deployment instead); remove podTemplate"
)


class AccountKeySecretRef(CrdModel):
    """The Secret holding the ACME account key; acmeflow creates it when missing."""

    name: SecretName
    key: str = Field(default="tls.key", min_length=1, max_length=253)
    """Key within the Secret."""


class SecretKeyRef(CrdModel):
    """A key of a Secret in the issuer's namespace (for a ClusterIssuer: acmeflow's namespace)."""

    name: SecretName
    key: str = Field(min_length=1, max_length=253)
    """Key within the Secret."""


class AcmeExternalAccountBinding(CrdModel):
    """Binds the ACME account to an account the CA already knows (ZeroSSL, Google, ...)."""

    key_id: str = Field(min_length=1, max_length=1024)
    """Key identifier given by the CA."""
    key_secret_ref: SecretKeyRef
    """Secret holding the base64url MAC key given by the CA."""
    key_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    """MAC algorithm of the binding."""


class AcmeSolverSelector(CrdModel):
    """Which identifiers a solver serves: exact names beat zones beat labels; empty serves all."""

    dns_names: list[DnsName] = Field(
        default_factory=list, max_length=MAX_IDENTIFIERS, json_schema_extra=UNIQUE_ITEMS
    )
    """Exact names (a wildcard name matches only itself)."""
    dns_zones: list[PlainDnsName] = Field(
        default_factory=list, max_length=MAX_IDENTIFIERS, json_schema_extra=UNIQUE_ITEMS
    )
    """Zones; the longest matching suffix wins."""
    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels of the Certificate."""


class IngressSolver(CrdModel):
    """Route HTTP-01 requests with an Ingress per challenge to acmeflow's shared solver Service."""

    class_: str | None = Field(default=None, max_length=253)
    """Legacy kubernetes.io/ingress.class annotation value."""
    ingress_class_name: str | None = Field(default=None, max_length=253)
    """IngressClass to use."""
    service_type: Literal["ClusterIP", "NodePort"] | None = None
    """ClusterIP, or unset: one shared ClusterIP solver Service answers every challenge."""
    name: str | None = Field(default=None, max_length=253)
    """Not supported, refused at admission: acmeflow creates its own Ingress, never edits one."""
    pod_template: Unread | None = None
    """Not supported, refused at admission: acmeflow runs no pod per challenge."""
    ingress_template: Unread | None = None
    """Not supported, refused at admission: acmeflow's Ingresses carry only its own labels."""

    REFUSED = (
        Refusal(
            "name",
            "acmeflow never edits an existing Ingress, it creates one per challenge routed to "
            "its shared solver Service; remove name (ingressClassName picks the Ingress "
            "controller)",
            shown_as="ingress.name",
        ),
        Refusal(
            "serviceType",
            SHARED_SOLVER_SERVICE,
            shown_as="ingress.serviceType",
            values=("NodePort",),
        ),
        Refusal("podTemplate", NO_SOLVER_PODS, shown_as="ingress.podTemplate"),
        Refusal(
            "ingressTemplate",
            "acmeflow's challenge Ingresses carry only its own labels and the ingressClassName; "
            "remove ingressTemplate, or keep this solver on cert-manager if the Ingress "
            "controller needs its annotations",
            shown_as="ingress.ingressTemplate",
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(self.class) && has(self.ingressClassName))",
                "set either ingress.class or ingress.ingressClassName, not both",
            ),
            *(refusal.rule() for refusal in REFUSED),
        )
    )


class ParentRef(CrdModel):
    """A Gateway (or listener of one) that the HTTPRoute attaches to, as Gateway API spells it."""

    group: str | None = Field(default=None, max_length=253)
    """API group of the parent; gateway.networking.k8s.io when empty."""
    kind: str | None = Field(default=None, max_length=63)
    """Kind of the parent; Gateway when empty."""
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, max_length=63)
    """Namespace of the Gateway; the route's namespace when empty."""
    section_name: str | None = Field(default=None, max_length=253)
    """Listener of the Gateway."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the Gateway's listeners to attach to; every listener when empty."""


class GatewayHttpRouteSolver(CrdModel):
    """Route HTTP-01 requests with a Gateway API HTTPRoute."""

    parent_refs: list[ParentRef] = Field(min_length=1, max_length=32)
    """Gateways to attach the route to."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels of the HTTPRoute acmeflow creates per challenge, for Gateways that select by label."""
    service_type: Literal["ClusterIP", "NodePort"] | None = None
    """ClusterIP, or unset: one shared ClusterIP solver Service answers every challenge."""
    pod_template: Unread | None = None
    """Not supported, refused at admission: acmeflow runs no pod per challenge."""

    REFUSED = (
        Refusal(
            "serviceType",
            SHARED_SOLVER_SERVICE,
            shown_as="gatewayHTTPRoute.serviceType",
            values=("NodePort",),
        ),
        Refusal("podTemplate", NO_SOLVER_PODS, shown_as="gatewayHTTPRoute.podTemplate"),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(*(refusal.rule() for refusal in REFUSED))
    )


class Http01Solver(CrdModel):
    """Answer HTTP-01 at http://<name>/.well-known/acme-challenge/<token>."""

    ingress: IngressSolver | None = None
    gateway_http_route: GatewayHttpRouteSolver | None = None

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.ingress) != has(self.gatewayHTTPRoute)",
                "http01 needs exactly one of ingress or gatewayHTTPRoute",
            )
        )
    )


class Rfc2136Provider(CrdModel):
    """Publish DNS-01 TXT records by TSIG-signed dynamic update (RFC 2136)."""

    nameserver: str = Field(min_length=1, max_length=261)
    """Authoritative server: host, host:port or [IPv6]:port (port 53 when omitted)."""
    tsig_key_name: str | None = Field(default=None, max_length=253)
    """Name of the TSIG key the server expects."""
    tsig_secret_secret_ref: SecretKeyRef | None = None
    """Secret holding the base64 TSIG secret."""
    tsig_algorithm: str | None = Field(
        default=None,
        max_length=16,
        json_schema_extra=validations(
            cel(
                f"self.upperAscii() in [{', '.join(repr(str(a)) for a in TsigAlgorithm)}]",
                "tsigAlgorithm must be one of "
                f"{', '.join(TsigAlgorithm)} (any case, as cert-manager accepts them)",
            )
        ),
    )
    """TSIG algorithm, any case; HMACSHA256 when empty (cert-manager's empty means HMACMD5)."""
    protocol: Literal["TCP", "UDP"] | None = None
    """Accepted as cert-manager spells it; acmeflow sends every update over TCP (RFC 7766)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.tsigKeyName) || self.tsigKeyName == '' || has(self.tsigSecretSecretRef)",
                "tsigSecretSecretRef is required when tsigKeyName is set: "
                "name the Secret that holds the TSIG key",
                field_path=".tsigSecretSecretRef",
            )
        )
    )


class WebhookProvider(CrdModel):
    """Publish DNS-01 records through a cert-manager DNS webhook (Hetzner, OVH, Gandi, ...).

    acmeflow POSTs cert-manager's ChallengePayload to /apis/<groupName>/v1alpha1/<solverName>
    through the API server, so a webhook installed for cert-manager works unchanged.
    """

    group_name: PlainDnsName
    """API group the webhook serves, as its installation names it (e.g. acme.example.com)."""
    solver_name: str = Field(
        min_length=1,
        max_length=63,
        json_schema_extra=validations(
            cel(
                f"self.matches('^{_LABEL}$')",
                "solverName must be the webhook's solver name, a lowercase word such as "
                "hetzner (it becomes the resource in /apis/<groupName>/v1alpha1/<solverName>)",
            )
        ),
    )
    """The solver's name within the webhook (e.g. hetzner)."""
    config: Passed | None = None
    """Handed to the webhook unchanged; name Secrets here, never put credentials in it."""


class Route53Provider(CrdModel):
    """Publish DNS-01 records in AWS Route53, spelled as cert-manager's route53 solver.

    Credentials: an access key (accessKeyID or accessKeyIDSecretRef, with
    secretAccessKeySecretRef), or, for a ClusterIssuer only (as in cert-manager), the
    worker's own (IRSA, instance profile); role is then assumed through STS.
    """

    region: str | None = Field(default=None, max_length=64)
    """AWS region for signing requests; the worker's AWS_REGION when empty."""
    hosted_zone_id: str | None = Field(default=None, max_length=64)
    """Only this hosted zone; found from the record's zone (by SOA) when empty."""
    access_key_id: str | None = Field(default=None, max_length=128)
    """Access key ID in the clear (not a secret); or accessKeyIDSecretRef."""
    access_key_id_secret_ref: SecretKeyRef | None = None
    """Secret holding the access key ID; or accessKeyID."""
    secret_access_key_secret_ref: SecretKeyRef | None = None
    """Secret holding the secret access key."""
    role: str | None = Field(default=None, max_length=2048)
    """ARN of an IAM role to assume with the credentials above."""
    auth: Unread | None = None
    """Not supported, refused at admission: acmeflow requests no ServiceAccount tokens."""

    REFUSED = (
        Refusal(
            "auth",
            "acmeflow does not request ServiceAccount tokens for AssumeRoleWithWebIdentity; "
            "give the worker's own ServiceAccount the role (IRSA) and use a ClusterIssuer, or "
            "put an access key in a Secret; remove auth",
            shown_as="route53.auth",
            drops_solver=True,
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(self.accessKeyID) && has(self.accessKeyIDSecretRef))",
                "set either accessKeyID or accessKeyIDSecretRef, not both",
                field_path=".accessKeyIDSecretRef",
            ),
            cel(
                "(has(self.accessKeyID) || has(self.accessKeyIDSecretRef))"
                " == has(self.secretAccessKeySecretRef)",
                "an access key ID (accessKeyID or accessKeyIDSecretRef) and "
                "secretAccessKeySecretRef go together; leave all out to use the worker's own "
                "AWS credentials (ClusterIssuer only)",
                field_path=".secretAccessKeySecretRef",
            ),
            *(refusal.rule() for refusal in REFUSED),
        )
    )


LEXICON_SECRET_OPTION = "(token|secret|pass|psw|key|account_info|2fa)"
"""Words in a lexicon option name that mark a credential, which belongs in the Secret."""


class LexiconSecretRef(CrdModel):
    """A whole Secret in the issuer's namespace (for a ClusterIssuer: acmeflow's namespace)."""

    name: SecretName


class LexiconProvider(CrdModel):
    """Publish DNS-01 records through dns-lexicon, which speaks ~100 providers' APIs.

    acmeflow's own field (cert-manager has none). Each key of the credentials Secret is one
    of the provider's lexicon options (auth_token, auth_username, ...); options holds the
    ones that are not secret (a server URL).
    """

    provider: str = Field(
        min_length=1,
        max_length=64,
        json_schema_extra=validations(
            cel(
                "self.matches('^[a-z0-9]+$')",
                "provider must be a dns-lexicon provider name such as powerdns, hetzner or "
                "gandi (lowercase, as `lexicon --help` lists them)",
            )
        ),
    )
    """dns-lexicon's provider name (powerdns, hetzner, gandi, ovh, ...)."""
    zone: PlainDnsName | None = None
    """The zone (lexicon's domain); found by SOA when empty."""
    credentials_secret_ref: LexiconSecretRef | None = None
    """Secret whose every key is a lexicon option of the provider (auth_token, ...)."""
    options: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=32,
        json_schema_extra=validations(
            cel(
                "self.all(k, k.matches('^[a-z][a-z0-9_]*$'))",
                "options keys are lexicon option names with underscores, e.g. pdns_server "
                "for lexicon's --pdns-server",
            ),
            cel(
                f"self.all(k, !k.matches('{LEXICON_SECRET_OPTION}'))",
                "options must not hold credentials (a name with token, secret, pass, key): "
                "put them in the Secret credentialsSecretRef names, one key per option",
            ),
        ),
    )
    """Options that are not secret, e.g. pdns_server: http://pdns.example:8081."""


class CloudflareProvider(CrdModel):
    """Cloudflare, spelled as cert-manager's cloudflare solver; published through dns-lexicon."""

    email: str | None = Field(default=None, max_length=254)
    """Account email; only with apiKeySecretRef (a Global API key)."""
    api_key_secret_ref: SecretKeyRef | None = None
    """Secret holding a Global API key (needs email); prefer an API token."""
    api_token_secret_ref: SecretKeyRef | None = None
    """Secret holding an API token with Zone:Read and DNS:Edit."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.apiKeySecretRef) != has(self.apiTokenSecretRef)",
                "cloudflare needs exactly one of apiTokenSecretRef (an API token, recommended) "
                "or apiKeySecretRef (the Global API key, with email)",
            ),
            cel(
                "!has(self.apiKeySecretRef) || (has(self.email) && self.email != '')",
                "apiKeySecretRef (a Global API key) needs email, the account's address",
                field_path=".email",
            ),
        )
    )


class CloudDnsProvider(CrdModel):
    """Google Cloud DNS, spelled as cert-manager's cloudDNS solver; through dns-lexicon."""

    project: str = Field(min_length=1, max_length=64)
    """The project of the zone; it must be the service account's own project."""
    hosted_zone_name: str | None = Field(default=None, max_length=63)
    """Accepted as written; lexicon picks the public managed zone by DNS name."""
    service_account_secret_ref: SecretKeyRef | None = None
    """Secret holding the service account's JSON key (required in acmeflow)."""

    REQUIRED = (
        Requirement(
            ("serviceAccountSecretRef",),
            "acmeflow reaches Cloud DNS through dns-lexicon, which cannot use the worker's "
            "ambient Google credentials; put the service account's JSON key in a Secret",
            shown_as="dns01.cloudDNS",
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(*(needed.rule() for needed in REQUIRED))
    )


AZURE_OTHER_CLOUDS: Final = ("AzureChinaCloud", "AzureGermanCloud", "AzureUSGovernmentCloud")


class AzureDnsProvider(CrdModel):
    """Azure DNS, spelled as cert-manager's azureDNS solver; published through dns-lexicon.

    Only a service principal (clientID, clientSecretSecretRef, tenantID) in Azure's public
    cloud: lexicon's azure provider has no managed identity and no other clouds.
    """

    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    """Application (client) ID of the service principal."""
    client_secret_secret_ref: SecretKeyRef | None = None
    """Secret holding the service principal's client secret."""
    subscription_id: str = Field(min_length=1, max_length=64)
    """Subscription of the resource group."""
    tenant_id: str | None = Field(default=None, min_length=1, max_length=64)
    """Directory (tenant) ID of the service principal."""
    resource_group_name: str = Field(min_length=1, max_length=90)
    """Resource group holding the DNS zone."""
    hosted_zone_name: PlainDnsName | None = None
    """The DNS zone; found by SOA when empty."""
    environment: (
        Literal["AzurePublicCloud", "AzureChinaCloud", "AzureGermanCloud", "AzureUSGovernmentCloud"]
        | None
    ) = None
    """AzurePublicCloud, or unset; other clouds are refused at admission."""
    managed_identity: Unread | None = None
    """Not supported, refused at admission: only a service principal."""
    zone_type: Literal["AzurePublicZone", "AzurePrivateZone"] | None = None
    """AzurePublicZone, or unset; private zones are refused at admission."""

    REFUSED = (
        Refusal(
            "managedIdentity",
            "acmeflow reaches Azure DNS through dns-lexicon, which signs in only as a service "
            "principal; set clientID, clientSecretSecretRef and tenantID instead, or keep this "
            "solver on cert-manager",
            shown_as="azureDNS.managedIdentity",
            drops_solver=True,
        ),
        Refusal(
            "environment",
            "dns-lexicon's azure provider talks only to Azure's public cloud "
            "(management.azure.com); keep this solver on cert-manager",
            shown_as="azureDNS.environment",
            values=AZURE_OTHER_CLOUDS,
            drops_solver=True,
        ),
        Refusal(
            "zoneType",
            "dns-lexicon's azure provider manages public DNS zones only; keep this solver on "
            "cert-manager",
            shown_as="azureDNS.zoneType",
            values=("AzurePrivateZone",),
            drops_solver=True,
        ),
    )
    REQUIRED = (
        Requirement(
            ("clientID", "clientSecretSecretRef", "tenantID"),
            "acmeflow reaches Azure DNS through dns-lexicon, which signs in only as a service "
            "principal (no managed identity, no ambient credentials)",
            shown_as="dns01.azureDNS",
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(
            *(needed.rule() for needed in REQUIRED),
            *(refusal.rule() for refusal in REFUSED),
        )
    )


class DigitalOceanProvider(CrdModel):
    """DigitalOcean Domains, spelled as cert-manager's digitalocean solver; through dns-lexicon."""

    token_secret_ref: SecretKeyRef
    """Secret holding a personal access token with write scope."""


DNS01_PROVIDERS: Final = (
    "rfc2136",
    "webhook",
    "route53",
    "lexicon",
    "cloudflare",
    "cloudDNS",
    "azureDNS",
    "digitalocean",
)
"""The DNS-01 providers acmeflow has, as the Issuer spells them."""

DNS01_PROVIDERS_REFUSED: Final = ("akamai", "acmeDNS")


class Dns01Solver(CrdModel):
    """Answer DNS-01 with a TXT record at _acme-challenge.<name>, through one provider."""

    rfc2136: Rfc2136Provider | None = None
    webhook: WebhookProvider | None = None
    route53: Route53Provider | None = None
    lexicon: LexiconProvider | None = None
    cloudflare: CloudflareProvider | None = None
    cloud_dns: CloudDnsProvider | None = None
    azure_dns: AzureDnsProvider | None = None
    digitalocean: DigitalOceanProvider | None = None
    cname_strategy: Literal["None", "Follow"] | None = None
    """Follow: write the record where a CNAME at _acme-challenge.<name> points; None or unset:
    at _acme-challenge.<name> itself."""
    akamai: Unread | None = None
    """Not supported, refused at admission: dns-lexicon has no Akamai provider."""
    acme_dns: Unread | None = None
    """Not supported, refused at admission: acmeflow has no acme-dns client."""

    REFUSED = (
        Refusal(
            "akamai",
            "acmeflow reaches the long tail of DNS providers through dns-lexicon, which has no "
            "Akamai Edge DNS provider; use an Akamai cert-manager webhook through "
            "dns01.webhook, or keep this solver on cert-manager",
            shown_as="dns01.akamai",
            drops_solver=True,
        ),
        Refusal(
            "acmeDNS",
            "acmeflow has no acme-dns client; point the CNAME at _acme-challenge.<name> into a "
            "zone acmeflow can write (rfc2136, a webhook, route53, lexicon) with "
            "cnameStrategy: Follow, or keep this solver on cert-manager",
            shown_as="dns01.acmeDNS",
            drops_solver=True,
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "["
                + ", ".join(f"has(self.{p})" for p in DNS01_PROVIDERS + DNS01_PROVIDERS_REFUSED)
                + "].exists_one(p, p)",
                f"dns01 needs exactly one provider: {', '.join(DNS01_PROVIDERS)}",
            ),
            *(refusal.rule() for refusal in REFUSED),
        )
    )


class AcmeSolver(CrdModel):
    """One way to answer challenges, for the identifiers its selector picks."""

    selector: AcmeSolverSelector | None = None
    http01: Http01Solver | None = None
    dns01: Dns01Solver | None = None
    wait_instead_of_self_check: str | None = Field(default=None, max_length=64)
    """Not supported, refused at admission: acmeflow always self-checks what it presented."""

    REFUSED = (
        Refusal(
            "waitInsteadOfSelfCheck",
            "acmeflow always self-checks what it presented before asking the CA; where its own "
            "view of DNS differs, give the worker a resolver (--self-check-resolver); remove "
            "waitInsteadOfSelfCheck",
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.http01) != has(self.dns01)",
                "each solver needs exactly one of http01 or dns01",
            ),
            cel(
                "has(self.dns01) || !has(self.selector) || !has(self.selector.dnsNames)"
                " || !self.selector.dnsNames.exists(n, n.startsWith('*.'))",
                "a solver whose selector lists a wildcard name (*.example.com) must use dns01: "
                "HTTP-01 cannot validate wildcards",
                field_path=".selector.dnsNames",
            ),
            *(refusal.rule() for refusal in REFUSED),
        )
    )


class AcmeIssuerSpec(CrdModel):
    """An ACME CA and the account acmeflow uses with it, spelled as cert-manager's spec.acme."""

    server: str = Field(max_length=2048)
    """URL of the CA's ACME directory."""
    email: str | None = Field(default=None, max_length=254)
    """Contact address registered with the account."""
    private_key_secret_ref: AccountKeySecretRef
    skip_tls_verify: bool = False
    """Trust any TLS certificate of the CA; for development only."""
    ca_bundle: str | None = Field(default=None, max_length=1048576)
    """Base64 of the PEM certificates that sign the CA's TLS certificate."""
    external_account_binding: AcmeExternalAccountBinding | None = None
    preferred_chain: str | None = Field(default=None, max_length=64)
    """Common name of the root of the alternate chain to prefer."""
    profile: str | None = Field(default=None, max_length=64)
    """ACME profile to request, where the CA offers profiles."""
    solvers: list[AcmeSolver] = Field(default_factory=list, max_length=20)
    """Solvers in order of preference; ties keep the earlier one."""
    disable_account_key_generation: bool | None = None
    """false, or unset: acmeflow creates the account key Secret when it is missing."""
    enable_duration_feature: bool | None = None
    """false, or unset: acmeflow never asks the CA for a notAfter date."""

    REFUSED = (
        Refusal(
            "disableAccountKeyGeneration",
            "acmeflow creates the account key Secret when it is missing and uses it when "
            "present; create the Secret before the Issuer and remove disableAccountKeyGeneration",
            values=(True,),
        ),
        Refusal(
            "enableDurationFeature",
            "acmeflow never asks the CA for a notAfter date (Let's Encrypt refuses one), the CA "
            "picks the lifetime; remove enableDurationFeature",
            values=(True,),
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(self.skipTLSVerify) && self.skipTLSVerify && has(self.caBundle))",
                "set either skipTLSVerify or caBundle, not both",
            ),
            cel(
                "isURL(self.server) && url(self.server).getScheme() == 'https'",
                "server must be the https:// URL of an ACME directory, "
                "e.g. https://acme-v02.api.letsencrypt.org/directory",
                field_path=".server",
            ),
            cel(
                f"!has(self.caBundle) || (size(self.caBundle) % 4 == 0"
                f" && self.caBundle.matches('{BASE64_PATTERN}'))",
                "caBundle must be base64-encoded PEM, e.g. the output of `base64 -w0 ca.crt`",
                field_path=".caBundle",
            ),
            cel(
                "!has(self.email) || self.email == '' || self.email.matches('^[^@ ]+@[^@ ]+$')",
                "email must be an address such as admin@example.com",
                field_path=".email",
            ),
            *(refusal.rule() for refusal in REFUSED),
        )
    )


NOT_ACME: Final = (
    "acmeflow issues certificates only from ACME CAs; keep this issuer on cert-manager"
)
"""Why cert-manager's other issuer types (ca, selfSigned, vault, venafi) are refused."""
OTHER_ISSUER_TYPES: Final = ("ca", "selfSigned", "vault", "venafi")


class IssuerSpec(CrdModel):
    """How this issuer obtains certificates: from an ACME CA."""

    acme: AcmeIssuerSpec
    ca: Unread | None = None
    """Not supported, refused at admission: acmeflow issues only through ACME."""
    self_signed: Unread | None = None
    """Not supported, refused at admission: acmeflow issues only through ACME."""
    vault: Unread | None = None
    """Not supported, refused at admission: acmeflow issues only through ACME."""
    venafi: Unread | None = None
    """Not supported, refused at admission: acmeflow issues only through ACME."""

    REFUSED = tuple(Refusal(kind, NOT_ACME) for kind in OTHER_ISSUER_TYPES)
    model_config = ConfigDict(
        json_schema_extra=validations(*(refusal.rule() for refusal in REFUSED))
    )


class AcmeIssuerStatus(CrdModel):
    """The ACME account as last registered."""

    uri: str | None = None
    """Account URL at the CA."""
    last_registered_email: str | None = None
    last_private_key_hash: str | None = None
    """Hash of the account key that was registered, to notice a replaced key."""


class IssuerStatus(CrdModel):
    """Whether the issuer can be used; the Ready condition says why not."""

    conditions: Conditions | None = None
    acme: AcmeIssuerStatus | None = None


# --- Order ---------------------------------------------------------------------------------


class OrderSpec(CrdModel):
    """One ACME order; immutable, so a new request means a new Order."""

    request: str = Field(min_length=1, max_length=65536)
    """PEM certificate signing request; its identifiers must match the fields below."""
    issuer_ref: IssuerRef
    common_name: str | None = Field(default=None, max_length=64)
    """Subject common name; it must also be one of dnsNames or ipAddresses."""
    dns_names: list[DnsName] = Field(
        default_factory=list, max_length=MAX_IDENTIFIERS, json_schema_extra=UNIQUE_ITEMS
    )
    """DNS names to certify; *.example.com for a wildcard."""
    ip_addresses: list[IpAddress] = Field(
        default_factory=list, max_length=MAX_IDENTIFIERS, json_schema_extra=UNIQUE_ITEMS
    )
    """IP addresses to certify."""
    duration: GoDuration | None = None
    """Requested lifetime; the CA may ignore it."""
    profile: str | None = Field(default=None, max_length=64)
    """ACME profile to request."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self == oldSelf", "spec is immutable: create a new Order instead"),
            cel(
                HAS_IDENTIFIER,
                "an Order needs at least one identifier: set commonName, dnsNames or ipAddresses",
            ),
            *NAME_RULES,
            cel(
                "self.request.contains('-----BEGIN CERTIFICATE REQUEST-----')"
                " && self.request.contains('-----END CERTIFICATE REQUEST-----')",
                "request must be a PEM certificate signing request "
                "(-----BEGIN CERTIFICATE REQUEST-----)",
                field_path=".request",
            ),
        )
    )


class AcmeChallengeRef(CrdModel):
    """A challenge the CA offered for an authorization."""

    url: str
    token: str
    type: str
    """ACME challenge type as the CA spells it: http-01, dns-01, tls-alpn-01."""


class AcmeAuthorization(CrdModel):
    """One authorization of the order, as first seen."""

    url: str
    identifier: str | None = None
    """The DNS name (without '*.') or IP address being authorized."""
    wildcard: bool | None = None
    initial_state: AuthorizationStatus | None = None
    """State when the order was created; a valid one was reused and gets no Challenge."""
    challenges: list[AcmeChallengeRef] | None = None


class OrderStatus(CrdModel):
    """Progress of the order, written by acmeflow from the Order workflow."""

    url: str | None = None
    """ACME order URL."""
    finalize_url: str | None = None
    authorizations: list[AcmeAuthorization] | None = None
    certificate: str | None = None
    """Issued PEM certificate chain."""
    state: OrderState | None = None
    """The CA's order status; errored when acmeflow itself gave up."""
    reason: str | None = None
    """Why the order is in this state, in words."""
    failure_time: datetime | None = None
    """When the order failed, for back-off."""


# --- Challenge -----------------------------------------------------------------------------


class ChallengeSpec(CrdModel):
    """One ACME challenge to present; immutable, created by the Order."""

    url: str = Field(min_length=1)
    """ACME challenge URL."""
    authorization_url: str = Field(min_length=1)
    dns_name: DnsNameOrIp
    """Name being validated, without '*.' (see wildcard), or an IP address (HTTP-01 only)."""
    wildcard: bool = False
    """The order asked for *.<dnsName>."""
    type: ChallengeType
    """How the CA validates control of dnsName."""
    token: str = Field(min_length=1, max_length=512)
    """Token the CA chose for this challenge."""
    key: str = Field(min_length=1, max_length=1024)
    """HTTP-01: the key authorization; DNS-01: the TXT record value."""
    solver: AcmeSolver
    """The issuer's solver chosen for this challenge."""
    issuer_ref: IssuerRef

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self == oldSelf", "spec is immutable: create a new Challenge instead"),
            cel(
                "!has(self.wildcard) || !self.wildcard || self.type == 'DNS-01'",
                "a wildcard name can only be validated with type DNS-01",
                field_path=".wildcard",
            ),
            cel(
                "self.type == 'HTTP-01' ? has(self.solver.http01) : has(self.solver.dns01)",
                "solver does not match type: HTTP-01 needs an http01 solver, DNS-01 a dns01 solver",
                field_path=".solver",
            ),
        )
    )


class ChallengeStatus(CrdModel):
    """Progress of the challenge, written by acmeflow."""

    processing: bool | None = None
    """Still being worked on."""
    presented: bool | None = None
    """The record or HTTP response is in place."""
    reason: str | None = None
    state: ChallengeState | None = None
    """The CA's challenge status as acmeflow last saw it."""


# --- Certificate ---------------------------------------------------------------------------


class PrivateKeySpec(CrdModel):
    """The certificate's private key."""

    algorithm: Literal["RSA", "ECDSA", "Ed25519"] = "RSA"
    """Key type; a CA that refuses the type (Let's Encrypt certifies no Ed25519 key) says so
    in the Certificate's Ready condition."""
    size: int | None = None
    """RSA: 2048 (default), 3072 or 4096 bits; ECDSA: 256 (default), 384 or 521; Ed25519: unset."""
    encoding: Literal["PKCS1", "PKCS8"] = "PKCS1"
    """How tls.key is written: PKCS#1 (RSA) or SEC 1 (ECDSA) by default, or PKCS#8; an
    Ed25519 key is always PKCS#8."""
    rotation_policy: Literal["Never", "Always"] = "Always"
    """Always: a new key on each issuance; Never: reuse the key in the Secret."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.size)"
                " || (self.algorithm == 'RSA' && self.size in [2048, 3072, 4096])"
                " || (self.algorithm == 'ECDSA' && self.size in [256, 384, 521])",
                "size must be 2048, 3072 or 4096 for RSA, 256, 384 or 521 for ECDSA, "
                "and unset for Ed25519",
                field_path=".size",
            ),
        )
    )


class SecretTemplate(CrdModel):
    """Labels and annotations copied onto the certificate's Secret."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class AdditionalOutputFormat(CrdModel):
    """One more form of the key pair written into the Secret."""

    type: Literal["CombinedPEM", "DER"]


ONLY_DNS_AND_IP: Final = (
    "ACME CAs certify only DNS names and IP addresses (RFC 8555, RFC 8738), so no CA would "
    "write this name into the certificate"
)
ONLY_LEAVES: Final = "ACME CAs issue only leaf certificates, never a CA certificate"
ACME_USAGES: Final = ("digital signature", "key encipherment", "server auth")
"""The key usages a Certificate may list: cert-manager's defaults and what ACME CAs issue."""


class CertificateSpec(CrdModel):
    """A certificate to keep issued and renewed in a Secret."""

    secret_name: SecretName
    """Secret (type kubernetes.io/tls) that receives tls.crt and tls.key."""
    common_name: str | None = Field(default=None, max_length=64)
    """Subject common name; it must also be one of dnsNames or ipAddresses."""
    dns_names: list[DnsName] = Field(
        default_factory=list, max_length=MAX_IDENTIFIERS, json_schema_extra=UNIQUE_ITEMS
    )
    """DNS names to certify; *.example.com for a wildcard."""
    ip_addresses: list[IpAddress] = Field(
        default_factory=list, max_length=MAX_IDENTIFIERS, json_schema_extra=UNIQUE_ITEMS
    )
    """IP addresses to certify."""
    duration: GoDuration = "2160h"
    """Requested lifetime (90 days by default)."""
    renew_before: GoDuration | None = None
    """Renew this long before expiry; a third of the lifetime when empty."""
    renew_before_percentage: int | None = Field(default=None, ge=1, le=99)
    """Renew when this share of the issued lifetime is left (cert-manager's field); instead
    of renewBefore."""
    issuer_ref: IssuerRef
    private_key: PrivateKeySpec | None = None
    secret_template: SecretTemplate | None = None
    revision_history_limit: int | None = Field(default=None, ge=1)
    """Orders kept per Certificate (the newest); all are kept when unset."""
    additional_output_formats: list[AdditionalOutputFormat] = Field(
        default_factory=list, max_length=2
    )
    """More keys in the Secret: ``tls-combined.pem`` (CombinedPEM) and ``key.der`` (DER)."""
    profile: str | None = Field(default=None, max_length=64)
    """ACME profile to request for this Certificate, in place of its issuer's."""
    email_addresses: list[str] | None = Field(default=None, max_length=MAX_IDENTIFIERS)
    """Not supported, refused at admission: ACME CAs certify DNS names and IP addresses only."""
    uris: list[str] | None = Field(default=None, max_length=MAX_IDENTIFIERS)
    """Not supported, refused at admission: ACME CAs certify DNS names and IP addresses only."""
    other_names: list[dict[str, str]] | None = Field(default=None, max_length=MAX_IDENTIFIERS)
    """Not supported, refused at admission: ACME CAs certify DNS names and IP addresses only."""
    subject: Unread | None = None
    """Not supported, refused at admission: ACME CAs put no subject attributes but the CN."""
    literal_subject: str | None = Field(default=None, max_length=1024)
    """Not supported, refused at admission: set commonName instead."""
    is_ca: bool | None = None
    """false, or unset: ACME CAs issue leaf certificates only."""
    name_constraints: Unread | None = None
    """Not supported, refused at admission: name constraints belong to CA certificates."""
    keystores: Unread | None = None
    """Not supported, refused at admission: see additionalOutputFormats."""
    usages: list[str] | None = Field(default=None, max_length=24)
    """Only digital signature, key encipherment and server auth: the CA decides the usages."""
    signature_algorithm: str | None = Field(default=None, max_length=32)
    """Accepted and ignored: the CSR is signed with SHA-256 (Ed25519 keys sign themselves),
    and the CA signs the certificate with an algorithm of its own."""
    encode_usages_in_request: bool | None = None
    """Accepted and ignored: acmeflow never puts usages in the CSR, the CA decides them."""

    REFUSED = (
        Refusal("emailAddresses", ONLY_DNS_AND_IP + "; remove emailAddresses"),
        Refusal("uris", ONLY_DNS_AND_IP + "; remove uris (a SPIFFE ID needs a CA of its own)"),
        Refusal("otherNames", ONLY_DNS_AND_IP + "; remove otherNames"),
        Refusal(
            "subject",
            "ACME CAs issue domain-validated certificates and write no organization, country "
            "or other subject attribute into them; remove subject (commonName is supported)",
        ),
        Refusal(
            "literalSubject",
            "ACME CAs write no subject attribute but the common name; remove literalSubject "
            "and set commonName (one of dnsNames or ipAddresses) instead",
        ),
        Refusal("isCA", ONLY_LEAVES + "; remove isCA", values=(True,)),
        Refusal(
            "nameConstraints",
            ONLY_LEAVES + ", and only a CA certificate has name constraints; remove "
            "nameConstraints",
        ),
        Refusal(
            "keystores",
            "acmeflow writes no JKS or PKCS#12 keystore; remove keystores and read the key "
            "pair as PEM, or add additionalOutputFormats (CombinedPEM, DER)",
        ),
    )
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                HAS_IDENTIFIER,
                "a Certificate needs at least one identifier: "
                "set commonName, dnsNames or ipAddresses",
            ),
            *NAME_RULES,
            cel(
                "!has(self.commonName) || self.commonName == ''"
                " || (has(self.dnsNames) && self.commonName in self.dnsNames)"
                " || (has(self.ipAddresses) && self.commonName in self.ipAddresses)",
                "commonName must also be listed in dnsNames or ipAddresses: an ACME CA "
                "certifies only the order's names and the common name is one of them (as in "
                "cert-manager); add it to dnsNames (or ipAddresses)",
                field_path=".commonName",
            ),
            *(refusal.rule() for refusal in REFUSED),
            cel(
                "!has(self.usages) || self.usages.all(u, u in "
                f"[{', '.join(repr(u) for u in ACME_USAGES)}])",
                f"usages may list only {', '.join(ACME_USAGES)}: an ACME CA decides the "
                "usages (Let's Encrypt and Pebble issue digital signature and server auth), "
                "so others would never appear in the certificate; remove the others, or "
                "remove usages",
                field_path=".usages",
            ),
            cel(
                "!has(self.renewBefore) || !has(self.duration)"
                f" || !self.renewBefore.matches('{GO_DURATION_PATTERN}')"
                f" || !self.duration.matches('{GO_DURATION_PATTERN}')"
                " || duration(self.renewBefore) < duration(self.duration)",
                "renewBefore must be shorter than duration",
                field_path=".renewBefore",
            ),
            cel(
                "!has(self.renewBefore) || !has(self.renewBeforePercentage)",
                "set renewBefore or renewBeforePercentage, not both",
                field_path=".renewBeforePercentage",
            ),
        )
    )


class CertificateStatus(CrdModel):
    """Issuance state of the certificate, written by acmeflow."""

    conditions: Conditions | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    renewal_time: datetime | None = None
    """When acmeflow will renew."""
    renewal_rule: str | None = None
    """What set renewalTime: the CA's renewal window (ARI), renewBefore, or 2/3 of the
    lifetime, with the jitter applied."""
    revision: int | None = None
    """Counts issuances; each new Order gets the next revision."""
    last_failure_time: datetime | None = None
    failed_issuance_attempts: int | None = None
    """Consecutive failures, for back-off (1h, 2h, 4h ... 32h)."""
    next_private_key_secret_name: str | None = None
    """Secret holding the key for the issuance in progress."""


# --- Whole resources -----------------------------------------------------------------------


class OwnerReference(CrdModel):
    """Ties an object to its owner, so deleting the owner deletes it."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(CrdModel):
    """The part of metav1.ObjectMeta acmeflow uses."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None


class KubeResource(CrdModel):
    """A whole acmeflow object as the API server returns it."""

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    NAMESPACED: ClassVar[bool] = True

    api_version: str = API_VERSION
    metadata: ObjectMeta


class Order(KubeResource):
    """An ACME order for one certificate, carried out by a Temporal workflow."""

    KIND: ClassVar[str] = "Order"
    PLURAL: ClassVar[str] = "orders"

    kind: Literal["Order"] = "Order"
    spec: OrderSpec
    status: OrderStatus | None = None


class Challenge(KubeResource):
    """One ACME challenge of an Order, presented by a solver and cleaned up afterwards."""

    KIND: ClassVar[str] = "Challenge"
    PLURAL: ClassVar[str] = "challenges"

    kind: Literal["Challenge"] = "Challenge"
    spec: ChallengeSpec
    status: ChallengeStatus | None = None


class Issuer(KubeResource):
    """An ACME issuer usable by Certificates in its own namespace."""

    KIND: ClassVar[str] = "Issuer"
    PLURAL: ClassVar[str] = "issuers"

    kind: Literal["Issuer"] = "Issuer"
    spec: IssuerSpec
    status: IssuerStatus | None = None


class ClusterIssuer(KubeResource):
    """An ACME issuer usable by Certificates in every namespace."""

    KIND: ClassVar[str] = "ClusterIssuer"
    PLURAL: ClassVar[str] = "clusterissuers"
    NAMESPACED: ClassVar[bool] = False

    kind: Literal["ClusterIssuer"] = "ClusterIssuer"
    spec: IssuerSpec
    status: IssuerStatus | None = None


class Certificate(KubeResource):
    """A certificate kept valid in a Secret: issued, then renewed before it expires."""

    KIND: ClassVar[str] = "Certificate"
    PLURAL: ClassVar[str] = "certificates"

    kind: Literal["Certificate"] = "Certificate"
    spec: CertificateSpec
    status: CertificateStatus | None = None


RESOURCES: tuple[type[KubeResource], ...] = (Order, Challenge, Issuer, ClusterIssuer, Certificate)
