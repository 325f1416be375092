"""The ACME protocol steps' inputs and the CA's answers, as activities exchange them."""

from __future__ import annotations

from dataclasses import dataclass, field

from acmeflow.contracts.issuer import AccountRef
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.states import (
    AuthorizationStatus,
    ChallengeState,
    ChallengeType,
    OrderState,
)


@dataclass(frozen=True)
class CheckRequestInput:
    csr_pem: str
    names: RequestedNames


@dataclass(frozen=True)
class AcmeResource:
    """A URL on the CA, and the account that may read or change it."""

    account: AccountRef
    url: str


@dataclass(frozen=True)
class CreateOrderInput:
    account: AccountRef
    csr_pem: str
    profile: str = ""
    replaces: str = ""
    """ARI identifier of the certificate this order renews (RFC 9773 ``replaces``)."""
    look_first: bool = False
    """An earlier try may have created the order (it was rate-limited after): find it first."""


@dataclass(frozen=True)
class FinalizeInput:
    order: AcmeResource
    csr_pem: str


@dataclass(frozen=True)
class DownloadInput:
    certificate: AcmeResource
    preferred_chain: str = ""
    """The top issuer's common name to prefer among the CA's alternate chains."""


@dataclass(frozen=True)
class AcmeOrderState:
    """The CA's view of an order; ``status`` is never ``errored`` (that is acmeflow's verdict)."""

    url: str
    status: OrderState
    finalize_url: str
    authorization_urls: list[str]
    certificate_url: str = ""
    problem: str = ""


@dataclass(frozen=True)
class ChallengeOffer:
    """One way the CA offers to validate an authorization, with what to publish for it."""

    url: str
    type: ChallengeType
    token: str
    key: str
    status: ChallengeState = ChallengeState.PENDING


@dataclass(frozen=True)
class AuthorizationState:
    """The CA's view of an authorization."""

    url: str
    dns_name: str
    wildcard: bool
    status: AuthorizationStatus
    challenges: list[ChallengeOffer] = field(default_factory=list)
    problem: str = ""
