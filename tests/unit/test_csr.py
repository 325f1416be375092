"""Private keys and CSRs, and the check that a CSR asks for exactly the order's names."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from temporalio.exceptions import ApplicationError

from acmeflow.activities.csr import (
    PrivateKey,
    build_csr,
    check_csr_matches,
    generate_private_key,
    key_matches,
    load_private_key,
    private_key_der,
    private_key_pem,
)
from acmeflow.activities.errors import BAD_REQUEST
from acmeflow.contracts.names import RequestedNames
from acmeflow.crds.order_requests import csr_identifiers

P256_KEY = ec.generate_private_key(ec.SECP256R1())


def assert_bad_request(caught: pytest.ExceptionInfo[ApplicationError], *fragments: str) -> None:
    """A non-retryable BadRequest whose message names every fragment."""
    error = caught.value
    assert error.type == BAD_REQUEST
    assert error.non_retryable
    for fragment in fragments:
        assert fragment in error.message, f"{fragment!r} not in {error.message!r}"


def foreign_csr(
    *,
    common_name: str = "",
    dns_names: list[str] | None = None,
    ips: list[str] | None = None,
    san: bool = True,
) -> str:
    """A CSR as another tool (openssl, a user) would send it: built here, not by acmeflow."""
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if san:
        general: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names or []]
        general += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    csr = builder.sign(P256_KEY, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# --- keys ----------------------------------------------------------------------------------


def test_default_key_is_ecdsa_p256() -> None:
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"


@pytest.mark.parametrize(
    ("size", "curve"),
    [(0, "secp256r1"), (256, "secp256r1"), (384, "secp384r1"), (521, "secp521r1")],
)
def test_ecdsa_sizes_choose_the_curve(size: int, curve: str) -> None:
    key = generate_private_key("ECDSA", size)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == curve


@pytest.mark.parametrize(("size", "bits"), [(0, 2048), (2048, 2048), (3072, 3072)])
def test_rsa_sizes(size: int, bits: int) -> None:
    key = generate_private_key("RSA", size)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == bits
    assert key.public_key().public_numbers().e == 65537


def test_ed25519_key() -> None:
    assert isinstance(generate_private_key("Ed25519"), ed25519.Ed25519PrivateKey)


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        ("rsa", rsa.RSAPrivateKey),
        ("ecdsa", ec.EllipticCurvePrivateKey),
        ("ED25519", ed25519.Ed25519PrivateKey),
    ],
)
def test_algorithm_names_are_case_insensitive(algorithm: str, kind: type) -> None:
    assert isinstance(generate_private_key(algorithm), kind)


@pytest.mark.parametrize("size", [128, 224, 2048])
def test_bad_ecdsa_size_is_a_clear_bad_request(size: int) -> None:
    with pytest.raises(ApplicationError) as caught:
        generate_private_key("ECDSA", size)
    assert_bad_request(caught, str(size), "256", "384", "521")


@pytest.mark.parametrize("size", [512, 1024])
def test_too_small_rsa_size_is_a_clear_bad_request(size: int) -> None:
    """Like cert-manager (RSA 2048..8192): a weak key is refused before any CA sees it."""
    with pytest.raises(ApplicationError) as caught:
        generate_private_key("RSA", size)
    assert_bad_request(caught, str(size))


def test_unknown_algorithm_is_a_clear_bad_request() -> None:
    with pytest.raises(ApplicationError) as caught:
        generate_private_key("DSA")
    assert_bad_request(caught, "DSA", "RSA", "ECDSA", "Ed25519")


@pytest.mark.parametrize("algorithm", ["RSA", "ECDSA", "Ed25519"])
def test_private_key_pem_round_trips(algorithm: str) -> None:
    key = generate_private_key(algorithm)
    pem = private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    loaded = load_private_key(pem)
    assert private_key_pem(loaded) == pem


PEM_HEADERS = {
    ("RSA", "PKCS1"): b"-----BEGIN RSA PRIVATE KEY-----",
    ("ECDSA", "PKCS1"): b"-----BEGIN EC PRIVATE KEY-----",  # SEC 1, as cert-manager writes it
    ("Ed25519", "PKCS1"): b"-----BEGIN PRIVATE KEY-----",  # Ed25519 has only PKCS#8
    ("RSA", "PKCS8"): b"-----BEGIN PRIVATE KEY-----",
    ("ECDSA", "PKCS8"): b"-----BEGIN PRIVATE KEY-----",
    ("Ed25519", "PKCS8"): b"-----BEGIN PRIVATE KEY-----",
}


@pytest.mark.parametrize(
    ("algorithm", "encoding"), PEM_HEADERS, ids=[f"{a}-{e}" for a, e in PEM_HEADERS]
)
def test_each_encoding_writes_its_pem_and_loads_back(algorithm: str, encoding: str) -> None:
    key = generate_private_key(algorithm)
    pem = private_key_pem(key, encoding=encoding)
    assert pem.startswith(PEM_HEADERS[algorithm, encoding])
    assert public_key(load_private_key(pem)) == public_key(key)
    der = private_key_der(key, encoding=encoding)
    assert base64.b64decode(b"".join(pem.splitlines()[1:-1])) == der  # the PEM's body


@pytest.mark.parametrize("algorithm", ["RSA", "ECDSA"])
def test_a_key_in_the_other_encoding_still_loads(algorithm: str) -> None:
    """A user flipped privateKey.encoding: the Secret's key is in the one not asked for."""
    key = generate_private_key(algorithm)
    pkcs1, pkcs8 = private_key_pem(key, encoding="PKCS1"), private_key_pem(key, encoding="PKCS8")
    assert pkcs1 != pkcs8
    assert private_key_pem(load_private_key(pkcs1), encoding="PKCS8") == pkcs8
    assert private_key_pem(load_private_key(pkcs8), encoding="PKCS1") == pkcs1


KEPT_KEYS = {
    "rsa-default-size": (lambda: rsa.generate_private_key(65537, 2048), "RSA", 0, True),
    "rsa-other-size": (lambda: rsa.generate_private_key(65537, 2048), "RSA", 3072, False),
    "p384-asked": (lambda: ec.generate_private_key(ec.SECP384R1()), "ECDSA", 384, True),
    "p256-for-p384": (lambda: P256_KEY, "ECDSA", 384, False),
    "p256-for-rsa": (lambda: P256_KEY, "RSA", 0, False),
    "ed25519-for-ecdsa": (ed25519.Ed25519PrivateKey.generate, "ECDSA", 0, False),
    "ed25519-asked": (ed25519.Ed25519PrivateKey.generate, "Ed25519", 0, True),
}


@pytest.mark.parametrize("case", KEPT_KEYS.values(), ids=KEPT_KEYS.keys())
def test_a_kept_key_is_reused_only_if_privatekey_still_asks_for_it(
    case: tuple[Callable[[], PrivateKey], str, int, bool],
) -> None:
    make_key, algorithm, size, matches = case
    assert key_matches(make_key(), algorithm=algorithm, size=size) is matches


def test_an_unknown_encoding_is_a_bad_request() -> None:
    with pytest.raises(ApplicationError) as caught:
        private_key_pem(P256_KEY, encoding="JKS")
    assert_bad_request(caught, "JKS", "PKCS1, PKCS8")


def public_key(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_loading_an_unsupported_key_type_is_a_bad_request() -> None:
    dsa_key = dsa.generate_private_key(key_size=2048)
    pem = dsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ApplicationError) as caught:
        load_private_key(pem)
    assert_bad_request(caught, "DSA")


# --- building CSRs -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RSA", "ECDSA", "Ed25519"])
def test_built_csr_carries_the_names_and_is_signed_by_the_key(algorithm: str) -> None:
    key = generate_private_key(algorithm)
    names = RequestedNames(
        common_name="test1.example.com",
        dns_names=["test1.example.com", "test2.example.com"],
        ip_addresses=["192.0.2.10", "2001:db8::1"],
    )
    pem = build_csr(key, names)
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["test1.example.com"]
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["test1.example.com", "test2.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.10"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    if algorithm != "Ed25519":
        check_csr_matches(pem, names)
        return
    # Built fine, but no ACME CA certifies Ed25519: check_request says so before any ACME call.
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, names)
    assert_bad_request(caught, "Ed25519", "ECDSA P-256")


def test_built_csr_without_common_name_has_an_empty_subject() -> None:
    pem = build_csr(P256_KEY, RequestedNames(dns_names=["test1.example.com"]))
    csr = x509.load_pem_x509_csr(pem.encode())
    assert list(csr.subject) == []
    assert csr_identifiers(pem) == (["test1.example.com"], [])
    # RFC 5280 4.2.1.6: with an empty subject the names are all there is, so SANs are critical.
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def _sans(pem: str) -> list[str]:
    csr = x509.load_pem_x509_csr(pem.encode())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical  # a subject is there
    return [str(name.value) for name in san.value]


@pytest.mark.parametrize(
    ("names", "sans"),
    [
        (
            RequestedNames("www.example.com", ["example.com", "www.example.com"]),
            ["example.com", "www.example.com"],
        ),
        (
            RequestedNames("192.0.2.1", ["example.com"], ["2001:db8::7", "192.0.2.1"]),
            ["example.com", "2001:db8::7", "192.0.2.1"],
        ),
        (RequestedNames("www.example.com", ["example.com"]), ["www.example.com", "example.com"]),
    ],
    ids=["in-dns-names", "in-ip-addresses", "added-when-missing"],
)
def test_the_common_name_is_a_san_once(names: RequestedNames, sans: list[str]) -> None:
    """As cert-manager writes them: SANs in the order given, the common name among them
    (a name left out would fail the CA's comparison with the order's identifiers)."""
    pem = build_csr(P256_KEY, names)
    assert _sans(pem) == sans
    check_csr_matches(pem, names)


# --- identifiers of a CSR ------------------------------------------------------------------


def test_identifiers_are_the_sans_plus_a_common_name_missing_from_them() -> None:
    pem = foreign_csr(common_name="www.example.com", dns_names=["example.com"], ips=["192.0.2.1"])
    assert csr_identifiers(pem) == (["example.com", "www.example.com"], ["192.0.2.1"])


def test_common_name_already_in_the_sans_is_not_repeated() -> None:
    pem = foreign_csr(common_name="example.com", dns_names=["example.com", "www.example.com"])
    assert csr_identifiers(pem) == (["example.com", "www.example.com"], [])


def test_csr_without_san_extension_uses_the_common_name() -> None:
    pem = foreign_csr(common_name="legacy.example.com", san=False)
    assert csr_identifiers(pem) == (["legacy.example.com"], [])


def test_ip_common_name_is_not_counted_as_a_dns_name() -> None:
    pem = foreign_csr(common_name="192.0.2.7", ips=["192.0.2.7"])
    assert csr_identifiers(pem) == ([], ["192.0.2.7"])


# --- the CSR must ask for exactly the order's names ----------------------------------------


def test_exact_match_passes() -> None:
    pem = foreign_csr(
        common_name="test1.example.com",
        dns_names=["test1.example.com", "test2.example.com"],
        ips=["192.0.2.10"],
    )
    names = RequestedNames(
        common_name="test1.example.com",
        dns_names=["test2.example.com", "test1.example.com"],
        ip_addresses=["192.0.2.10"],
    )
    check_csr_matches(pem, names)


def test_common_name_counts_as_a_requested_name() -> None:
    pem = foreign_csr(dns_names=["test1.example.com", "test2.example.com"])
    check_csr_matches(
        pem, RequestedNames(common_name="test1.example.com", dns_names=["test2.example.com"])
    )


def test_names_compare_case_insensitively() -> None:
    pem = foreign_csr(common_name="Test1.Example.COM", dns_names=["TEST1.example.com"])
    check_csr_matches(pem, RequestedNames(dns_names=["test1.example.com"]))


def test_wildcard_names_must_match_too() -> None:
    pem = foreign_csr(dns_names=["*.example.com", "example.com"])
    check_csr_matches(pem, RequestedNames(dns_names=["example.com", "*.example.com"]))
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, RequestedNames(dns_names=["example.com"]))
    assert_bad_request(caught, "*.example.com")


def test_extra_name_in_the_csr_fails_naming_it() -> None:
    pem = foreign_csr(dns_names=["test1.example.com", "evil.example.org"])
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, RequestedNames(dns_names=["test1.example.com"]))
    assert_bad_request(caught, "evil.example.org", "test1.example.com")


def test_missing_name_fails_naming_it() -> None:
    pem = foreign_csr(dns_names=["test1.example.com"])
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, RequestedNames(dns_names=["test1.example.com", "test2.example.com"]))
    assert_bad_request(caught, "test2.example.com")


def test_extra_common_name_fails() -> None:
    pem = foreign_csr(common_name="other.example.com", dns_names=["test1.example.com"])
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, RequestedNames(dns_names=["test1.example.com"]))
    assert_bad_request(caught, "other.example.com")


def test_ip_addresses_must_match() -> None:
    pem = foreign_csr(dns_names=["test1.example.com"], ips=["192.0.2.10"])
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(
            pem, RequestedNames(dns_names=["test1.example.com"], ip_addresses=["192.0.2.11"])
        )
    assert_bad_request(caught, "192.0.2.10", "192.0.2.11")
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, RequestedNames(dns_names=["test1.example.com"]))
    assert_bad_request(caught, "192.0.2.10")


def test_ip_addresses_compare_by_value_not_spelling() -> None:
    pem = foreign_csr(ips=["2001:db8::1"])
    check_csr_matches(pem, RequestedNames(ip_addresses=["2001:DB8:0:0:0:0:0:1"]))


def test_ip_only_order_with_ip_common_name_passes() -> None:
    pem = foreign_csr(common_name="192.0.2.7", ips=["192.0.2.7"])
    check_csr_matches(pem, RequestedNames(common_name="192.0.2.7", ip_addresses=["192.0.2.7"]))


def test_csr_naming_nothing_is_refused() -> None:
    pem = foreign_csr(san=False)
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, RequestedNames())
    assert_bad_request(caught, "no identifier")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a CSR at all",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    ],
    ids=["empty", "text", "bad-der", "wrong-pem-type"],
)
def test_garbage_csr_is_a_clear_bad_request(garbage: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(garbage, RequestedNames(dns_names=["test1.example.com"]))
    assert_bad_request(caught, "not a PEM certificate signing request")


def test_csr_with_a_broken_signature_is_refused() -> None:
    pem = foreign_csr(dns_names=["test1.example.com"])
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte lies in the signature
    body = base64.encodebytes(bytes(der)).decode()
    tampered = f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(tampered, RequestedNames(dns_names=["test1.example.com"]))
    assert_bad_request(caught, "signature")


# --- keys and signatures no CA certifies (check_request, before any ACME call) ------------


def _csr_with_key(key: Any, algorithm: hashes.HashAlgorithm | None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    san = x509.SubjectAlternativeName([x509.DNSName("test1.example.com")])
    csr = builder.add_extension(san, critical=False).sign(key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


KEYS_CAS_REFUSE = {
    "rsa-1024": (lambda: rsa.generate_private_key(65537, 1024), hashes.SHA256(), "1024 bits"),
    "ed25519": (
        ed25519.Ed25519PrivateKey.generate,
        None,
        "ACME CAs do not certify Ed25519 keys (Pebble refuses them at finalize with badCSR",
    ),
    "ed448": (ed448.Ed448PrivateKey.generate, None, "ACME CAs do not certify Ed448"),
    "secp256k1": (
        lambda: ec.generate_private_key(ec.SECP256K1()),
        hashes.SHA256(),
        "curve secp256k1: CAs certify only P-256, P-384, P-521",
    ),
    "sha224-signature": (lambda: P256_KEY, hashes.SHA224(), "signed with SHA224: CAs accept"),
}


@pytest.mark.parametrize("case", KEYS_CAS_REFUSE.values(), ids=KEYS_CAS_REFUSE.keys())
def test_a_key_or_signature_no_ca_certifies_is_refused(
    case: tuple[Callable[[], Any], hashes.HashAlgorithm | None, str],
) -> None:
    make_key, algorithm, fragment = case
    pem = _csr_with_key(make_key(), algorithm)
    with pytest.raises(ApplicationError) as caught:
        check_csr_matches(pem, RequestedNames(dns_names=["test1.example.com"]))
    assert_bad_request(caught, fragment)


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: rsa.generate_private_key(65537, 2048),
        lambda: rsa.generate_private_key(65537, 4096),
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: ec.generate_private_key(ec.SECP521R1()),
    ],
    ids=["rsa-2048", "rsa-4096", "p-384", "p-521"],
)
def test_keys_pebble_certifies_pass(make_key: Callable[[], PrivateKey]) -> None:
    check_csr_matches(
        _csr_with_key(make_key(), hashes.SHA384()),
        RequestedNames(dns_names=["test1.example.com"]),
    )
