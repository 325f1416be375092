"""What the ACME steps send the CA, with a recording stand-in for the ``acme`` client.

The real-stack order tests (tests/orders) run every step against Pebble, which accepts an
answer of the wrong type as well; these pin down what Pebble would not notice: which
response object answers a challenge, and that its key authorization is the account's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from acme import challenges, messages
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.b64 import b64encode
from josepy.jwk import JWKEC
from temporalio.exceptions import ApplicationError

from acmeflow.activities.acme_answers import (
    alternate_links,
    authorization_state,
    order_state,
)
from acmeflow.activities.acme_client import Account
from acmeflow.activities.acme_order import AcmeOrderActivities
from acmeflow.activities.errors import BAD_REQUEST
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.acme import AcmeResource
from acmeflow.contracts.issuer import AccountRef
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import AuthorizationStatus, ChallengeType, OrderState
from tests.unit.test_errors import http_response

CHALLENGE_URL = "https://ca.test/chall/1"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
ACCOUNT_KEY = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
THUMBPRINT = b64encode(ACCOUNT_KEY.public_key().thumbprint()).decode()
ACCOUNT = AccountRef(
    server="https://ca.test/dir",
    account_key=SecretRef(path="/nonexistent/account.pem"),
    account_uri="https://ca.test/acct/1",
)


def json_response(body: dict[str, Any]) -> requests.Response:
    return http_response(200, json.dumps(body).encode(), content_type="application/json")


class RecordingClient:
    """Serves canned resources to POST-as-GET and records every challenge answer."""

    def __init__(self, resources: dict[str, dict[str, Any]]) -> None:
        self._resources = resources
        self.answered: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]] = []

    def _post_as_get(self, url: str) -> requests.Response:
        return json_response(self._resources[url])

    def answer_challenge(
        self, challenge: messages.ChallengeBody, response: challenges.ChallengeResponse
    ) -> None:
        self.answered.append((challenge, response))


class OneAccount:
    """Stands in for ``AcmeClients``: every reference is the same ready account."""

    def __init__(self, client: RecordingClient) -> None:
        self._account = Account(client=client, uri=ACCOUNT.account_uri, thumbprint=THUMBPRINT)

    def account(self, ref: AccountRef) -> Account:
        return self._account


def accept(challenge: dict[str, Any]) -> RecordingClient:
    client = RecordingClient({CHALLENGE_URL: challenge})
    steps = AcmeOrderActivities(OneAccount(client), SecretStore())
    steps.accept_challenge(AcmeResource(account=ACCOUNT, url=CHALLENGE_URL))
    return client


def challenge_json(acme_type: str, status: str = "pending") -> dict[str, Any]:
    return {"type": acme_type, "url": CHALLENGE_URL, "token": TOKEN, "status": status}


@pytest.mark.parametrize(
    ("acme_type", "response_type", "challenge_type"),
    [
        ("http-01", challenges.HTTP01Response, challenges.HTTP01),
        ("dns-01", challenges.DNS01Response, challenges.DNS01),
    ],
)
def test_a_challenge_is_answered_with_the_response_of_its_own_type(
    acme_type: str, response_type: type, challenge_type: type
) -> None:
    client = accept(challenge_json(acme_type))
    [(challenge, response)] = client.answered
    assert challenge.uri == CHALLENGE_URL
    assert isinstance(challenge.chall, challenge_type)
    assert type(response) is response_type
    # acme's own check: the key authorization belongs to this challenge and this account key.
    assert response.verify(challenge.chall, ACCOUNT_KEY.public_key())
    assert response.to_partial_json() == {}  # RFC 8555 §7.5.1: the body is an empty object


@pytest.mark.parametrize("status", ["processing", "valid", "invalid"])
def test_a_challenge_past_pending_is_not_answered_again(status: str) -> None:
    assert accept(challenge_json("dns-01", status)).answered == []


def test_a_challenge_type_acmeflow_cannot_solve_is_refused_not_answered() -> None:
    with pytest.raises(ApplicationError) as caught:
        accept(challenge_json("tls-alpn-01"))
    assert caught.value.type == BAD_REQUEST
    assert caught.value.non_retryable
    assert "HTTP-01 and DNS-01" in caught.value.message


def test_an_order_reads_its_status_urls_and_problem() -> None:
    order = messages.Order.from_json(
        {
            "status": "invalid",
            "identifiers": [{"type": "dns", "value": "a.example.com"}],
            "authorizations": ["https://ca.test/authz/1", "https://ca.test/authz/2"],
            "finalize": "https://ca.test/finalize/1",
            "error": {
                "type": "urn:ietf:params:acme:error:unauthorized",
                "detail": "no TXT record found",
            },
        }
    )
    state = order_state("https://ca.test/order/1", order)
    assert state.status is OrderState.INVALID
    assert state.authorization_urls == ["https://ca.test/authz/1", "https://ca.test/authz/2"]
    assert state.finalize_url == "https://ca.test/finalize/1"
    assert state.certificate_url == ""
    assert state.problem == "unauthorized: no TXT record found"


def test_a_failed_challenge_explains_its_authorization() -> None:
    authorization = messages.Authorization.from_json(
        {
            "identifier": {"type": "dns", "value": "example.com"},
            "wildcard": True,
            "status": "invalid",
            "challenges": [
                challenge_json("dns-01", "invalid")
                | {
                    "error": {
                        "type": "urn:ietf:params:acme:error:dns",
                        "detail": "NXDOMAIN looking up TXT",
                    }
                }
            ],
        }
    )
    state = authorization_state("https://ca.test/authz/1", authorization, THUMBPRINT)
    assert state.status is AuthorizationStatus.INVALID
    assert (state.dns_name, state.wildcard) == ("example.com", True)
    assert [offer.type for offer in state.challenges] == [ChallengeType.DNS01]
    assert state.problem == "dns: NXDOMAIN looking up TXT"


def test_every_alternate_chain_link_is_kept() -> None:
    response = http_response(
        200,
        headers={
            "Link": '<https://ca.test/cert/1/1>;rel="alternate", '
            '<https://ca.test/dir>;rel="index", <https://ca.test/cert/1/2>;rel="alternate"'
        },
    )
    assert alternate_links(response) == ["https://ca.test/cert/1/1", "https://ca.test/cert/1/2"]
    assert alternate_links(http_response(200)) == []
