"""What a solver publishes: checked against RFC vectors and the ``acme`` package's own code.

The expected values never come from ``acmeflow.activities.challenge_values`` itself: they come from
the RFCs' published examples, from certbot's ``acme.challenges`` and from an RFC 7638
thumbprint computed by hand here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from acme import challenges, messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64encode
from josepy.jwk import JWK, JWKEC, JWKRSA

from acmeflow.activities.acme_answers import authorization_state
from acmeflow.activities.acme_client import generate_account_key, jwk_from_pem
from acmeflow.activities.challenge_values import (
    dns01_record_name,
    dns01_txt_value,
    http01_url_path,
    key_authorization,
)

# RFC 7638 §3.1: the example RSA public key and its JWK thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 8555 §8.3: the HTTP-01 example request path and response body.
RFC8555_TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
RFC8555_THUMBPRINT = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
RFC8555_KEY_AUTHORIZATION = (
    "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)


def b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def rfc7638_thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 of the required members, sorted, without whitespace."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[public_jwk["kty"]]
    canonical = json.dumps(
        {member: public_jwk[member] for member in required},
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url_nopad(hashlib.sha256(canonical.encode()).digest())


def rfc7638_public_key() -> JWK:
    """The RFC 7638 example key as a josepy JWK, built from its modulus and exponent."""

    def number(member: str) -> int:
        value = RFC7638_JWK[member]
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    return JWKRSA(key=rsa.RSAPublicNumbers(number("e"), number("n")).public_key())


def thumbprint_of(jwk: JWK) -> str:
    """How acmeflow derives the account thumbprint it hands to ``key_authorization``."""
    return str(b64encode(jwk.public_key().thumbprint()).decode())


@pytest.fixture(params=["ec-p256", "rsa-2048"])
def account_jwk(request: pytest.FixtureRequest) -> JWK:
    if request.param == "ec-p256":
        return JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    return JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


def test_rfc7638_example_thumbprint() -> None:
    assert rfc7638_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    public = rfc7638_public_key()
    assert thumbprint_of(public) == RFC7638_THUMBPRINT


def test_rfc8555_http01_example_key_authorization() -> None:
    assert key_authorization(RFC8555_TOKEN, RFC8555_THUMBPRINT) == RFC8555_KEY_AUTHORIZATION
    assert http01_url_path(RFC8555_TOKEN) == (
        "/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
    )


def test_rfc7638_key_authorization_and_txt_value_match_acme() -> None:
    token = b"\x01\x02\x03 a fixed token of the RFC 7638 example \xfe\xff"
    token_b64 = b64url_nopad(token)
    public = rfc7638_public_key()
    key_authz = key_authorization(token_b64, RFC7638_THUMBPRINT)
    assert key_authz == f"{token_b64}.{RFC7638_THUMBPRINT}"
    assert key_authz == challenges.HTTP01(token=token).key_authorization(public)
    expected_txt = b64url_nopad(hashlib.sha256(key_authz.encode("ascii")).digest())
    assert dns01_txt_value(key_authz) == expected_txt
    assert dns01_txt_value(key_authz) == challenges.DNS01(token=token).validation(public)


def test_key_authorization_matches_acme_for_a_generated_account_key(
    account_jwk: JWK,
) -> None:
    token = b"0123456789abcdef0123456789abcdef"
    token_b64 = b64url_nopad(token)
    key_authz = key_authorization(token_b64, thumbprint_of(account_jwk))
    assert key_authz == challenges.HTTP01(token=token).key_authorization(account_jwk)
    public_json = account_jwk.public_key().to_json()
    assert key_authz.split(".", 1)[1] == rfc7638_thumbprint(public_json)


def test_dns01_txt_value_matches_acme_for_a_generated_account_key(
    account_jwk: JWK,
) -> None:
    token = b"\xfa\xfb\xfc\xfd token bytes that need url-safe base64 \xfe\xff"
    key_authz = key_authorization(b64url_nopad(token), thumbprint_of(account_jwk))
    value = dns01_txt_value(key_authz)
    assert value == challenges.DNS01(token=token).validation(account_jwk)
    # base64url of a 32-byte digest, unpadded: 43 characters, no '=', '+' or '/'.
    assert len(value) == 43
    assert not set(value) & set("=+/")


def test_account_key_loaded_from_pem_gives_the_acme_key_authorization() -> None:
    """The worker's own account-key path (PEM -> JWK -> thumbprint) agrees with acme."""
    jwk, _ = jwk_from_pem(generate_account_key())
    token = b"a token for the worker's account key"
    key_authz = key_authorization(b64url_nopad(token), thumbprint_of(jwk))
    assert key_authz == challenges.HTTP01(token=token).key_authorization(jwk)


def test_http01_path_matches_acme() -> None:
    token = b"\xfb\xff token with url-unsafe base64"
    token_b64 = b64url_nopad(token)
    assert http01_url_path(token_b64) == challenges.HTTP01(token=token).path


@pytest.mark.parametrize(
    ("dns_name", "expected"),
    [
        ("test1.example.com", "_acme-challenge.test1.example.com."),
        ("example.com", "_acme-challenge.example.com."),
        ("example.com.", "_acme-challenge.example.com."),
        # A wildcard shares its apex's record name (RFC 8555 §8.4).
        ("*.example.com", "_acme-challenge.example.com."),
    ],
)
def test_dns01_record_name(dns_name: str, expected: str) -> None:
    assert dns01_record_name(dns_name) == expected
    base = dns_name.removeprefix("*.").rstrip(".")
    assert dns01_record_name(dns_name) == challenges.DNS01().validation_domain_name(base) + "."


def test_challenge_key_is_key_authorization_for_http01_and_txt_value_for_dns01() -> None:
    """The Challenge's ``key``: HTTP-01 serves the key authorization, DNS-01 its digest."""
    jwk = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    http_token, dns_token = b"http token bytes..", b"dns token bytes..."
    body = {
        "identifier": {"type": "dns", "value": "test1.example.com"},
        "status": "pending",
        "challenges": [
            {
                "type": "http-01",
                "url": "https://ca.test/chall/1",
                "token": b64url_nopad(http_token),
                "status": "pending",
            },
            {
                "type": "dns-01",
                "url": "https://ca.test/chall/2",
                "token": b64url_nopad(dns_token),
                "status": "pending",
            },
            {
                "type": "tls-alpn-01",
                "url": "https://ca.test/chall/3",
                "token": b64url_nopad(b"tls-alpn token bytes"),
                "status": "pending",
            },
        ],
    }
    authorization = messages.Authorization.from_json(body)
    state = authorization_state("https://ca.test/authz/1", authorization, thumbprint_of(jwk))
    offers = {offer.type: offer for offer in state.challenges}
    assert set(offers) == {"HTTP-01", "DNS-01"}
    assert offers["HTTP-01"].key == challenges.HTTP01(token=http_token).key_authorization(jwk)
    assert offers["DNS-01"].key == challenges.DNS01(token=dns_token).validation(jwk)
    assert offers["DNS-01"].url == "https://ca.test/chall/2"
    assert state.dns_name == "test1.example.com"
