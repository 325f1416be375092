"""The names of the error types activities raise, as workflows' retry policies see them.

The taxonomy itself, and where each type comes from, is drawn in ``activities/errors.py``.
"""

from __future__ import annotations

from typing import Final

ACME_UNAVAILABLE: Final = "AcmeUnavailable"
BAD_NONCE: Final = "BadNonce"
RATE_LIMITED: Final = "RateLimited"
STILL_WAITING: Final = "StillWaiting"
ACME_PROBLEM: Final = "AcmeProblem"
BAD_REQUEST: Final = "BadRequest"

NON_RETRYABLE_TYPES: Final = (ACME_PROBLEM, BAD_REQUEST)
