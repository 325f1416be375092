"""What a person reads about an order: the Temporal UI details and the Kubernetes Events."""

from __future__ import annotations

import pytest

from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress, Rfc2136, SolverConfig
from acmeflow.contracts.progress import (
    ChallengeProgress,
    EventReason,
    OrderProgress,
    challenge_created_message,
    domain_verified_message,
)
from acmeflow.contracts.states import FINAL_ORDER_STATES, ChallengeType

ORDER = "example-com-1217431265"


def challenge(
    index: int,
    dns_name: str,
    *,
    type: str = ChallengeType.HTTP01,
    wildcard: bool = False,
    step: str = "scheduled",
    reason: str = "",
) -> ChallengeProgress:
    solver = (
        SolverConfig(http01=Http01Ingress())
        if type == ChallengeType.HTTP01
        else SolverConfig(dns01=Rfc2136(nameserver="127.0.0.1:53"))
    )
    spec = ChallengeSpec(
        name=f"{ORDER}-{index}",
        namespace="default",
        order_name=ORDER,
        dns_name=dns_name,
        wildcard=wildcard,
        type=type,
        token=f"token-{index}",
        key=f"key-{index}",
        url=f"https://ca.test/chall/{index}",
        authorization_url=f"https://ca.test/authz/{index}",
        solver=solver,
    )
    return ChallengeProgress(spec=spec, step=step, reason=reason)


# --- Event messages, word for word as the reference document shows them -------------------


def test_challenge_created_message_reads_like_the_reference() -> None:
    assert challenge_created_message(f"{ORDER}-0", "test1.example.com") == (
        'Created Challenge resource "example-com-1217431265-0" for domain "test1.example.com"'
    )


@pytest.mark.parametrize(
    ("challenge_type", "expected"),
    [
        (ChallengeType.HTTP01, 'Domain "test1.example.com" verified with "HTTP-01" validation'),
        (ChallengeType.DNS01, 'Domain "test1.example.com" verified with "DNS-01" validation'),
    ],
)
def test_domain_verified_message_reads_like_the_reference(
    challenge_type: str, expected: str
) -> None:
    assert domain_verified_message("test1.example.com", challenge_type) == expected


def test_event_reasons_are_the_reference_reasons() -> None:
    assert EventReason.CHALLENGE_CREATED == "Created"
    assert EventReason.ORDER_VALID == "OrderValid"
    assert EventReason.CHALLENGE_STARTED == "Started"
    assert EventReason.CHALLENGE_PRESENTED == "Presented"
    assert EventReason.DOMAIN_VERIFIED == "DomainVerified"
    assert EventReason.PRESENT_ERROR == "PresentError"
    assert EventReason.CHALLENGE_FAILED == "Failed"
    assert EventReason.CLEAN_UP_ERROR == "CleanUpError"


# --- describe(): the Temporal UI's current details -----------------------------------------


def test_describe_a_fresh_order() -> None:
    assert OrderProgress().describe() == "**starting**: starting"


def test_describe_shows_each_challenge_step_and_reason() -> None:
    progress = OrderProgress(
        state="pending",
        step="solving 2 challenges",
        url="https://ca.test/order/7",
        challenges=[
            challenge(
                0,
                "test1.example.com",
                step="self-check failing",
                reason="http://test1.example.com/.well-known/acme-challenge/token-0 answered 404",
            ),
            challenge(
                1, "example.com", type=ChallengeType.DNS01, wildcard=True, step="presenting DNS-01"
            ),
        ],
    )
    assert progress.describe().splitlines() == [
        "**pending**: solving 2 challenges",
        "ACME order: https://ca.test/order/7",
        f"- HTTP-01 for test1.example.com ({ORDER}-0): self-check failing — "
        "http://test1.example.com/.well-known/acme-challenge/token-0 answered 404",
        f"- DNS-01 for *.example.com ({ORDER}-1): presenting DNS-01",
    ]


def test_describe_changes_when_a_challenge_reason_changes() -> None:
    progress = OrderProgress(state="pending", challenges=[challenge(0, "test1.example.com")])
    before = progress.describe()
    progress.challenges[0].step = "self-check failing"
    progress.challenges[0].reason = "TXT _acme-challenge.test1.example.com. not found"
    after = progress.describe()
    assert after != before
    assert "TXT _acme-challenge.test1.example.com. not found" in after
    assert "self-check failing" in after


def test_describe_shows_the_order_reason_last() -> None:
    progress = OrderProgress(
        state="errored",
        step="failed",
        reason="create ACME order: ACME server refused the request (caa): CAA forbids",
        challenges=[challenge(0, "test1.example.com", step="cleaned up")],
    )
    lines = progress.describe().splitlines()
    assert lines[0] == "**errored**: failed"
    assert lines[-1] == (
        "Reason: create ACME order: ACME server refused the request (caa): CAA forbids"
    )
    assert not any(line.startswith("ACME order:") for line in lines)  # no URL yet


def test_describe_without_reason_has_no_dangling_separator() -> None:
    progress = OrderProgress(state="valid", step="done", challenges=[challenge(0, "a.example.com")])
    text = progress.describe()
    assert "—" not in text
    assert "Reason:" not in text


# --- final states ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["valid", "invalid", "expired", "errored"])
def test_final_states(state: str) -> None:
    assert state in FINAL_ORDER_STATES
    assert OrderProgress(state=state).final


@pytest.mark.parametrize("state", ["", "pending", "ready", "processing"])
def test_non_final_states(state: str) -> None:
    assert not OrderProgress(state=state).final
