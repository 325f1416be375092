"""Issuer and ClusterIssuer resources to the workflow-side ``IssuerConfig``.

Secrets stay references: a Secret named by an Issuer lives in the Issuer's namespace, one
named by a ClusterIssuer in the *cluster resource namespace* (``acmeflow`` unless
configured). Admission (CEL) already rejects most mistakes; what it cannot see, such as
a CA bundle that is not PEM or a nameserver port out of range, or what an issuer stored
before admission refused it still says (``ingress.name``, ``serviceType: NodePort``),
raises ``InvalidIssuerError`` with a message meant for the Issuer's Ready condition.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from cryptography import x509

from acmeflow.contracts.issuer import (
    Dns01Webhook,
    ExternalAccountBinding,
    Http01Ingress,
    IssuerConfig,
    Rfc2136,
    Route53,
    SolverConfig,
    SolverSelector,
)
from acmeflow.contracts.secrets import SecretRef
from acmeflow.crds.models import (
    DNS01_PROVIDERS,
    DNS01_PROVIDERS_REFUSED,
    AcmeSolver,
    ClusterIssuer,
    CrdModel,
    Dns01Solver,
    Http01Solver,
    Issuer,
    IssuerSpec,
    Rfc2136Provider,
    Route53Provider,
    SecretKeyRef,
    WebhookProvider,
    wire_name,
)
from acmeflow.k8s_bridge.lexicon_mappings import UnmappableBlock, lexicon_contract
from acmeflow.plumbing.addresses import split_host_port

DEFAULT_CLUSTER_RESOURCE_NAMESPACE = "acmeflow"
DEFAULT_TSIG_ALGORITHM = "HMACSHA256"
DNS_PORT = 53


class InvalidIssuerError(ValueError):
    """The issuer's spec cannot be used; the message says what to change."""


def secret_namespace(
    *,
    issuer_kind: str,
    issuer_namespace: str,
    cluster_resource_namespace: str = DEFAULT_CLUSTER_RESOURCE_NAMESPACE,
) -> str:
    """Where the Secrets an issuer names live."""
    return cluster_resource_namespace if issuer_kind == ClusterIssuer.KIND else issuer_namespace


def issuer_config(
    issuer: Issuer | ClusterIssuer,
    *,
    cluster_resource_namespace: str = DEFAULT_CLUSTER_RESOURCE_NAMESPACE,
) -> IssuerConfig:
    """The ``IssuerConfig`` an Order workflow needs for this Issuer or ClusterIssuer."""
    name = issuer.metadata.name
    if isinstance(issuer, ClusterIssuer):
        return issuer_config_from_spec(
            issuer.spec,
            name=f"ClusterIssuer {name}",
            secret_namespace=cluster_resource_namespace,
            ambient_credentials=True,
        )
    if not issuer.metadata.namespace:
        raise InvalidIssuerError(f"Issuer {name} has no namespace")
    return issuer_config_from_spec(
        issuer.spec,
        name=f"Issuer {issuer.metadata.namespace}/{name}",
        secret_namespace=issuer.metadata.namespace,
    )


def issuer_config_from_spec(
    spec: IssuerSpec, *, name: str, secret_namespace: str, ambient_credentials: bool = False
) -> IssuerConfig:
    """Translate ``spec``; ``name`` prefixes every error (e.g. ``Issuer team-a/letsencrypt``).

    ``ambient_credentials``: DNS providers may use the worker's own cloud credentials (IRSA,
    an instance profile) where the issuer names none; cert-manager's defaults allow that for
    ClusterIssuers only (``--cluster-issuer-ambient-credentials=true``,
    ``--issuer-ambient-credentials=false``), and so does acmeflow.
    """
    acme = spec.acme
    if urlsplit(acme.server).scheme != "https" or not urlsplit(acme.server).netloc:
        raise InvalidIssuerError(f"{name}: server {acme.server!r} is not an https:// URL")
    if acme.skip_tls_verify and acme.ca_bundle:
        raise InvalidIssuerError(f"{name}: set either skipTLSVerify or caBundle, not both")
    eab = acme.external_account_binding
    return IssuerConfig(
        name=name,
        server=acme.server,
        account_key=SecretRef(
            namespace=secret_namespace,
            name=acme.private_key_secret_ref.name,
            key=acme.private_key_secret_ref.key,
        ),
        email=acme.email or "",
        skip_tls_verify=acme.skip_tls_verify,
        ca_bundle_pem=_ca_bundle_pem(acme.ca_bundle, where=name) if acme.ca_bundle else "",
        external_account_binding=(
            ExternalAccountBinding(
                key_id=eab.key_id,
                key_secret=SecretRef(
                    namespace=secret_namespace,
                    name=eab.key_secret_ref.name,
                    key=eab.key_secret_ref.key,
                ),
                key_algorithm=eab.key_algorithm,
            )
            if eab is not None
            else None
        ),
        preferred_chain=acme.preferred_chain or "",
        profile=acme.profile or "",
        solvers=[
            solver_config(
                solver,
                secret_namespace=secret_namespace,
                ambient_credentials=ambient_credentials,
                where=f"{name}: solvers[{i}]",
            )
            for i, solver in enumerate(acme.solvers)
        ],
    )


def solver_config(
    solver: AcmeSolver,
    *,
    secret_namespace: str,
    ambient_credentials: bool = False,
    where: str = "solver",
) -> SolverConfig:
    """One solver entry (of an issuer, or copied into a Challenge) as the activities see it."""
    if (solver.http01 is None) == (solver.dns01 is None):
        raise InvalidIssuerError(f"{where}: a solver needs exactly one of http01 or dns01")
    selector = solver.selector
    if selector is not None and solver.http01 is not None:
        wildcards = [n for n in selector.dns_names if n.startswith("*.")]
        if wildcards:
            raise InvalidIssuerError(
                f"{where}: selector lists wildcard {wildcards[0]}, which only dns01 can validate"
            )
    config = SolverConfig(
        selector=(
            SolverSelector(
                dns_names=list(selector.dns_names),
                dns_zones=list(selector.dns_zones),
                match_labels=dict(selector.match_labels),
            )
            if selector is not None
            else None
        ),
        http01=_http01(solver.http01, where=f"{where}.http01") if solver.http01 else None,
    )
    if solver.dns01 is None:
        return config
    scope = _SecretScope(secret_namespace, ambient_credentials)
    return _with_dns01(config, solver.dns01, scope, where=f"{where}.dns01")


@dataclass(frozen=True)
class _SecretScope:
    """Where a solver's Secrets live, and whether it may fall back to the worker's own."""

    namespace: str
    ambient: bool

    def ref(self, selector: SecretKeyRef | None) -> SecretRef | None:
        if selector is None:
            return None
        return SecretRef(namespace=self.namespace, name=selector.name, key=selector.key)


def _with_dns01(
    config: SolverConfig, dns01: Dns01Solver, scope: _SecretScope, *, where: str
) -> SolverConfig:
    """``config`` with the one DNS-01 provider of ``dns01`` and its CNAME strategy."""
    written = dns01.to_api()
    providers = [name for name in (*DNS01_PROVIDERS, *DNS01_PROVIDERS_REFUSED) if name in written]
    if len(providers) != 1:
        raise InvalidIssuerError(
            f"{where}: set exactly one provider ({', '.join(DNS01_PROVIDERS)}), "
            f"not {' and '.join(providers) or 'none'}"
        )
    _check_admissible(dns01, where=where)
    block = getattr(dns01, _field_name(Dns01Solver, providers[0]))
    _check_admissible(block, where=f"{where}.{providers[0]}")
    config = replace(config, cname_follow=dns01.cname_strategy == "Follow")
    if dns01.rfc2136 is not None:
        return replace(
            config, dns01=_rfc2136(dns01.rfc2136, scope.namespace, where=f"{where}.rfc2136")
        )
    if dns01.webhook is not None:
        return replace(config, webhook=_webhook(dns01.webhook, scope))
    if dns01.route53 is not None:
        return replace(config, route53=_route53(dns01.route53, scope, where=f"{where}.route53"))
    try:
        lexicon = lexicon_contract(dns01, secret_namespace=scope.namespace)
    except UnmappableBlock as unmappable:
        raise InvalidIssuerError(f"{where}.{providers[0]}: {unmappable}") from None
    return replace(config, lexicon=lexicon)


def _field_name(model: type[CrdModel], wire: str) -> str:
    return next(name for name in model.model_fields if wire_name(name) == wire)


def _check_admissible(part: CrdModel, *, where: str) -> None:
    """What admission refuses, for a part stored before the CRD refused it."""
    written = part.to_api()
    for refusal in part.REFUSED:
        if refusal.field in written and refusal.refuses(written[refusal.field]):
            raise InvalidIssuerError(f"{where}: {refusal.message}")
    for needed in part.REQUIRED:
        if needed.missing(written):
            raise InvalidIssuerError(f"{where}: {needed.message}")


def _webhook(block: WebhookProvider, scope: _SecretScope) -> Dns01Webhook:
    return Dns01Webhook(
        group_name=block.group_name,
        solver_name=block.solver_name,
        config_json=json.dumps(block.config) if block.config is not None else "",
        resource_namespace=scope.namespace,
        allow_ambient_credentials=scope.ambient,
    )


def _route53(block: Route53Provider, scope: _SecretScope, *, where: str) -> Route53:
    if block.access_key_id and block.access_key_id_secret_ref is not None:
        raise InvalidIssuerError(f"{where}: set either accessKeyID or accessKeyIDSecretRef")
    has_key_id = bool(block.access_key_id) or block.access_key_id_secret_ref is not None
    if has_key_id != (block.secret_access_key_secret_ref is not None):
        raise InvalidIssuerError(
            f"{where}: an access key ID (accessKeyID or accessKeyIDSecretRef) and "
            "secretAccessKeySecretRef go together"
        )
    if not has_key_id and not scope.ambient:
        raise InvalidIssuerError(
            f"{where}: no credentials named, and only a ClusterIssuer may use the worker's own "
            "AWS credentials (as in cert-manager): set accessKeyID (or accessKeyIDSecretRef) "
            "and secretAccessKeySecretRef, or use a ClusterIssuer"
        )
    return Route53(
        region=block.region or "",
        hosted_zone_id=block.hosted_zone_id or "",
        access_key_id=block.access_key_id or "",
        access_key_id_secret=scope.ref(block.access_key_id_secret_ref),
        secret_access_key=scope.ref(block.secret_access_key_secret_ref),
        role=block.role or "",
        ambient=scope.ambient,
    )


def _http01(http01: Http01Solver, *, where: str) -> Http01Ingress:
    ingress, route = http01.ingress, http01.gateway_http_route
    if (ingress is None) == (route is None):
        raise InvalidIssuerError(f"{where}: set exactly one of ingress or gatewayHTTPRoute")
    if route is not None:
        return Http01Ingress(
            gateway_parent_refs=[
                # The contract's refs are strings; ParentRef reads a port back as a number.
                {key: str(value) for key, value in ref.to_api().items() if value}
                for ref in route.parent_refs
            ],
            route_labels=dict(route.labels),
        )
    assert ingress is not None
    if ingress.name:
        raise InvalidIssuerError(
            f"{where}.ingress: editing an existing Ingress (name: {ingress.name}) is not "
            "supported; remove name and acmeflow creates an Ingress per challenge"
        )
    if ingress.service_type == "NodePort":
        raise InvalidIssuerError(
            f"{where}.ingress: serviceType NodePort is not supported; the HTTP-01 responder "
            "is acmeflow's shared ClusterIP Service, so remove serviceType"
        )
    if ingress.class_ and ingress.ingress_class_name:
        raise InvalidIssuerError(f"{where}.ingress: set either class or ingressClassName")
    # The legacy annotation and the IngressClass name select the same controller in
    # practice (ingress-nginx, Traefik), so `class` is carried as the class name.
    return Http01Ingress(ingress_class_name=ingress.ingress_class_name or ingress.class_ or "")


def _rfc2136(provider: Rfc2136Provider, secret_namespace: str, *, where: str) -> Rfc2136:
    _check_nameserver(provider.nameserver, where=where)
    has_key_name = bool(provider.tsig_key_name)
    has_secret = provider.tsig_secret_secret_ref is not None
    if has_key_name != has_secret:
        missing = "tsigSecretSecretRef" if has_key_name else "tsigKeyName"
        raise InvalidIssuerError(
            f"{where}: tsigKeyName and tsigSecretSecretRef go together; set {missing} too"
        )
    ref = provider.tsig_secret_secret_ref
    return Rfc2136(
        nameserver=provider.nameserver,
        tsig_key_name=provider.tsig_key_name or "",
        tsig_secret=(
            SecretRef(namespace=secret_namespace, name=ref.name, key=ref.key)
            if ref is not None
            else None
        ),
        tsig_algorithm=(provider.tsig_algorithm or DEFAULT_TSIG_ALGORITHM).upper(),
    )


def _check_nameserver(nameserver: str, *, where: str) -> None:
    problem = f"{where}: nameserver {nameserver!r} must be host, host:port or [IPv6]:port"
    try:
        host, port = split_host_port(nameserver.strip(), DNS_PORT)
    except ValueError:
        raise InvalidIssuerError(problem) from None
    if not host or not 0 < port < 65536 or any(c in host for c in "/ "):
        raise InvalidIssuerError(problem)


def _ca_bundle_pem(ca_bundle: str, *, where: str) -> str:
    """Base64 of PEM certificates to PEM text, refusing anything that is not certificates."""
    try:
        pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidIssuerError(
            f"{where}: caBundle must be base64 of PEM certificates (base64 -w0 ca.crt)"
        ) from None
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise InvalidIssuerError(
            f"{where}: caBundle decodes to no PEM certificate; expected "
            "-----BEGIN CERTIFICATE----- blocks"
        )
    return pem
