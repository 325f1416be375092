"""Vectors for the renewal time: ARI window, jitter, renewBefore, the certificate's ARI id."""

from __future__ import annotations

import collections
import datetime

import pytest
from acme.client import _renewal_info_path_component
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.exceptions import ApplicationError

from acmeflow.activities.acme_order import refuses_replaces
from acmeflow.activities.renewal_info import parse_window, recheck_after
from acmeflow.activities.secret_inspection import ari_certificate_id
from acmeflow.contracts.errors import ACME_PROBLEM, ACME_UNAVAILABLE, BAD_NONCE, RATE_LIMITED
from acmeflow.contracts.renewal_info import RenewalInfo
from acmeflow.workflows.renewal_schedule import (
    JITTER_SHARE,
    RenewalPlan,
    lifetime_plan,
    plan_renewal,
    renewal_time,
)

UTC = datetime.UTC
ISSUED = datetime.datetime(2026, 6, 1, tzinfo=UTC)
EXPIRES = ISSUED + datetime.timedelta(days=90)
NOW = ISSUED + datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)


def _plan(
    info: RenewalInfo | None, *, renew_before_s: float = 0, seed: str = "uid/cert"
) -> RenewalPlan:
    return plan_renewal(
        not_before=ISSUED,
        not_after=EXPIRES,
        renew_before_s=renew_before_s,
        seed=seed,
        info=info,
        now=NOW,
    )


def _window(start: datetime.datetime, end: datetime.datetime, **extra: object) -> RenewalInfo:
    return RenewalInfo(
        offered=True,
        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        retry_after_s=6 * 3600,
        **extra,  # type: ignore[arg-type]
    )


def test_5000_certificates_issued_together_spread_over_days_not_one_minute() -> None:
    renewals = [
        lifetime_plan(
            not_before=ISSUED, not_after=EXPIRES, renew_before_s=0, seed=f"uid-{i}/cert-{i}"
        ).renew_at
        for i in range(5000)
    ]
    per_minute = collections.Counter(r.replace(second=0) for r in renewals)
    two_thirds = ISSUED + datetime.timedelta(days=60)
    assert max(per_minute.values()) <= 12
    assert len(per_minute) > 1500
    assert all(two_thirds - (EXPIRES - ISSUED) * JITTER_SHARE <= r <= two_thirds for r in renewals)


def test_the_jitter_is_the_same_for_the_same_certificate_and_only_ever_earlier() -> None:
    first = lifetime_plan(not_before=ISSUED, not_after=EXPIRES, renew_before_s=0, seed="u/c")
    again = lifetime_plan(not_before=ISSUED, not_after=EXPIRES, renew_before_s=0, seed="u/c")
    assert first == again
    assert first.rule.startswith("2/3 of the lifetime, jitter -")
    renew_before = lifetime_plan(
        not_before=ISSUED, not_after=EXPIRES, renew_before_s=720 * 3600, seed="u/c"
    )
    deadline = EXPIRES - datetime.timedelta(hours=720)
    assert deadline - (EXPIRES - ISSUED) * JITTER_SHARE <= renew_before.renew_at <= deadline
    assert renew_before.rule.startswith("renewBefore 720h, jitter -")


def test_a_renew_before_as_long_as_the_lifetime_is_never_before_the_certificate_starts() -> None:
    almost = (EXPIRES - ISSUED).total_seconds() - 1
    plan = lifetime_plan(not_before=ISSUED, not_after=EXPIRES, renew_before_s=almost, seed="x")
    assert plan.renew_at >= ISSUED
    assert renewal_time(ISSUED, EXPIRES, almost) == ISSUED + datetime.timedelta(seconds=1)


def test_an_ari_window_sets_the_time_inside_it_and_when_to_ask_again() -> None:
    start, end = ISSUED + datetime.timedelta(days=59), ISSUED + datetime.timedelta(days=61)
    plan = _plan(_window(start, end, explanation_url="https://ca.test/why"))
    assert start <= plan.renew_at <= end
    assert plan.recheck_at == NOW + 6 * HOUR
    assert plan.rule == (
        "ARI window 2026-07-30T00:00:00Z to 2026-08-01T00:00:00Z "
        "(retry after 6h; https://ca.test/why)"
    )
    points = {_plan(_window(start, end), seed=f"u{i}").renew_at for i in range(50)}
    assert len(points) == 50  # Certificates spread over the window, not all at its start


def test_a_window_in_the_past_means_renew_now() -> None:
    revoked = _plan(_window(NOW - HOUR, NOW - HOUR + datetime.timedelta(seconds=1)))
    assert revoked.renew_at <= NOW


def test_renew_before_is_a_deadline_the_ca_can_only_bring_forward() -> None:
    renew_before_s = 10 * 86400  # deadline: day 80
    later = _plan(
        _window(ISSUED + datetime.timedelta(days=79), ISSUED + datetime.timedelta(days=81)),
        renew_before_s=renew_before_s,
    )
    assert later.renew_at <= ISSUED + datetime.timedelta(days=80)
    assert later.rule.startswith("renewBefore 240h, jitter -")
    assert "sooner than the ARI window" in later.rule
    sooner = _plan(_window(NOW - HOUR, NOW), renew_before_s=renew_before_s)
    assert sooner.renew_at <= NOW
    assert sooner.rule.startswith("ARI window")


def test_no_ari_or_an_ari_outage_keeps_the_lifetime_rule_and_says_so() -> None:
    lifetime = lifetime_plan(
        not_before=ISSUED, not_after=EXPIRES, renew_before_s=0, seed="uid/cert"
    )
    assert _plan(RenewalInfo(offered=False)) == lifetime
    assert _plan(None) == lifetime
    outage = _plan(RenewalInfo(offered=True, problem="CA unreachable", retry_after_s=3600))
    assert outage.renew_at == lifetime.renew_at
    assert outage.recheck_at == NOW + HOUR
    assert outage.rule == (f"{lifetime.rule} (ARI unavailable: CA unreachable; retry after 1h)")


@pytest.mark.parametrize(
    ("header", "most", "seconds"),
    [
        ("21600", 86400, 21600),
        ("5", 86400, 60),
        ("999999", 86400, 86400),
        (None, 86400, 21600),
        ("not a delay", 86400, 21600),
        ("21600", 5, 5),
    ],
    ids=["as-sent", "at-least-a-minute", "at-most-a-day", "absent", "unreadable", "worker-cap"],
)
def test_retry_after_is_clamped_as_rfc_9773_says_and_by_the_worker(
    header: str | None, most: float, seconds: float
) -> None:
    assert recheck_after(header, most=most) == seconds


def test_a_window_is_read_with_its_explanation_and_refused_when_it_makes_no_sense() -> None:
    body = {
        "suggestedWindow": {"start": "2026-07-30T00:00:00.5Z", "end": "2026-08-01T00:00:00Z"},
        "explanationURL": "https://ca.test/why",
    }
    assert parse_window(body) == (
        "2026-07-30T00:00:00Z",
        "2026-08-01T00:00:00Z",
        "https://ca.test/why",
    )
    with pytest.raises(ValueError, match="ends"):
        parse_window(
            {"suggestedWindow": {"start": "2026-08-01T00:00:00Z", "end": "2026-07-30T00:00:00Z"}}
        )
    with pytest.raises(ValueError, match="suggestedWindow"):
        parse_window({"window": {}})


def _issued(serial: int, *, with_aki: bool = True) -> x509.Certificate:
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(ISSUED)
        .not_valid_after(EXPIRES)
    )
    if with_aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


@pytest.mark.parametrize("serial", [1, 0x7F, 0x80, 0xFF, 0x1234, 2**159 - 1, 2**127 + 5])
def test_the_ari_id_is_the_one_rfc_9773_defines(serial: int) -> None:
    cert = _issued(serial)
    assert ari_certificate_id(cert) == _renewal_info_path_component(cert)


def test_a_certificate_without_an_authority_key_identifier_has_no_ari_id() -> None:
    assert ari_certificate_id(_issued(5, with_aki=False)) == ""


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (ApplicationError("x", "alreadyReplaced", "d", type=ACME_PROBLEM), True),
        (ApplicationError("x", "unauthorized", "d", type=ACME_PROBLEM), True),
        (ApplicationError("x", "http409", type=ACME_PROBLEM), True),
        (ApplicationError("x", "serverInternal", type=ACME_UNAVAILABLE), True),
        (ApplicationError("x", "badNonce", type=BAD_NONCE), False),
        (ApplicationError("x", "rateLimited", "d", 60, type=RATE_LIMITED), False),
        (ApplicationError("unreachable", type=ACME_UNAVAILABLE), False),
    ],
)
def test_only_a_problem_document_makes_a_new_order_go_again_without_replaces(
    error: ApplicationError, refused: bool
) -> None:
    assert refuses_replaces(error) is refused
