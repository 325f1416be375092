"""The activity boundary counts each classified failure, and the CA's Retry-After waits.

Pebble cannot be made to answer ``rateLimited``, so the rate-limit counter is proven here:
real ``acme_step`` calls inside ``ActivityEnvironment``, whose metric meter is a Temporal
``Runtime`` recording into a ``MetricBuffer``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from acme import messages
from temporalio.exceptions import ApplicationError
from temporalio.runtime import BUFFERED_METRIC_KIND_COUNTER, MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from acmeflow.activities.acme_client import RetryAfterNetwork
from acmeflow.activities.errors import (
    ACME_ERRORS_METRIC,
    ACME_UNAVAILABLE,
    RATE_LIMIT_WAIT_METRIC,
    RATE_LIMITED,
    acme_step,
    rate_limit_wait_seconds,
)
from acmeflow.activities.errors import rate_limited as rate_limited_error
from tests.unit.test_errors import problem, problem_response


class Recorded:
    """Counter totals by (name, problem label) since the last look."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer

    def take(self) -> Counter[tuple[str, str]]:
        totals: Counter[tuple[str, str]] = Counter()
        for update in self._buffer.retrieve_updates():
            if update.metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                label = str(update.attributes.get("problem", ""))
                totals[(update.metric.name, label)] += int(update.value)
        return totals


@pytest.fixture(scope="module")
def buffered() -> Iterator[tuple[Runtime, Recorded]]:
    buffer = MetricBuffer(10_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    yield runtime, Recorded(buffer)


@pytest.fixture
def recorded(buffered: tuple[Runtime, Recorded]) -> Recorded:
    _, recorded = buffered
    recorded.take()  # what earlier tests left
    return recorded


@pytest.fixture
def environment(buffered: tuple[Runtime, Recorded]) -> ActivityEnvironment:
    runtime, _ = buffered
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter
    return env


def failing_step(error: Exception) -> None:
    with acme_step("create ACME order"):
        raise error


def raised_in_activity(env: ActivityEnvironment, error: Exception) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        env.run(failing_step, error)
    return caught.value


def rate_limited(retry_after: str | None) -> messages.Error:
    """The problem as the network layer raises it, Retry-After kept."""
    headers = {"Retry_After": retry_after} if retry_after else {}
    response = problem_response(429, "rateLimited", "too many new orders recently", **headers)
    with pytest.raises(messages.Error) as caught:
        RetryAfterNetwork._check_response(response)
    return caught.value


def test_a_rate_limit_counts_the_retry_after_the_ca_imposed(
    environment: ActivityEnvironment, recorded: Recorded
) -> None:
    error = raised_in_activity(environment, rate_limited("1800"))
    assert error.type == RATE_LIMITED
    assert recorded.take() == {
        (ACME_ERRORS_METRIC, "rateLimited"): 1,
        (RATE_LIMIT_WAIT_METRIC, ""): 1800,
    }


def test_a_rate_limit_without_retry_after_counts_the_default_wait(
    environment: ActivityEnvironment, recorded: Recorded
) -> None:
    raised_in_activity(environment, rate_limited(None))
    raised_in_activity(environment, rate_limited("30"))
    assert recorded.take() == {
        (ACME_ERRORS_METRIC, "rateLimited"): 2,
        (RATE_LIMIT_WAIT_METRIC, ""): 60 + 30,
    }


def test_a_problem_is_counted_by_its_rfc8555_code(
    environment: ActivityEnvironment, recorded: Recorded
) -> None:
    raised_in_activity(environment, problem("rejectedIdentifier", "blocked.test is refused"))
    raised_in_activity(environment, problem("caa", "CAA forbids this CA"))
    assert recorded.take() == {
        (ACME_ERRORS_METRIC, "rejectedIdentifier"): 1,
        (ACME_ERRORS_METRIC, "caa"): 1,
    }


def test_a_failure_without_a_problem_document_is_counted_by_its_type(
    environment: ActivityEnvironment, recorded: Recorded
) -> None:
    error = raised_in_activity(environment, requests.exceptions.ConnectionError("refused"))
    assert error.type == ACME_UNAVAILABLE
    assert recorded.take() == {(ACME_ERRORS_METRIC, ACME_UNAVAILABLE): 1}


def test_outside_an_activity_nothing_is_counted(recorded: Recorded) -> None:
    with pytest.raises(ApplicationError):
        failing_step(problem("rejectedIdentifier"))
    assert recorded.take() == {}


def test_rate_limit_wait_rounds_up_and_ignores_other_errors() -> None:
    waiting = rate_limited_error("x", detail="slow down", wait=timedelta(seconds=1.2))
    assert rate_limit_wait_seconds(waiting) == 2
    assert rate_limit_wait_seconds(ApplicationError("x", type=RATE_LIMITED)) == 0
    still = ApplicationError("x", type="StillWaiting", next_retry_delay=timedelta(seconds=5))
    assert rate_limit_wait_seconds(still) == 0
