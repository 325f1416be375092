"""The error taxonomy: which failures Temporal retries, how long it waits, what it says."""

from __future__ import annotations

import datetime
import json
from email.utils import format_datetime

import pytest
import requests
from acme import errors as acme_errors
from acme import messages
from josepy.errors import DeserializationError
from temporalio.exceptions import ApplicationError

from acmeflow.activities.acme_client import RetryAfterNetwork
from acmeflow.activities.errors import (
    ACME_PROBLEM,
    ACME_UNAVAILABLE,
    BAD_NONCE,
    BAD_REQUEST,
    DEFAULT_RATE_LIMIT_DELAY,
    RATE_LIMITED,
    acme_step,
    bad_request,
    classify,
    classify_problem,
    retry_after_delay,
)

UTC = datetime.UTC
NOW = datetime.datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def problem(code: str, detail: str = "") -> messages.Error:
    return (
        messages.Error.with_code(code, detail=detail) if detail else messages.Error.with_code(code)
    )


def http_response(
    status: int,
    body: bytes = b"",
    *,
    content_type: str = "",
    headers: dict[str, str] | None = None,
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "https://ca.test/acme/new-order"
    if content_type:
        response.headers["Content-Type"] = content_type
    response.headers.update(headers or {})
    response._content = body
    return response


def problem_response(status: int, code: str, detail: str, **headers: str) -> requests.Response:
    body = json.dumps({"type": f"urn:ietf:params:acme:error:{code}", "detail": detail})
    return http_response(
        status,
        body.encode(),
        content_type="application/problem+json",
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def raised_by_step(error: BaseException, action: str = "create ACME order") -> ApplicationError:
    with pytest.raises(ApplicationError) as caught, acme_step(action):
        raise error
    return caught.value


# --- ACME problem documents by code -------------------------------------------------------


def test_bad_nonce_is_retryable() -> None:
    error = classify_problem(problem("badNonce", "JWS has an invalid anti-replay nonce"), None)
    assert error.type == BAD_NONCE
    assert not error.non_retryable
    assert "badNonce" in error.message


def test_rate_limited_is_left_to_the_workflow_with_the_wait_and_the_detail() -> None:
    """Not an activity retry: Temporal never retries past the step's schedule-to-close."""
    error = classify_problem(
        problem("rateLimited", "too many certificates already issued"),
        datetime.timedelta(seconds=3600),
    )
    assert error.type == RATE_LIMITED
    assert error.non_retryable
    assert error.next_retry_delay is None
    assert "too many certificates already issued" in error.message
    assert list(error.details) == ["rateLimited", "too many certificates already issued", 3600]


def test_rate_limited_without_retry_after_waits_the_default() -> None:
    error = classify_problem(problem("rateLimited", "slow down"), None)
    assert error.type == RATE_LIMITED
    assert error.non_retryable
    assert error.details[2] == DEFAULT_RATE_LIMIT_DELAY.total_seconds() == 60


def test_rate_limited_wait_rounds_up_to_whole_seconds() -> None:
    error = classify_problem(problem("rateLimited", "x"), datetime.timedelta(seconds=11.2))
    assert error.details[2] == 12


def test_rate_limited_for_more_than_a_day_keeps_the_whole_wait() -> None:
    error = classify_problem(problem("rateLimited", "x"), retry_after_delay("90000"))
    assert error.details[2] == 90000


def test_server_internal_is_retryable() -> None:
    error = classify_problem(problem("serverInternal", "database hiccup"), None)
    assert error.type == ACME_UNAVAILABLE
    assert not error.non_retryable


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("rejectedIdentifier", 'Error creating new order :: Cannot issue for "bad..name"'),
        ("caa", "CAA record for example.com prevents issuance"),
        ("malformed", "Unable to validate JWS"),
        ("unauthorized", 'Account is not valid, has status "deactivated"'),
        ("badCSR", "CSR contains a public key of a known weak RSA modulus"),
    ],
)
def test_client_side_problems_are_final_and_name_their_code(code: str, detail: str) -> None:
    error = classify_problem(problem(code, detail), None)
    assert error.type == ACME_PROBLEM
    assert error.non_retryable
    assert error.details[0] == code
    assert code in error.message
    assert detail in error.message


def test_problem_without_detail_still_says_what_it_is() -> None:
    error = classify_problem(
        messages.Error.from_json({"type": "urn:ietf:params:acme:error:caa"}), None
    )
    assert error.type == ACME_PROBLEM
    assert error.details[0] == "caa"
    assert "caa" in error.message


def test_classify_prefixes_the_action_and_keeps_the_taxonomy() -> None:
    error = classify(problem("caa", "CAA forbids"), "create ACME order")
    assert error.message.startswith("create ACME order: ")
    assert "CAA forbids" in error.message
    assert error.type == ACME_PROBLEM
    assert error.non_retryable
    assert error.details[0] == "caa"


# --- Retry-After ---------------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert retry_after_delay("120") == datetime.timedelta(seconds=120)
    assert retry_after_delay(" 30 ") == datetime.timedelta(seconds=30)


def test_retry_after_as_http_date() -> None:
    later = NOW + datetime.timedelta(minutes=90)
    header = format_datetime(later, usegmt=True)  # "Sat, 01 Mar 2025 13:30:00 GMT"
    assert retry_after_delay(header, now=NOW) == datetime.timedelta(minutes=90)


def test_retry_after_as_obsolete_rfc850_date() -> None:
    assert retry_after_delay("Saturday, 01-Mar-25 12:05:00 GMT", now=NOW) == (
        datetime.timedelta(minutes=5)
    )


def test_retry_after_as_asctime_date() -> None:
    """RFC 9110 §5.6.7: recipients MUST accept asctime dates, which carry no zone (GMT)."""
    assert retry_after_delay("Sat Mar  1 12:10:00 2025", now=NOW) == (
        datetime.timedelta(minutes=10)
    )


def test_retry_after_of_more_than_a_day() -> None:
    assert retry_after_delay("90000") == datetime.timedelta(hours=25)
    header = format_datetime(NOW + datetime.timedelta(days=3), usegmt=True)
    assert retry_after_delay(header, now=NOW) == datetime.timedelta(days=3)


def test_retry_after_beyond_any_date_is_unreadable_not_forever() -> None:
    assert retry_after_delay("9" * 30, now=NOW) is None


def test_retry_after_in_the_past_is_no_delay() -> None:
    assert retry_after_delay("Sat, 01 Mar 2025 11:00:00 GMT", now=NOW) == datetime.timedelta(0)


@pytest.mark.parametrize(
    "header", [None, "", "soon", "-5", "1.5", "12s", "Sat, 99 Foo 2025", "<html>"]
)
def test_missing_or_unreadable_retry_after_is_none(header: str | None) -> None:
    assert retry_after_delay(header, now=NOW) is None


# --- the network layer keeps Retry-After ---------------------------------------------------


def test_check_response_keeps_retry_after_on_a_rate_limit_problem() -> None:
    response = problem_response(
        429, "rateLimited", "too many new orders recently", Retry_After="1800"
    )
    with pytest.raises(messages.Error) as caught:
        RetryAfterNetwork._check_response(response)
    assert caught.value.code == "rateLimited"
    assert caught.value.retry_after == datetime.timedelta(seconds=1800)

    # ...and the activity boundary hands the workflow exactly that wait and the detail.
    error = raised_by_step(caught.value)
    assert error.type == RATE_LIMITED
    assert error.non_retryable
    assert list(error.details) == ["rateLimited", "too many new orders recently", 1800]
    assert error.message.startswith("create ACME order: ")
    assert "too many new orders recently" in error.message


def test_check_response_keeps_an_http_date_retry_after() -> None:
    later = datetime.datetime.now(UTC) + datetime.timedelta(hours=2)
    response = problem_response(
        429, "rateLimited", "slow down", Retry_After=format_datetime(later, usegmt=True)
    )
    with pytest.raises(messages.Error) as caught:
        RetryAfterNetwork._check_response(response)
    delay = caught.value.retry_after
    assert isinstance(delay, datetime.timedelta)
    assert datetime.timedelta(minutes=118) < delay <= datetime.timedelta(hours=2)


def test_check_response_without_retry_after_uses_the_default_wait() -> None:
    response = problem_response(429, "rateLimited", "slow down")
    with pytest.raises(messages.Error) as caught:
        RetryAfterNetwork._check_response(response)
    assert caught.value.retry_after is None
    assert raised_by_step(caught.value).details[2] == DEFAULT_RATE_LIMIT_DELAY.total_seconds()


def test_check_response_with_asctime_retry_after_still_reports_the_rate_limit() -> None:
    """An asctime Retry-After must not turn the CA's rateLimited answer into a crash."""
    later = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
    response = problem_response(
        429, "rateLimited", "slow down", Retry_After=later.strftime("%a %b %e %H:%M:%S %Y")
    )
    with pytest.raises(messages.Error) as caught:
        RetryAfterNetwork._check_response(response)
    error = raised_by_step(caught.value)
    assert error.type == RATE_LIMITED
    assert 58 * 60 < error.details[2] <= 60 * 60


def test_check_response_passes_a_success_through() -> None:
    response = http_response(200, b'{"status": "pending"}', content_type="application/json")
    assert RetryAfterNetwork._check_response(response) is response


def test_check_response_caa_problem_is_final() -> None:
    response = problem_response(403, "caa", "CAA record forbids issuance")
    with pytest.raises(messages.Error) as caught:
        RetryAfterNetwork._check_response(response)
    error = raised_by_step(caught.value, "finalize ACME order")
    assert error.type == ACME_PROBLEM
    assert error.non_retryable
    assert error.details[0] == "caa"
    assert error.message.startswith("finalize ACME order: ")


# --- transport failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError("connection refused"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.SSLError("certificate verify failed"),
    ],
    ids=["refused", "timeout", "tls"],
)
def test_network_failures_are_retryable(failure: requests.RequestException) -> None:
    error = raised_by_step(failure, "fetch ACME directory https://ca.test/dir")
    assert error.type == ACME_UNAVAILABLE
    assert not error.non_retryable
    assert error.message.startswith("fetch ACME directory https://ca.test/dir: ")
    assert str(failure) in error.message


@pytest.mark.parametrize("status", [400, 403, 404, 405])
def test_non_problem_4xx_reply_is_final(status: int) -> None:
    response = http_response(status, b"<html>no</html>", content_type="text/html")
    with pytest.raises(acme_errors.ClientError) as caught:
        RetryAfterNetwork._check_response(response)
    error = raised_by_step(caught.value, "read authorization")
    assert error.type == ACME_PROBLEM
    assert error.non_retryable
    assert error.details[0] == f"http{status}"
    assert f"HTTP {status}" in error.message


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_non_problem_5xx_or_429_reply_is_retryable(status: int) -> None:
    response = http_response(status, b"<html>busy</html>", content_type="text/html")
    with pytest.raises(acme_errors.ClientError) as caught:
        RetryAfterNetwork._check_response(response)
    error = raised_by_step(caught.value)
    assert error.type == ACME_UNAVAILABLE
    assert not error.non_retryable


def test_client_error_carrying_response_and_cause_uses_the_status() -> None:
    """acme raises ClientError((response, error)) for a problem body it cannot parse."""
    body = {"type": "urn:ietf:params:acme:error:malformed", "identifier": "not an object"}
    response = http_response(
        400, json.dumps(body).encode(), content_type="application/problem+json"
    )
    with pytest.raises(acme_errors.ClientError) as caught:
        RetryAfterNetwork._check_response(response)
    assert isinstance(caught.value.args[0], tuple)
    error = raised_by_step(caught.value)
    assert error.type == ACME_PROBLEM
    assert error.non_retryable
    assert error.details[0] == "http400"


def test_client_error_without_response_is_retryable() -> None:
    error = raised_by_step(acme_errors.ClientError("Unexpected response Content-Type: text/html"))
    assert error.type == ACME_UNAVAILABLE
    assert not error.non_retryable


def test_unparseable_reply_is_acme_unavailable() -> None:
    """The errors module promises AcmeUnavailable for 'unparseable replies'.

    A 2xx body that ``acme`` cannot read as its message type raises josepy's
    DeserializationError (e.g. from ``messages.Order.from_json``).
    """
    with pytest.raises(ApplicationError) as caught, acme_step("create ACME order"):
        messages.Order.from_json({"status": "pending", "identifiers": "not a list"})
    assert caught.value.type == ACME_UNAVAILABLE
    assert not caught.value.non_retryable
    assert isinstance(caught.value.__cause__, DeserializationError)


# --- acme_step -----------------------------------------------------------------------------


def test_conflict_error_passes_through_unchanged() -> None:
    conflict = acme_errors.ConflictError("https://ca.test/acme/acct/1")
    with pytest.raises(acme_errors.ConflictError) as caught, acme_step("register account"):
        raise conflict
    assert caught.value is conflict
    assert caught.value.location == "https://ca.test/acme/acct/1"


def test_application_errors_pass_through_unchanged() -> None:
    original = bad_request("the CSR names no identifier")
    with pytest.raises(ApplicationError) as caught, acme_step("check request"):
        raise original
    assert caught.value is original
    assert caught.value.type == BAD_REQUEST
    assert caught.value.non_retryable


def test_programming_errors_are_not_disguised_as_ca_failures() -> None:
    with pytest.raises(KeyError), acme_step("create ACME order"):
        raise KeyError("Location")


def test_classified_error_keeps_the_original_as_its_cause() -> None:
    original = problem("rejectedIdentifier", "Invalid identifier")
    error = raised_by_step(original)
    assert error.__cause__ is original


def test_step_without_failure_returns_normally() -> None:
    with acme_step("read order"):
        value = 1 + 1
    assert value == 2


def test_classify_reraises_what_it_does_not_know() -> None:
    with pytest.raises(ZeroDivisionError):
        classify(ZeroDivisionError("boom"), "anything")
