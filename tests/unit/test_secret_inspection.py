"""Vectors for the verdict on a TLS Secret's data: each way it can be no good, by reason."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from acmeflow.activities.csr import PrivateKey, generate_private_key, private_key_pem
from acmeflow.activities.secret_inspection import (
    inspect_key_pair,
    issued_by_another_issuer,
    secret_missing,
)
from acmeflow.contracts.names import RequestedNames

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
WANTED = RequestedNames(dns_names=["www.example.com", "example.com"])


def _certificate(key: PrivateKey, names: list[str], *, days: int = 30) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


KEY = generate_private_key("ECDSA")
GOOD = _certificate(KEY, ["example.com", "WWW.example.com"])


def test_a_matching_key_pair_for_the_names_is_up_to_date() -> None:
    found = inspect_key_pair(GOOD, private_key_pem(KEY), WANTED, now=NOW)
    assert (found.up_to_date, found.violation, found.not_after) == (
        True,
        "",
        "2026-07-01T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("chain", "key", "violation", "said"),
    [
        (b"", private_key_pem(KEY), "MissingData", "has no tls.crt"),
        (GOOD, b"", "MissingData", "has no tls.key"),
        (b"garbage", b"garbage", "InvalidCertificate", "tls.crt holds no certificate"),
        (GOOD, b"garbage", "InvalidKeyPair", "tls.key holds no private key"),
        (
            GOOD,
            private_key_pem(generate_private_key("ECDSA")),
            "InvalidKeyPair",
            "not the key of its certificate",
        ),
        (
            _certificate(KEY, ["example.com", "other.example.com"]),
            private_key_pem(KEY),
            "SecretMismatch",
            "lacks www.example.com; also names other.example.com",
        ),
        (
            _certificate(KEY, ["example.com", "www.example.com"], days=-1),
            private_key_pem(KEY),
            "Expired",
            "expired at",
        ),
    ],
    ids=["no-crt", "no-key", "garbage", "garbage-key", "other-key", "other-names", "expired"],
)
def test_a_secret_that_is_no_good_says_why(
    chain: bytes, key: bytes, violation: str, said: str
) -> None:
    found = inspect_key_pair(chain, key, WANTED, now=NOW)
    assert not found.up_to_date
    assert found.violation == violation
    assert found.reason.startswith("Issuing certificate as ")
    assert said in found.reason


def test_a_missing_secret_is_named() -> None:
    found = secret_missing("web-tls")
    assert (found.up_to_date, found.violation) == (False, "DoesNotExist")
    assert found.reason == 'Issuing certificate as Secret "web-tls" does not exist'


def test_a_secret_from_another_issuer_is_reissued_and_an_unrecorded_one_is_not() -> None:
    """IncorrectIssuer only where the Secret recorded its issuer's kind (written since)."""
    recorded = {
        "acmeflow.io/issuer-name": "pebble",
        "acmeflow.io/issuer-kind": "Issuer",
        "acmeflow.io/issuer-group": "acmeflow.io",
    }
    same = {"name": "pebble", "kind": "Issuer", "group": "acmeflow.io"}
    assert issued_by_another_issuer(recorded, same) is None
    assert issued_by_another_issuer(recorded, {"name": "pebble"}) is None
    moved = issued_by_another_issuer(recorded, {"name": "pebble", "kind": "ClusterIssuer"})
    assert moved is not None
    assert moved.violation == "IncorrectIssuer"
    assert moved.reason == "Issuing certificate as Secret was previously issued by " + (
        "Issuer.acmeflow.io/pebble"
    )
    legacy = {"acmeflow.io/issuer-name": "Issuer ns/pebble"}
    assert issued_by_another_issuer(legacy, {"name": "other"}) is None
