"""The states of the ACME objects (RFC 8555 §7.1.6) and the challenge types acmeflow solves."""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    """An Order's ``status.state``: the CA's order status, or ``errored`` when acmeflow gave up."""

    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"
    ERRORED = "errored"

    @property
    def final(self) -> bool:
        return self in FINAL_ORDER_STATES


FINAL_ORDER_STATES = frozenset(
    {OrderState.VALID, OrderState.INVALID, OrderState.EXPIRED, OrderState.ERRORED}
)


class AuthorizationStatus(StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ChallengeState(StrEnum):
    """A Challenge's ``status.state``: the CA's challenge status as acmeflow last saw it."""

    PENDING = "pending"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


class ChallengeType(StrEnum):
    """Spelled as in a Challenge's ``spec.type``; ``acme_name`` is RFC 8555's spelling."""

    HTTP01 = "HTTP-01"
    DNS01 = "DNS-01"

    @property
    def acme_name(self) -> str:
        return self.value.lower()

    @classmethod
    def from_acme_name(cls, name: str) -> ChallengeType | None:
        """The type the CA calls ``name`` (``http-01``), or None for one acmeflow can't solve."""
        return next((member for member in cls if member.acme_name == name), None)
