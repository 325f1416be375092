"""How a Route53 call's failure reads on a Challenge, and whether it is retried.

AWS's own code and message go into the reason, so a person sees what AWS said; throttling,
5xx and an API out of reach are outages (retried), everything else is a refusal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from temporalio.exceptions import ApplicationError

from acmeflow.activities.errors import bad_request
from acmeflow.contracts.errors import BAD_REQUEST

ROUTE53_UNAVAILABLE: Final = "Route53Unavailable"
"""Retryable: the API was out of reach, throttled us, failed (5xx), or kept changing."""
_RETRYABLE_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "PriorRequestNotComplete",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)
MAYBE_A_RACE: Final = frozenset({"InvalidChangeBatch", "InvalidInput"})
"""How Route53 (and moto) refuse a batch whose DELETE no longer matches the set."""


def route53_failure(error: Exception, what: str) -> ApplicationError:
    """The one place a boto error becomes the taxonomy: AWS's code and message, named."""
    if isinstance(error, ClientError):
        details = error_details(error)
        code = details.get("Code") or "Unknown"
        message = details.get("Message") or str(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"route53: {what}: {code}: {message}"
        if code in _RETRYABLE_CODES or status >= 500 or status == 429:
            return ApplicationError(text, code, type=ROUTE53_UNAVAILABLE)
        return ApplicationError(text, code, type=BAD_REQUEST, non_retryable=True)
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return ApplicationError(
            f"route53: {what}: API unreachable: {error}", type=ROUTE53_UNAVAILABLE
        )
    return bad_request(f"route53: {what}: {error}")


@contextlib.contextmanager
def aws_call(what: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise route53_failure(error, what) from error


def error_details(error: ClientError) -> dict[str, str]:
    """AWS's ``Error``; moto words an authentication refusal as ``Errors.Error``."""
    details: Any = error.response.get("Error") or {}
    if not details.get("Code"):
        details = getattr(error, "response", {}).get("Errors", {}).get("Error") or details
    return {str(key): str(value) for key, value in details.items()}


def error_code(error: ClientError) -> str:
    return error_details(error).get("Code", "")
