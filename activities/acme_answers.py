"""The CA's answers as contract values, and the answer acmeflow sends to a challenge.

Pure functions over the ``acme`` package's typed messages (``messages.Order``,
``messages.Authorization``, ``messages.ChallengeBody``): no network, so they are tested
with vectors. Statuses become the ``StrEnum``s of ``acmeflow.contracts.states``; a
challenge type acmeflow cannot solve (``tls-alpn-01``) is left out of the offers.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, TypeVar

import requests
from acme import challenges, messages
from cryptography import x509
from temporalio.exceptions import ApplicationError

from acmeflow.activities.challenge_values import dns01_txt_value, key_authorization
from acmeflow.activities.errors import bad_request
from acmeflow.contracts.acme import AcmeOrderState, AuthorizationState, ChallengeOffer
from acmeflow.contracts.errors import ACME_UNAVAILABLE
from acmeflow.contracts.states import AuthorizationStatus, ChallengeState, ChallengeType, OrderState

_State = TypeVar("_State", bound=StrEnum)

RESPONSE_TYPES: Final[
    Mapping[ChallengeType, type[challenges.KeyAuthorizationChallengeResponse]]
] = {
    ChallengeType.HTTP01: challenges.HTTP01Response,
    ChallengeType.DNS01: challenges.DNS01Response,
}
"""What acmeflow posts to accept a challenge of each type (RFC 8555 §7.5.1)."""


def acme_status(status: messages.Status | None, states: type[_State]) -> _State:
    """The CA's status as one of ``states``; a status RFC 8555 does not know is retried."""
    name = status.name if status is not None else ""
    try:
        return states(name)
    except ValueError as error:
        raise ApplicationError(
            f"the CA answered a status acmeflow does not know: {name!r}", type=ACME_UNAVAILABLE
        ) from error


def problem_text(problem: messages.Error | None) -> str:
    """``code: detail`` of a problem document, or empty when there is none."""
    if problem is None:
        return ""
    typ = "" if problem.typ in (None, "about:blank") else str(problem.typ)
    code = typ.rsplit(":", 1)[-1]
    detail = problem.detail or ""
    return f"{code}: {detail}" if code else detail


def order_state(url: str, order: messages.Order) -> AcmeOrderState:
    return AcmeOrderState(
        url=url,
        status=acme_status(order.status, OrderState),
        finalize_url=order.finalize or "",
        authorization_urls=[str(u) for u in order.authorizations or ()],
        certificate_url=order.certificate or "",
        problem=problem_text(order.error),
    )


def challenge_type(challenge: messages.ChallengeBody) -> ChallengeType | None:
    """The type of a challenge acmeflow can solve; None for any other."""
    chall = challenge.chall
    if not isinstance(chall, challenges.KeyAuthorizationChallenge):
        return None
    return ChallengeType.from_acme_name(chall.typ)


def challenge_token(challenge: messages.ChallengeBody) -> str:
    return str(challenge.chall.encode("token"))


def challenge_offer(challenge: messages.ChallengeBody, thumbprint: str) -> ChallengeOffer | None:
    """What to publish for one challenge: HTTP-01 the key authorization, DNS-01 its digest."""
    ours = challenge_type(challenge)
    if ours is None:
        return None
    token = challenge_token(challenge)
    key_authz = key_authorization(token, thumbprint)
    return ChallengeOffer(
        url=challenge.uri,
        type=ours,
        token=token,
        key=key_authz if ours is ChallengeType.HTTP01 else dns01_txt_value(key_authz),
        status=acme_status(challenge.status, ChallengeState),
    )


def authorization_state(
    url: str, authorization: messages.Authorization, thumbprint: str
) -> AuthorizationState:
    offers = []
    problems = []
    for challenge in authorization.challenges or ():
        if challenge.error is not None:
            problems.append(problem_text(challenge.error))
        offer = challenge_offer(challenge, thumbprint)
        if offer is not None:
            offers.append(offer)
    identifier = authorization.identifier
    return AuthorizationState(
        url=url,
        dns_name=str(identifier.value) if identifier is not None else "",
        wildcard=bool(authorization.wildcard),
        status=acme_status(authorization.status, AuthorizationStatus),
        challenges=offers,
        problem="; ".join(problems),
    )


def challenge_response(
    challenge: messages.ChallengeBody, thumbprint: str
) -> challenges.KeyAuthorizationChallengeResponse:
    """The response object of the challenge's own type, carrying its key authorization."""
    ours = challenge_type(challenge)
    if ours is None:
        raise bad_request(f"acmeflow answers only HTTP-01 and DNS-01, not {challenge.uri}")
    return RESPONSE_TYPES[ours](
        key_authorization=key_authorization(challenge_token(challenge), thumbprint)
    )


def alternate_links(response: requests.Response) -> list[str]:
    """Every ``rel="alternate"`` Link (``response.links`` keeps only one per relation)."""
    links = requests.utils.parse_header_links(response.headers.get("Link", ""))
    return [link["url"] for link in links if link.get("rel") == "alternate" and "url" in link]


def top_issuer_common_name(chain_pem: str) -> str:
    """Common name of the issuer of the chain's last certificate (cert-manager's rule)."""
    certs = x509.load_pem_x509_certificates(chain_pem.encode())
    if not certs:
        return ""
    names = certs[-1].issuer.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
