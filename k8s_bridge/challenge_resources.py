"""Challenge resources as the Order workflow describes them: the object, and its status.

The solver the workflow chose travels as the contract's ``SolverConfig``; here it becomes
the issuer's solver entry again (``issuer_translation`` reads the other way), so the
Challenge shows the solver as the user wrote it.
"""

from __future__ import annotations

import json
from typing import Any

from acmeflow.contracts.issuer import (
    Dns01Webhook,
    Http01Ingress,
    Rfc2136,
    Route53,
    SolverConfig,
    SolverSelector,
)
from acmeflow.contracts.progress import ChallengeProgress
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import ChallengeState, ChallengeType
from acmeflow.crds import models as crd
from acmeflow.k8s_bridge.lexicon_mappings import dns01_block

ORDER_LABEL = "acmeflow.io/order"


def _selector(selector: SolverSelector) -> crd.AcmeSolverSelector:
    return crd.AcmeSolverSelector(
        dns_names=list(selector.dns_names),
        dns_zones=list(selector.dns_zones),
        match_labels=dict(selector.match_labels),
    )


def _http01(http01: Http01Ingress) -> crd.Http01Solver:
    if http01.gateway_parent_refs:
        return crd.Http01Solver(
            gateway_http_route=crd.GatewayHttpRouteSolver(
                parent_refs=[crd.ParentRef.model_validate(r) for r in http01.gateway_parent_refs],
                labels=dict(http01.route_labels),
            )
        )
    return crd.Http01Solver(
        ingress=crd.IngressSolver(ingress_class_name=http01.ingress_class_name or None)
    )


def _secret_key_ref(ref: SecretRef | None) -> crd.SecretKeyRef | None:
    return crd.SecretKeyRef(name=ref.name, key=ref.key) if ref is not None else None


def _rfc2136(dns01: Rfc2136) -> crd.Rfc2136Provider:
    signed = bool(dns01.tsig_key_name and dns01.tsig_secret is not None)
    algorithm = dns01.tsig_algorithm.upper().replace("-", "")
    return crd.Rfc2136Provider(
        nameserver=dns01.nameserver,
        tsig_key_name=dns01.tsig_key_name if signed else None,
        tsig_secret_secret_ref=_secret_key_ref(dns01.tsig_secret) if signed else None,
        tsig_algorithm=crd.TsigAlgorithm(algorithm) if algorithm else None,
    )


def _webhook(webhook: Dns01Webhook) -> crd.WebhookProvider:
    return crd.WebhookProvider(
        group_name=webhook.group_name,
        solver_name=webhook.solver_name,
        config=json.loads(webhook.config_json) if webhook.config_json else None,
    )


def _route53(route53: Route53) -> crd.Route53Provider:
    return crd.Route53Provider(
        region=route53.region or None,
        hosted_zone_id=route53.hosted_zone_id or None,
        access_key_id=route53.access_key_id or None,
        access_key_id_secret_ref=_secret_key_ref(route53.access_key_id_secret),
        secret_access_key_secret_ref=_secret_key_ref(route53.secret_access_key),
        role=route53.role or None,
    )


def _dns01(solver: SolverConfig) -> crd.Dns01Solver | None:
    """The provider block the issuer named, and its CNAME strategy; None for HTTP-01."""
    block: dict[str, Any] = {}
    if solver.dns01 is not None:
        block["rfc2136"] = _rfc2136(solver.dns01).to_api()
    elif solver.webhook is not None:
        block["webhook"] = _webhook(solver.webhook).to_api()
    elif solver.route53 is not None:
        block["route53"] = _route53(solver.route53).to_api()
    elif solver.lexicon is not None:
        block.update(dns01_block(solver.lexicon))
    else:
        return None
    if solver.cname_follow:
        block["cnameStrategy"] = "Follow"
    return crd.Dns01Solver.model_validate(block)


def solver_resource(solver: SolverConfig) -> crd.AcmeSolver:
    """The issuer's solver entry, in the CRD's shape, copied into the Challenge."""
    return crd.AcmeSolver(
        selector=_selector(solver.selector) if solver.selector is not None else None,
        http01=_http01(solver.http01) if solver.http01 is not None else None,
        dns01=_dns01(solver) if solver.http01 is None else None,
    )


def challenge_resource(challenge: ChallengeProgress, *, order: crd.Order) -> crd.Challenge:
    """The Challenge for one of ``order``'s challenges, owned (and garbage-collected) by it."""
    spec = challenge.spec
    owner = crd.OwnerReference(
        api_version=crd.API_VERSION,
        kind=crd.Order.KIND,
        name=order.metadata.name,
        uid=order.metadata.uid or "",
        controller=True,
        block_owner_deletion=True,
    )
    return crd.Challenge(
        metadata=crd.ObjectMeta(
            name=spec.name,
            namespace=spec.namespace,
            labels={ORDER_LABEL: order.metadata.name},
            owner_references=[owner],
        ),
        spec=crd.ChallengeSpec(
            url=spec.url,
            authorization_url=spec.authorization_url,
            dns_name=spec.dns_name,
            wildcard=spec.wildcard,
            type=ChallengeType(spec.type),
            token=spec.token,
            key=spec.key,
            solver=solver_resource(spec.solver),
            issuer_ref=order.spec.issuer_ref,
        ),
    )


def challenge_status(challenge: ChallengeProgress) -> crd.ChallengeStatus:
    return crd.ChallengeStatus(
        processing=challenge.processing,
        presented=challenge.presented,
        reason=challenge.reason,
        state=ChallengeState(challenge.state),
    )
