"""Challenge resources as the Order workflow describes them: the object, and its status.

The solver the workflow chose travels as the contract's ``SolverConfig``; here it becomes
the issuer's solver entry again (``issuer_translation`` reads the other way), so the
Challenge shows the solver as the user wrote it.
"""

from __future__ import annotations

from acmeflow.contracts.issuer import Http01Ingress, Rfc2136, SolverConfig, SolverSelector
from acmeflow.contracts.progress import ChallengeProgress
from acmeflow.contracts.states import ChallengeState, ChallengeType
from acmeflow.crds import models as crd

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


def _dns01(dns01: Rfc2136) -> crd.Dns01Solver:
    signed = bool(dns01.tsig_key_name and dns01.tsig_secret is not None)
    algorithm = dns01.tsig_algorithm.upper().replace("-", "")
    return crd.Dns01Solver(
        rfc2136=crd.Rfc2136Provider(
            nameserver=dns01.nameserver,
            tsig_key_name=dns01.tsig_key_name if signed else None,
            tsig_secret_secret_ref=(
                crd.SecretKeyRef(name=dns01.tsig_secret.name, key=dns01.tsig_secret.key)
                if signed and dns01.tsig_secret is not None
                else None
            ),
            tsig_algorithm=crd.TsigAlgorithm(algorithm) if algorithm else None,
        )
    )


def solver_resource(solver: SolverConfig) -> crd.AcmeSolver:
    """The issuer's solver entry, in the CRD's shape, copied into the Challenge."""
    return crd.AcmeSolver(
        selector=_selector(solver.selector) if solver.selector is not None else None,
        http01=_http01(solver.http01) if solver.http01 is not None else None,
        dns01=_dns01(solver.dns01) if solver.dns01 is not None else None,
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
