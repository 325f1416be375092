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
from urllib.parse import urlsplit

from cryptography import x509

from acmeflow.contracts.issuer import (
    ExternalAccountBinding,
    Http01Ingress,
    IssuerConfig,
    Rfc2136,
    SolverConfig,
    SolverSelector,
)
from acmeflow.contracts.secrets import SecretRef
from acmeflow.crds.models import (
    AcmeSolver,
    ClusterIssuer,
    Dns01Solver,
    Http01Solver,
    Issuer,
    IssuerSpec,
    Rfc2136Provider,
)
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
        )
    if not issuer.metadata.namespace:
        raise InvalidIssuerError(f"Issuer {name} has no namespace")
    return issuer_config_from_spec(
        issuer.spec,
        name=f"Issuer {issuer.metadata.namespace}/{name}",
        secret_namespace=issuer.metadata.namespace,
    )


def issuer_config_from_spec(spec: IssuerSpec, *, name: str, secret_namespace: str) -> IssuerConfig:
    """Translate ``spec``; ``name`` prefixes every error (e.g. ``Issuer team-a/letsencrypt``)."""
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
            solver_config(solver, secret_namespace=secret_namespace, where=f"{name}: solvers[{i}]")
            for i, solver in enumerate(acme.solvers)
        ],
    )


def solver_config(
    solver: AcmeSolver, *, secret_namespace: str, where: str = "solver"
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
    return SolverConfig(
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
        dns01=(
            _dns01(solver.dns01, secret_namespace, where=f"{where}.dns01") if solver.dns01 else None
        ),
    )


def _dns01(dns01: Dns01Solver, secret_namespace: str, *, where: str) -> Rfc2136:
    if dns01.rfc2136 is None:
        raise InvalidIssuerError(f"{where}: rfc2136 is the only DNS-01 provider acmeflow has")
    return _rfc2136(dns01.rfc2136, secret_namespace, where=f"{where}.rfc2136")


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
