"""``acmeflow issue``'s lines from snapshots that arrive late: the order of what happened.

The query that feeds the printer can miss several steps of a fast order, so one snapshot
may hold the Challenges' creation, their start and a verification at once; these cases
pin where the step line goes among them.
"""

from __future__ import annotations

import pytest

from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress, SolverConfig
from acmeflow.contracts.progress import ChallengeProgress, EventType, OrderEvent, OrderProgress
from acmeflow.contracts.states import ChallengeType
from acmeflow.issue_command import ProgressPrinter


def _event(seq: int, reason: str, message: str) -> OrderEvent:
    return OrderEvent(
        seq=seq,
        at="2026-12-02T06:00:00+00:00",
        kind="Challenge",
        object_name=f"order-{seq}",
        type=EventType.NORMAL,
        reason=reason,
        message=message,
    )


EVENTS = [
    _event(0, "Created", "Created Challenge resource a"),
    _event(1, "Created", "Created Challenge resource b"),
    _event(2, "Started", "Challenge scheduled for processing"),
    _event(3, "DomainVerified", "Domain a verified"),
]


def _lines(capsys: pytest.CaptureFixture[str], *snapshots: OrderProgress) -> list[str]:
    printer = ProgressPrinter()
    for snapshot in snapshots:
        printer.show(snapshot)
    return capsys.readouterr().out.splitlines()


def test_a_step_seen_late_is_printed_where_it_began(capsys: pytest.CaptureFixture[str]) -> None:
    solving = OrderProgress(
        state="pending", step="solving 2 challenge(s)", events=EVENTS, step_after_events=2
    )
    assert _lines(capsys, OrderProgress(step="checking the certificate request"), solving) == [
        "[starting] checking the certificate request",
        "  - Created: Created Challenge resource a",
        "  - Created: Created Challenge resource b",
        "[pending] solving 2 challenge(s)",
        "  - Started: Challenge scheduled for processing",
        "  - DomainVerified: Domain a verified",
    ]


def test_a_step_after_every_new_event_follows_them(capsys: pytest.CaptureFixture[str]) -> None:
    finalizing = OrderProgress(
        state="ready", step="finalizing with the CSR", events=EVENTS, step_after_events=4
    )
    assert _lines(capsys, finalizing)[-2:] == [
        "  - DomainVerified: Domain a verified",
        "[ready] finalizing with the CSR",
    ]


def test_a_new_reason_of_the_same_step_is_news_of_now(capsys: pytest.CaptureFixture[str]) -> None:
    """Only a Challenge's reason changed: the line follows the events that came since."""
    first = OrderProgress(
        state="pending", step="solving 2 challenge(s)", events=EVENTS[:2], step_after_events=2
    )
    waiting = ChallengeProgress(spec=_spec("b.example"), reason="Waiting for b.example")
    later = OrderProgress(
        state="pending",
        step="solving 2 challenge(s)",
        events=EVENTS,
        step_after_events=2,
        challenges=[waiting],
    )
    assert _lines(capsys, first, later)[-3:] == [
        "  - Started: Challenge scheduled for processing",
        "  - DomainVerified: Domain a verified",
        "[pending] solving 2 challenge(s) (Waiting for b.example)",
    ]


def _spec(domain: str) -> ChallengeSpec:
    return ChallengeSpec(
        name="order-1",
        namespace="",
        order_name="order",
        dns_name=domain,
        wildcard=False,
        type=ChallengeType.HTTP01,
        token="token",
        key="key",
        url="https://ca.example/chall/1",
        authorization_url="https://ca.example/authz/1",
        solver=SolverConfig(http01=Http01Ingress()),
    )
