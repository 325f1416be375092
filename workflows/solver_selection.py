"""Which configured solver answers an authorization: pure, deterministic rules.

A solver applies only if the CA offers its challenge type (a wildcard is only offered
DNS-01). Among applicable solvers the most specific selector wins: an exact
``dnsNames`` match beats the longest matching ``dnsZones`` suffix, which beats the most
``matchLabels``; a solver without selector is the fallback; ties keep the earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from acmeflow.contracts.issuer import SolverConfig, SolverSelector
from acmeflow.contracts.states import ChallengeType


@dataclass(frozen=True)
class Selection:
    index: int
    solver: SolverConfig


def _zone_labels(dns_name: str, zones: list[str]) -> int:
    """Labels in the longest zone ``dns_name`` lies in (on label boundaries), else 0."""
    name = dns_name.lower().rstrip(".")
    best = 0
    for zone in zones:
        suffix = zone.lower().rstrip(".")
        if name == suffix or name.endswith("." + suffix):
            best = max(best, suffix.count(".") + 1)
    return best


def _score(
    selector: SolverSelector | None, dns_name: str, wildcard: bool, labels: Mapping[str, str]
) -> tuple[int, int, int] | None:
    """(exact name, zone labels, label count); None if the selector rules the solver out."""
    if selector is None:
        return (0, 0, 0)
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return None
    if not selector.dns_names and not selector.dns_zones:
        return (0, 0, len(selector.match_labels))
    shown = f"*.{dns_name}" if wildcard else dns_name
    exact = shown.lower() in {n.lower() for n in selector.dns_names}
    zone = _zone_labels(dns_name, selector.dns_zones)
    if not exact and not zone:
        return None
    return (int(exact), zone, len(selector.match_labels))


def select_solver(
    solvers: Sequence[SolverConfig],
    dns_name: str,
    wildcard: bool,
    offered_types: AbstractSet[str],
    labels: Mapping[str, str],
) -> Selection | None:
    best: tuple[tuple[int, int, int], int] | None = None
    for index, solver in enumerate(solvers):
        if solver.challenge_type not in offered_types:
            continue
        if wildcard and solver.challenge_type != ChallengeType.DNS01:
            continue  # RFC 8555 §7.1.3: only DNS-01 proves control of a wildcard
        score = _score(solver.selector, dns_name, wildcard, labels)
        if score is None:
            continue
        if best is None or score > best[0]:
            best = (score, index)
    if best is None:
        return None
    return Selection(index=best[1], solver=solvers[best[1]])
