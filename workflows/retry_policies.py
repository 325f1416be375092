"""The retry policies of acmeflow's activities, one per kind of call, named for it.

Errors the taxonomy marks final (``NON_RETRYABLE_TYPES``) are never retried; anything
else retries with back-off until the step's schedule-to-close timeout ends the wait.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from acmeflow.contracts.errors import BAD_REQUEST, NON_RETRYABLE_TYPES


def _until_final(first: timedelta, most: timedelta, *, growth: float = 2.0) -> RetryPolicy:
    """Back-off from ``first`` to ``most``; what the taxonomy calls final is not retried."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=growth,
        maximum_interval=most,
        non_retryable_error_types=list(NON_RETRYABLE_TYPES),
    )


ACME_CALL = _until_final(timedelta(seconds=1), timedelta(seconds=60))
"""A protocol step against the CA: a busy or unreachable CA gets room to recover."""

POLL = _until_final(timedelta(milliseconds=250), timedelta(seconds=5), growth=1.5)
"""Waiting for the CA's verdict (``StillWaiting`` until it has one): noticed within seconds."""

SOLVER = _until_final(timedelta(seconds=1), timedelta(seconds=30))
"""Presenting, self-checking and cleaning up a challenge: DNS servers, routes, token stores."""

KUBERNETES_STEP = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=[BAD_REQUEST],
)
"""A Certificate's step in the cluster (Secrets, Order resources): retried until it works."""

ACCOUNT_REGISTRATION = RetryPolicy(
    maximum_attempts=3, non_retryable_error_types=list(NON_RETRYABLE_TYPES)
)
"""An Issuer's registration: a few tries, then the Issuer says why and its own loop waits."""

DELIVERY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=30),
)
"""A snapshot for the observer: every error retries; the attempt's timeout bounds the wait."""
