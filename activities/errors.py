"""One error taxonomy, decided once at the activity boundary.

Every exception an activity lets out is an ``ApplicationError`` whose ``type`` is one of
the names below; the workflow never inspects ``acme`` or ``requests`` exceptions::

    retryable (Temporal retries by the activity's policy)
    ├── AcmeUnavailable   5xx, connection/timeouts, TLS, unparseable replies
    ├── BadNonce          badNonce after the acme client's own single retry
    └── StillWaiting      a poll found the authorization/order not finished yet
    not retried by Temporal; the workflow waits (details: [code, detail, wait_s])
    └── RateLimited       rateLimited: the workflow sleeps the CA's Retry-After on a
                          durable timer, however long, then runs the step again
    non-retryable (the workflow ends the order with the message as its reason)
    ├── AcmeProblem       any other ACME problem document (details: [code, detail])
    └── BadRequest        our input is wrong: CSR vs names, missing secret, bad config

``details[0]`` of an ``AcmeProblem`` is the RFC 8555 problem code (``rejectedIdentifier``,
``caa``, ``malformed``, ``unauthorized`` ...) so the reason can name it.

A rate limit is not an activity retry because Temporal never schedules a retry beyond the
step's schedule-to-close timeout, and a CA's Retry-After is often hours: the step's
timeout bounds retrying an unreachable CA, never a wait the CA asked for.

Each classification inside an activity is counted once, here:
``acmeflow_acme_errors_total{problem}`` (the problem code, or the taxonomy type when the CA
sent no problem document) and ``acmeflow_rate_limit_wait_seconds_total`` (the wait a
``RateLimited`` answer imposes: the CA's Retry-After, else the default).
"""

from __future__ import annotations

import contextlib
import datetime
import math
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Final

import requests
from acme import errors as acme_errors
from acme import messages
from josepy.errors import DeserializationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from acmeflow.contracts.errors import (
    ACME_PROBLEM,
    ACME_UNAVAILABLE,
    BAD_NONCE,
    BAD_REQUEST,
    RATE_LIMITED,
    STILL_WAITING,
)

DEFAULT_RATE_LIMIT_DELAY: Final = datetime.timedelta(seconds=60)

ACME_ERRORS_METRIC: Final = "acmeflow_acme_errors"
RATE_LIMIT_WAIT_METRIC: Final = "acmeflow_rate_limit_wait_seconds"


def bad_request(message: str) -> ApplicationError:
    return ApplicationError(message, type=BAD_REQUEST, non_retryable=True)


def still_waiting(message: str, retry_after: datetime.timedelta | None = None) -> ApplicationError:
    return ApplicationError(message, type=STILL_WAITING, next_retry_delay=retry_after)


def retry_after_delay(
    header: str | None, now: datetime.datetime | None = None
) -> datetime.timedelta | None:
    """Parse a Retry-After header (seconds or HTTP date) into a delay; None if unreadable."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        try:
            return datetime.timedelta(seconds=int(header))
        except OverflowError:  # beyond datetime's range: unreadable, not forever
            return None
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # asctime dates carry no zone; HTTP dates are UTC
        when = when.replace(tzinfo=datetime.UTC)
    now = now or datetime.datetime.now(datetime.UTC)
    return max(datetime.timedelta(0), when - now)


def rate_limited(message: str, *, detail: str, wait: datetime.timedelta) -> ApplicationError:
    """The CA asked to come back after ``wait``: the workflow waits, not Temporal's retry."""
    return ApplicationError(
        message,
        "rateLimited",
        detail,
        math.ceil(wait.total_seconds()),
        type=RATE_LIMITED,
        non_retryable=True,
    )


def classify_problem(
    problem: messages.Error, retry_after: datetime.timedelta | None
) -> ApplicationError:
    code = problem.code or str(problem.typ or "unknown").rsplit(":", 1)[-1]
    detail = problem.detail or problem.description or code
    message = f"ACME server refused the request ({code}): {detail}"
    if code == "badNonce":
        return ApplicationError(message, code, type=BAD_NONCE)
    if code == "rateLimited":
        wait = DEFAULT_RATE_LIMIT_DELAY if retry_after is None else retry_after
        return rate_limited(message, detail=str(detail), wait=wait)
    if code == "serverInternal":
        return ApplicationError(message, code, type=ACME_UNAVAILABLE)
    return ApplicationError(message, code, str(detail), type=ACME_PROBLEM, non_retryable=True)


def classify(error: BaseException, action: str) -> ApplicationError:
    """Turn whatever ``acme``/``requests`` raised while doing ``action`` into the taxonomy."""
    if isinstance(error, ApplicationError):
        return error
    if isinstance(error, messages.Error):
        classified = classify_problem(error, getattr(error, "retry_after", None))
        return ApplicationError(
            f"{action}: {classified.message}",
            *classified.details,
            type=classified.type,
            non_retryable=classified.non_retryable,
            next_retry_delay=classified.next_retry_delay,
        )
    if isinstance(error, requests.exceptions.RequestException):
        return ApplicationError(
            f"{action}: ACME server unreachable: {error}", type=ACME_UNAVAILABLE
        )
    if isinstance(error, acme_errors.ClientError):
        response = error.args[0] if error.args else None
        if isinstance(response, tuple):
            response = response[0]
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and status != 429:
            return ApplicationError(
                f"{action}: ACME server answered HTTP {status}",
                f"http{status}",
                type=ACME_PROBLEM,
                non_retryable=True,
            )
        return ApplicationError(f"{action}: unexpected ACME reply: {error}", type=ACME_UNAVAILABLE)
    if isinstance(error, DeserializationError):
        return ApplicationError(f"{action}: unparseable ACME reply: {error}", type=ACME_UNAVAILABLE)
    if isinstance(error, acme_errors.Error):
        return ApplicationError(f"{action}: {error}", type=ACME_UNAVAILABLE)
    raise error


def problem_label(error: BaseException, classified: ApplicationError) -> str:
    """The RFC 8555 problem code of a problem document; the taxonomy type otherwise."""
    if isinstance(error, messages.Error) and classified.details:
        return str(classified.details[0])
    return classified.type or ACME_UNAVAILABLE


def rate_limit_wait_seconds(classified: ApplicationError) -> int:
    """Whole seconds a ``RateLimited`` answer asks to wait (rounded up); 0 for anything else."""
    if classified.type != RATE_LIMITED or len(classified.details) < 3:
        return 0
    return int(classified.details[2])


def count_acme_error(error: BaseException, classified: ApplicationError) -> None:
    """Count one classified failure on the activity's meter; nothing outside an activity."""
    if not activity.in_activity():
        return
    meter = activity.metric_meter()
    meter.create_counter(
        ACME_ERRORS_METRIC, "ACME failures by RFC 8555 problem code or error type"
    ).with_additional_attributes({"problem": problem_label(error, classified)}).add(1)
    wait = rate_limit_wait_seconds(classified)
    if wait:
        meter.create_counter(
            RATE_LIMIT_WAIT_METRIC, "Seconds of Retry-After delay the CA imposed", "s"
        ).add(wait)


@contextlib.contextmanager
def acme_step(action: str) -> Iterator[None]:
    """Run one ACME protocol step, re-raising failures in the taxonomy.

    ``ConflictError`` passes through: for new-account it means "exists", an answer.
    """
    try:
        yield
    except acme_errors.ConflictError:
        raise
    except (
        messages.Error,
        requests.exceptions.RequestException,
        acme_errors.Error,
        DeserializationError,
    ) as error:
        classified = classify(error, action)
        count_acme_error(error, classified)
        raise classified from error
