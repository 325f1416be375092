"""The CA's renewal advice for one certificate (ARI, RFC 9773), as the workflow asks for it."""

from __future__ import annotations

from dataclasses import dataclass

from acmeflow.contracts.secrets import SecretRef


@dataclass(frozen=True)
class RenewalInfoRequest:
    """Which CA to ask about which certificate, and how to reach and trust that CA.

    ``account_key`` is only a reference: the request is unauthenticated, but the worker's
    ACME client (with its directory cache and TLS settings) is built from the account.
    """

    server: str
    account_key: SecretRef
    certificate_id: str
    """RFC 9773 §4.1: base64url(authority key identifier) ``.`` base64url(serial)."""
    skip_tls_verify: bool = False
    ca_bundle_pem: str = ""


@dataclass(frozen=True)
class RenewalInfo:
    """The CA's suggested window, or why there is none.

    ``offered`` False: the CA's directory has no ``renewalInfo`` (the lifetime rule alone
    applies). ``problem`` set: ARI is offered but could not be read this time; the lifetime
    rule applies and ARI is asked again after ``retry_after_s``.
    """

    offered: bool
    start: str = ""
    end: str = ""
    """The window, RFC 3339 UTC."""
    retry_after_s: float = 0
    """When to ask again: the CA's Retry-After, clamped by the worker."""
    explanation_url: str = ""
    problem: str = ""
