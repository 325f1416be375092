"""Which challenges an order solves, and why it cannot: vectors for ``plan_challenges``.

Solver precedence itself has its own vectors (test_solver_selection.py).
"""

from __future__ import annotations

from acmeflow.contracts.acme import AuthorizationState, ChallengeOffer
from acmeflow.contracts.issuer import Http01Ingress, Rfc2136, SolverConfig
from acmeflow.contracts.states import AuthorizationStatus, ChallengeType, OrderState
from acmeflow.workflows.challenge_planning import (
    ChallengePlan,
    OrderToPlan,
    PlanFailure,
    plan_challenges,
)

HTTP01 = SolverConfig(http01=Http01Ingress())
DNS01 = SolverConfig(dns01=Rfc2136(nameserver="127.0.0.1:53"))
BOTH_OFFERED = (ChallengeType.HTTP01, ChallengeType.DNS01)


def authz(
    dns_name: str,
    *,
    wildcard: bool = False,
    status: AuthorizationStatus = AuthorizationStatus.PENDING,
    offered: tuple[ChallengeType, ...] = BOTH_OFFERED,
    problem: str = "",
) -> AuthorizationState:
    url = f"https://ca.test/authz/{'w-' if wildcard else ''}{dns_name}"
    return AuthorizationState(
        url=url,
        dns_name=dns_name,
        wildcard=wildcard,
        status=status,
        challenges=[
            ChallengeOffer(
                url=f"{url}/{kind.acme_name}",
                type=kind,
                token=f"token-{kind.acme_name}",
                key=f"key-{kind.acme_name}",
            )
            for kind in offered
        ],
        problem=problem,
    )


def plan(*authorizations: AuthorizationState, solvers: list[SolverConfig]) -> ChallengePlan:
    return plan_challenges(
        list(authorizations),
        OrderToPlan(
            order_name="web-42",
            namespace="default",
            issuer_name="letsencrypt",
            solvers=solvers,
        ),
    )


def test_each_pending_authorization_gets_one_challenge_of_its_solver_s_type() -> None:
    result = plan(authz("a.example.com"), solvers=[HTTP01])
    [challenge] = result.challenges
    assert result.failure is None
    assert (challenge.name, challenge.namespace, challenge.order_name) == (
        "web-42-0",
        "default",
        "web-42",
    )
    assert challenge.type == ChallengeType.HTTP01
    assert (challenge.url, challenge.token, challenge.key) == (
        "https://ca.test/authz/a.example.com/http-01",
        "token-http-01",
        "key-http-01",
    )
    assert challenge.authorization_url == "https://ca.test/authz/a.example.com"
    assert challenge.solver is HTTP01


def test_a_reused_valid_authorization_gets_no_challenge_but_is_listed() -> None:
    result = plan(
        authz("a.example.com", status=AuthorizationStatus.VALID),
        authz("b.example.com"),
        solvers=[HTTP01],
    )
    assert [c.dns_name for c in result.challenges] == ["b.example.com"]
    assert [c.name for c in result.challenges] == ["web-42-0"]
    assert [(a.identifier, a.initial_state) for a in result.authorizations] == [
        ("a.example.com", "valid"),
        ("b.example.com", "pending"),
    ]


def test_names_count_in_identifier_then_wildcard_order_whatever_the_ca_s_order() -> None:
    result = plan(
        authz("test1.example.com"),
        authz("example.com", wildcard=True),
        authz("example.com"),
        solvers=[DNS01],
    )
    assert [(c.name, c.shown_name) for c in result.challenges] == [
        ("web-42-0", "example.com"),
        ("web-42-1", "*.example.com"),
        ("web-42-2", "test1.example.com"),
    ]
    assert [a.identifier for a in result.authorizations] == [
        "example.com",
        "example.com",
        "test1.example.com",
    ]
    assert [a.challenges[0].url for a in result.authorizations][1] == (
        "https://ca.test/authz/w-example.com/http-01"
    )


def test_a_wildcard_without_a_dns01_solver_errors_the_order() -> None:
    result = plan(
        authz("example.com", wildcard=True, offered=(ChallengeType.DNS01,)), solvers=[HTTP01]
    )
    assert result.challenges == []
    assert result.failure == PlanFailure(
        OrderState.ERRORED,
        "no solver of issuer letsencrypt can validate *.example.com: the CA offers DNS-01; "
        "a wildcard needs a DNS-01 solver",
    )


def test_no_solver_for_what_the_ca_offers_errors_the_order() -> None:
    result = plan(
        authz("a.example.com"),
        authz("b.example.com", offered=(ChallengeType.DNS01,)),
        solvers=[HTTP01],
    )
    assert result.failure == PlanFailure(
        OrderState.ERRORED,
        "no solver of issuer letsencrypt can validate b.example.com: the CA offers DNS-01",
    )
    assert result.challenges == [], "nothing is solved (nor announced) for a failed plan"
    assert len(result.authorizations) == 2


def test_an_ip_address_without_an_http01_solver_says_what_to_add() -> None:
    result = plan(authz("192.0.2.7", offered=(ChallengeType.HTTP01,)), solvers=[DNS01])
    assert result.failure == PlanFailure(
        OrderState.ERRORED,
        "no solver of issuer letsencrypt can validate 192.0.2.7: the CA offers HTTP-01; an IP "
        "address is validated only by HTTP-01 (RFC 8738), so the issuer needs an http01 solver "
        "without a selector, or one whose matchLabels match the Certificate",
    )


def test_a_ca_offering_nothing_acmeflow_solves_says_so() -> None:
    result = plan(authz("a.example.com", offered=()), solvers=[HTTP01])
    assert result.failure is not None
    assert result.failure.reason == (
        "no solver of issuer letsencrypt can validate a.example.com: "
        "the CA offers no supported challenge"
    )


def test_an_authorization_neither_pending_nor_valid_makes_the_order_invalid() -> None:
    result = plan(
        authz("a.example.com"),
        authz("b.example.com", status=AuthorizationStatus.DEACTIVATED, problem="gone"),
        solvers=[HTTP01],
    )
    assert result.failure == PlanFailure(
        OrderState.INVALID, "authorization for b.example.com is deactivated: gone"
    )
    assert result.challenges == []
