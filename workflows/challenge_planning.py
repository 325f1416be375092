"""Which challenges an order solves: a pure function of the CA's authorizations and the issuer.

Each authorization that is still ``pending`` gets one challenge, of the type its solver
solves; one the CA already holds ``valid`` (reused) gets none. Challenges are named
``<order>-<n>`` with ``n`` counted in (identifier, wildcard) order, whatever order the CA
listed the authorizations in, so the names are stable. An authorization in any other
state ends the order ``invalid``; one no solver can validate ends it ``errored``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from acmeflow.contracts.acme import AuthorizationState
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import SolverConfig
from acmeflow.contracts.progress import AuthorizationProgress, ChallengeRef
from acmeflow.contracts.states import AuthorizationStatus, OrderState
from acmeflow.workflows.solver_selection import select_solver


@dataclass(frozen=True)
class OrderToPlan:
    """What planning needs to know about the order besides the CA's authorizations."""

    order_name: str
    namespace: str
    issuer_name: str
    solvers: Sequence[SolverConfig]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanFailure:
    """Why the order cannot be solved, and the final state that says so."""

    state: OrderState
    reason: str


@dataclass(frozen=True)
class ChallengePlan:
    authorizations: list[AuthorizationProgress]
    """Every authorization, as the Order's status lists them."""
    challenges: list[ChallengeSpec]
    """The challenges to solve; none when the plan failed."""
    failure: PlanFailure | None = None


def plan_challenges(
    authorizations: Sequence[AuthorizationState], order: OrderToPlan
) -> ChallengePlan:
    ordered = sorted(authorizations, key=lambda a: (a.dns_name, a.wildcard))
    listed = [_listed(authz) for authz in ordered]
    challenges: list[ChallengeSpec] = []
    for authz in ordered:
        if authz.status == AuthorizationStatus.VALID:
            continue
        planned = _challenge(authz, order, index=len(challenges))
        if isinstance(planned, PlanFailure):
            return ChallengePlan(authorizations=listed, challenges=[], failure=planned)
        challenges.append(planned)
    return ChallengePlan(authorizations=listed, challenges=challenges)


def _listed(authz: AuthorizationState) -> AuthorizationProgress:
    return AuthorizationProgress(
        url=authz.url,
        identifier=authz.dns_name,
        wildcard=authz.wildcard,
        initial_state=authz.status,
        challenges=[ChallengeRef(url=c.url, token=c.token, type=c.type) for c in authz.challenges],
    )


IP_NEEDS_HTTP01 = (
    "; an IP address is validated only by HTTP-01 (RFC 8738), so the issuer needs an http01 "
    "solver without a selector, or one whose matchLabels match the Certificate"
)


def _is_ip(identifier: str) -> bool:
    try:
        ipaddress.ip_address(identifier)
    except ValueError:
        return False
    return True


def _challenge(
    authz: AuthorizationState, order: OrderToPlan, *, index: int
) -> ChallengeSpec | PlanFailure:
    if authz.status != AuthorizationStatus.PENDING:
        return PlanFailure(
            OrderState.INVALID,
            f"authorization for {authz.dns_name} is {authz.status}: {authz.problem}",
        )
    offered = {c.type for c in authz.challenges}
    selection = select_solver(order.solvers, authz.dns_name, authz.wildcard, offered, order.labels)
    if selection is None:
        shown = f"*.{authz.dns_name}" if authz.wildcard else authz.dns_name
        return PlanFailure(
            OrderState.ERRORED,
            f"no solver of issuer {order.issuer_name} can validate {shown}: the CA offers "
            f"{', '.join(sorted(offered)) or 'no supported challenge'}"
            + ("; a wildcard needs a DNS-01 solver" if authz.wildcard else "")
            + (IP_NEEDS_HTTP01 if _is_ip(authz.dns_name) else ""),
        )
    offer = next(c for c in authz.challenges if c.type == selection.solver.challenge_type)
    return ChallengeSpec(
        name=f"{order.order_name}-{index}",
        namespace=order.namespace,
        order_name=order.order_name,
        dns_name=authz.dns_name,
        wildcard=authz.wildcard,
        type=offer.type,
        token=offer.token,
        key=offer.key,
        url=offer.url,
        authorization_url=authz.url,
        solver=selection.solver,
    )
