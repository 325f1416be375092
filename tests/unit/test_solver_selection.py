"""Which solver answers an authorization: the rules an Issuer author relies on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from acmeflow.contracts.issuer import Http01Ingress, Rfc2136, SolverConfig, SolverSelector
from acmeflow.contracts.states import ChallengeType
from acmeflow.workflows.solver_selection import select_solver

BOTH = {ChallengeType.HTTP01, ChallengeType.DNS01}
NO_LABELS: dict[str, str] = {}


def http01(
    *,
    dns_names: list[str] | None = None,
    dns_zones: list[str] | None = None,
    labels: dict[str, str] | None = None,
    service: str = "acmeflow-solver",
) -> SolverConfig:
    """An HTTP-01 solver; ``service`` tells solvers of equal selector apart."""
    return SolverConfig(
        selector=_selector(dns_names, dns_zones, labels),
        http01=Http01Ingress(service_name=service),
    )


def dns01(
    *,
    dns_names: list[str] | None = None,
    dns_zones: list[str] | None = None,
    labels: dict[str, str] | None = None,
    nameserver: str = "127.0.0.1:53",
) -> SolverConfig:
    """A DNS-01 solver; ``nameserver`` tells solvers of equal selector apart."""
    return SolverConfig(
        selector=_selector(dns_names, dns_zones, labels),
        dns01=Rfc2136(nameserver=nameserver),
    )


def _selector(
    dns_names: list[str] | None, dns_zones: list[str] | None, labels: dict[str, str] | None
) -> SolverSelector | None:
    if dns_names is None and dns_zones is None and labels is None:
        return None
    return SolverSelector(
        dns_names=dns_names or [], dns_zones=dns_zones or [], match_labels=labels or {}
    )


def chosen(
    solvers: list[SolverConfig],
    dns_name: str,
    *,
    wildcard: bool = False,
    offered: set[str] | None = None,
    labels: dict[str, str] | None = None,
) -> int | None:
    """Index of the selected solver, or None when no solver can validate the name."""
    selection = select_solver(
        solvers,
        dns_name,
        wildcard,
        BOTH if offered is None else offered,
        NO_LABELS if labels is None else labels,
    )
    if selection is None:
        return None
    assert selection.solver is solvers[selection.index]
    return selection.index


# --- the challenge type must be offered -------------------------------------------------


def test_solver_without_selector_is_used_for_any_name() -> None:
    assert chosen([http01()], "test1.example.com") == 0


def test_no_solvers_means_no_selection() -> None:
    assert chosen([], "test1.example.com") is None


def test_solver_of_a_type_the_ca_does_not_offer_is_skipped() -> None:
    solvers = [http01(), dns01()]
    assert chosen(solvers, "test1.example.com", offered={ChallengeType.DNS01}) == 1
    assert chosen(solvers, "test1.example.com", offered={ChallengeType.HTTP01}) == 0


def test_no_offered_type_matches_any_solver() -> None:
    assert chosen([http01(), dns01()], "test1.example.com", offered=set()) is None
    assert (
        chosen(
            [http01(dns_names=["test1.example.com"])],
            "test1.example.com",
            offered={ChallengeType.DNS01},
        )
        is None
    )


def test_most_specific_solver_is_skipped_when_its_type_is_not_offered() -> None:
    solvers = [dns01(), http01(dns_names=["test1.example.com"])]
    assert chosen(solvers, "test1.example.com", offered={ChallengeType.DNS01}) == 0


# --- dnsNames > dnsZones > matchLabels > no selector -------------------------------------


def test_exact_dns_name_beats_zone_and_fallback_wherever_listed() -> None:
    solvers = [
        dns01(),
        dns01(dns_zones=["example.com"]),
        http01(dns_names=["test1.example.com"]),
    ]
    assert chosen(solvers, "test1.example.com") == 2
    # Other names in the zone still go to the zone solver.
    assert chosen(solvers, "test2.example.com") == 1
    # Names outside every selector use the fallback.
    assert chosen(solvers, "other.org") == 0


def test_exact_dns_name_beats_a_longer_zone() -> None:
    solvers = [
        dns01(dns_zones=["deep.sub.example.com"]),
        http01(dns_names=["www.deep.sub.example.com"]),
    ]
    assert chosen(solvers, "www.deep.sub.example.com") == 1


def test_zone_beats_match_labels_wherever_listed() -> None:
    solvers = [
        http01(labels={"team": "web", "tier": "front"}),
        dns01(dns_zones=["example.com"]),
    ]
    labels = {"team": "web", "tier": "front"}
    assert chosen(solvers, "test1.example.com", labels=labels) == 1
    assert chosen(solvers, "test1.example.org", labels=labels) == 0


def test_match_labels_beat_the_fallback() -> None:
    solvers = [dns01(), http01(labels={"team": "web"})]
    assert chosen(solvers, "test1.example.com", labels={"team": "web", "env": "prod"}) == 1


def test_most_match_labels_win() -> None:
    solvers = [
        http01(labels={"team": "web"}, service="one-label"),
        http01(labels={"team": "web", "env": "prod"}, service="two-labels"),
        http01(labels={"team": "web"}, service="one-label-again"),
    ]
    labels = {"team": "web", "env": "prod"}
    assert chosen(solvers, "test1.example.com", labels=labels) == 1


def test_solver_whose_labels_do_not_match_is_excluded() -> None:
    solvers = [http01(labels={"team": "web"})]
    assert chosen(solvers, "test1.example.com", labels={"team": "db"}) is None
    assert chosen(solvers, "test1.example.com", labels={}) is None
    # Labels compare by value, exactly (Kubernetes label values are case-sensitive).
    assert chosen(solvers, "test1.example.com", labels={"team": "Web"}) is None


def test_labels_must_also_match_when_names_or_zones_do() -> None:
    solvers = [
        dns01(nameserver="fallback"),
        http01(dns_names=["test1.example.com"], labels={"team": "web"}),
        dns01(dns_zones=["example.com"], labels={"team": "web"}),
    ]
    assert chosen(solvers, "test1.example.com", labels={"team": "db"}) == 0
    assert chosen(solvers, "test1.example.com", labels={"team": "web"}) == 1
    assert chosen(solvers, "test2.example.com", labels={"team": "web"}) == 2


def test_labels_break_a_tie_between_equal_zones() -> None:
    solvers = [
        dns01(dns_zones=["example.com"], nameserver="plain"),
        dns01(dns_zones=["example.com"], labels={"team": "web"}, nameserver="labelled"),
    ]
    assert chosen(solvers, "test1.example.com", labels={"team": "web"}) == 1
    assert chosen(solvers, "test1.example.com", labels={}) == 0


def test_labels_break_a_tie_between_equal_dns_names() -> None:
    solvers = [
        http01(dns_names=["test1.example.com"], service="plain"),
        http01(dns_names=["test1.example.com"], labels={"team": "web"}, service="labelled"),
    ]
    assert chosen(solvers, "test1.example.com", labels={"team": "web"}) == 1


def test_selector_with_names_that_do_not_match_is_not_a_fallback() -> None:
    solvers = [http01(dns_names=["test1.example.com"]), dns01(dns_zones=["example.org"])]
    assert chosen(solvers, "test2.example.com") is None


# --- dnsZones: longest suffix, on label boundaries ----------------------------------------


def test_longest_zone_wins_wherever_listed() -> None:
    solvers = [
        dns01(dns_zones=["example.com"], nameserver="parent"),
        dns01(dns_zones=["sub.example.com"], nameserver="child"),
        dns01(dns_zones=["com"], nameserver="tld"),
    ]
    assert chosen(solvers, "a.sub.example.com") == 1
    assert chosen(solvers, "a.example.com") == 0
    assert chosen(solvers, "a.other.com") == 2
    assert chosen(solvers, "a.example.net") is None


def test_longest_zone_counts_within_one_selector() -> None:
    solvers = [
        dns01(dns_zones=["example.com"], nameserver="parent"),
        dns01(dns_zones=["com", "sub.example.com"], nameserver="child"),
    ]
    assert chosen(solvers, "a.sub.example.com") == 1


def test_zone_matches_its_apex() -> None:
    assert chosen([dns01(dns_zones=["example.com"])], "example.com") == 0


def test_zone_matches_only_on_label_boundaries() -> None:
    solvers = [http01(), dns01(dns_zones=["example.com"])]
    assert chosen(solvers, "badexample.com") == 0
    assert chosen(solvers, "test.badexample.com") == 0
    assert chosen([dns01(dns_zones=["example.com"])], "badexample.com") is None
    assert chosen([dns01(dns_zones=["example.com"])], "example.com.evil.org") is None


def test_zone_with_trailing_dot_matches() -> None:
    assert chosen([dns01(dns_zones=["example.com."])], "test1.example.com") == 0


# --- case-insensitivity -------------------------------------------------------------------


def test_dns_names_compare_case_insensitively() -> None:
    solvers = [dns01(), http01(dns_names=["Test1.EXAMPLE.com"])]
    assert chosen(solvers, "test1.example.com") == 1
    assert chosen(solvers, "TEST1.example.COM") == 1


def test_zones_compare_case_insensitively() -> None:
    solvers = [http01(), dns01(dns_zones=["EXAMPLE.Com"])]
    assert chosen(solvers, "test1.example.com") == 1
    assert chosen(solvers, "Test1.Example.COM") == 1


# --- wildcards ----------------------------------------------------------------------------

# The CA offers a wildcard authorization (identifier without "*.") only DNS-01.
WILDCARD_OFFER = {ChallengeType.DNS01}


def test_wildcard_matches_dns_names_written_with_star() -> None:
    solvers = [
        dns01(nameserver="fallback"),
        dns01(dns_names=["*.example.com"], nameserver="wildcard"),
    ]
    assert chosen(solvers, "example.com", wildcard=True, offered=WILDCARD_OFFER) == 1
    # The apex is a different name: "*.example.com" does not select for it.
    assert chosen(solvers, "example.com", wildcard=False) == 0


def test_apex_in_dns_names_does_not_select_for_the_wildcard() -> None:
    solvers = [
        dns01(nameserver="fallback"),
        dns01(dns_names=["example.com"], nameserver="apex"),
    ]
    assert chosen(solvers, "example.com", wildcard=True, offered=WILDCARD_OFFER) == 0
    assert chosen(solvers, "example.com", wildcard=False) == 1


def test_wildcard_star_in_dns_names_compares_case_insensitively() -> None:
    solvers = [dns01(), dns01(dns_names=["*.EXAMPLE.com"])]
    assert chosen(solvers, "Example.COM", wildcard=True, offered=WILDCARD_OFFER) == 1


def test_wildcard_lies_in_the_zone_of_its_base_name() -> None:
    solvers = [
        dns01(dns_zones=["example.com"], nameserver="parent"),
        dns01(dns_zones=["sub.example.com"], nameserver="child"),
    ]
    assert chosen(solvers, "sub.example.com", wildcard=True, offered=WILDCARD_OFFER) == 1


def test_wildcard_needs_a_dns01_solver() -> None:
    # Even an HTTP-01 solver naming the wildcard exactly cannot validate it.
    solvers = [http01(dns_names=["*.example.com"]), http01(), dns01(nameserver="any")]
    assert chosen(solvers, "example.com", wildcard=True, offered=WILDCARD_OFFER) == 2
    assert chosen(solvers[:2], "example.com", wildcard=True, offered=WILDCARD_OFFER) is None


# --- ties keep the earlier solver ---------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda tag: dns01(nameserver=tag),
        lambda tag: dns01(dns_names=["test1.example.com"], nameserver=tag),
        lambda tag: dns01(dns_zones=["example.com"], nameserver=tag),
        lambda tag: dns01(labels={"team": "web"}, nameserver=tag),
    ],
    ids=["fallback", "dnsNames", "dnsZones", "matchLabels"],
)
def test_ties_keep_the_earlier_solver(make: Callable[[str], SolverConfig]) -> None:
    solvers = [make("first"), make("second"), make("third")]
    assert chosen(solvers, "test1.example.com", labels={"team": "web"}) == 0


def test_tie_between_types_keeps_the_earlier_solver() -> None:
    assert chosen([http01(), dns01()], "test1.example.com") == 0
    assert chosen([dns01(), http01()], "test1.example.com") == 0


def test_empty_selector_counts_as_a_fallback() -> None:
    solvers = [dns01(), SolverConfig(selector=SolverSelector(), http01=Http01Ingress())]
    # Both are fallbacks: the earlier one stays.
    assert chosen(solvers, "test1.example.com") == 0
    assert chosen(solvers, "test1.example.com", offered={ChallengeType.HTTP01}) == 1
