"""What the TLS Secret holds and carries, from a key pair and a Certificate's spec."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmeflow.activities.csr import PrivateKey, generate_private_key, load_private_key
from acmeflow.activities.tls_secret_contents import (
    TEMPLATE_KEYS_ANNOTATION,
    chain_root,
    stale_metadata,
    tls_secret_contents,
)
from acmeflow.contracts.certificate import CertificateRef, StoreRequest

NOW = datetime.datetime.now(datetime.UTC)
LEAF_KEY = generate_private_key("RSA")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: x509.Name,
    public_key: object,
    *,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey | PrivateKey,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=1))
        .not_valid_after(NOW + datetime.timedelta(days=90))
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(signer, hashes.SHA256())


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT = _certificate(_name("root"), ROOT_KEY.public_key(), issuer=_name("root"), signer=ROOT_KEY)
INTERMEDIATE_KEY = ec.generate_private_key(ec.SECP256R1())
INTERMEDIATE = _certificate(
    _name("intermediate"), INTERMEDIATE_KEY.public_key(), issuer=_name("root"), signer=ROOT_KEY
)
LEAF = _certificate(
    _name("web.example.com"),
    LEAF_KEY.public_key(),
    issuer=_name("intermediate"),
    signer=INTERMEDIATE_KEY,
    san=[
        x509.DNSName("web.example.com"),
        x509.DNSName("www.example.com"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
    ],
)


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _request(**spec: object) -> StoreRequest:
    return StoreRequest(
        certificate=CertificateRef("web", "web-cert", "uid-1"),
        secret_name="web-tls",
        key_secret="web-cert-next-private-key",
        chain_pem="",
        issuer_name="pebble",
        issuer_kind="ClusterIssuer",
        issuer_group="acmeflow.io",
        **spec,  # type: ignore[arg-type]
    )


def test_the_secret_holds_the_chain_and_the_key_in_its_encoding() -> None:
    chain = _pem(LEAF, INTERMEDIATE)
    pkcs1 = tls_secret_contents(_request(), key=LEAF_KEY, chain_pem=chain)
    assert set(pkcs1.data) == {"tls.crt", "tls.key"}  # no root in the chain: no ca.crt
    assert pkcs1.data["tls.crt"] == chain
    assert pkcs1.data["tls.key"].startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    pkcs8 = tls_secret_contents(_request(encoding="PKCS8"), key=LEAF_KEY, chain_pem=chain)
    assert pkcs8.data["tls.key"].startswith(b"-----BEGIN PRIVATE KEY-----")


def test_annotations_say_what_the_certificate_names_and_who_issued_it() -> None:
    contents = tls_secret_contents(_request(), key=LEAF_KEY, chain_pem=_pem(LEAF, INTERMEDIATE))
    assert contents.annotations == {
        "acmeflow.io/certificate-name": "web-cert",
        "acmeflow.io/issuer-name": "pebble",
        "acmeflow.io/issuer-kind": "ClusterIssuer",
        "acmeflow.io/issuer-group": "acmeflow.io",
        "acmeflow.io/common-name": "web.example.com",
        "acmeflow.io/alt-names": "web.example.com,www.example.com",
        "acmeflow.io/ip-sans": "192.0.2.7,2001:db8::1",
        "acmeflow.io/uri-sans": "",
    }


def test_the_secret_template_never_overrides_acmeflows_own_keys() -> None:
    template = {
        "labels": {"team": "web", "acmeflow.io/certificate-name": "forged"},
        "annotations": {"owner": "ops", "acmeflow.io/issuer-name": "forged"},
    }
    contents = tls_secret_contents(
        _request(secret_labels=template["labels"], secret_annotations=template["annotations"]),
        key=LEAF_KEY,
        chain_pem=_pem(LEAF, INTERMEDIATE),
    )
    assert contents.labels == {
        "team": "web",
        "acmeflow.io/managed": "true",
        "acmeflow.io/certificate-name": "web-cert",
    }
    assert contents.annotations["owner"] == "ops"
    assert contents.annotations["acmeflow.io/issuer-name"] == "pebble"


@pytest.mark.parametrize("encoding", ["PKCS1", "PKCS8"])
def test_additional_output_formats_as_cert_manager_writes_them(encoding: str) -> None:
    chain = _pem(LEAF, INTERMEDIATE)
    contents = tls_secret_contents(
        _request(encoding=encoding, additional_output_formats=["CombinedPEM", "DER"]),
        key=LEAF_KEY,
        chain_pem=chain,
    )
    key_pem = contents.data["tls.key"]
    assert contents.data["tls-combined.pem"] == key_pem + b"\n" + chain  # key, then chain
    der = contents.data["key.der"]
    assert serialization.load_der_private_key(der, None).public_key() == LEAF_KEY.public_key()
    assert (
        load_private_key(key_pem).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL
            if encoding == "PKCS1"
            else serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        == der
    )  # the same structure as tls.key, without its armour
    only_der = tls_secret_contents(
        _request(additional_output_formats=["DER"]), key=LEAF_KEY, chain_pem=chain
    )
    assert set(only_der.data) == {"tls.crt", "tls.key", "key.der"}


def test_ca_crt_is_the_root_when_the_chain_ends_in_one() -> None:
    contents = tls_secret_contents(
        _request(), key=LEAF_KEY, chain_pem=_pem(LEAF, INTERMEDIATE, ROOT)
    )
    assert contents.data["ca.crt"] == _pem(ROOT)


def test_a_top_certificate_only_named_like_a_root_is_not_taken_for_one() -> None:
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    # Subject equals issuer, but another key signed it: not self-signed.
    impostor = _certificate(
        _name("root"), impostor_key.public_key(), issuer=_name("root"), signer=ROOT_KEY
    )
    assert chain_root([LEAF, INTERMEDIATE, impostor]) is None
    assert chain_root([LEAF, INTERMEDIATE]) is None
    assert chain_root([ROOT]) is None  # a lone self-signed leaf is no chain with a root
    assert chain_root([LEAF, INTERMEDIATE, ROOT]) == ROOT


def test_keys_a_former_template_wrote_are_stale_and_a_users_own_are_not() -> None:
    chain = _pem(LEAF, INTERMEDIATE)
    before = tls_secret_contents(
        _request(
            secret_labels={"team": "web", "tier": "front"}, secret_annotations={"owner": "ops"}
        ),
        key=LEAF_KEY,
        chain_pem=chain,
    )
    on_secret_labels = {**before.labels, "added-by-user": "x"}
    on_secret_annotations = {**before.annotations, "kubectl.kubernetes.io/note": "x"}
    narrower = tls_secret_contents(
        _request(secret_labels={"team": "api"}), key=LEAF_KEY, chain_pem=chain
    )
    assert stale_metadata(on_secret_labels, on_secret_annotations, narrower) == (
        ["tier"],
        ["owner"],
    )
    none = tls_secret_contents(_request(), key=LEAF_KEY, chain_pem=chain)
    assert stale_metadata(on_secret_labels, on_secret_annotations, none) == (
        ["team", "tier"],
        [TEMPLATE_KEYS_ANNOTATION, "owner"],
    )
    assert stale_metadata(on_secret_labels, on_secret_annotations, before) == ([], [])


def test_a_record_edited_into_nonsense_makes_nothing_stale() -> None:
    contents = tls_secret_contents(_request(), key=LEAF_KEY, chain_pem=_pem(LEAF, INTERMEDIATE))
    for record in ("not json", '["team"]', '{"labels": [1, null]}'):
        annotations = {TEMPLATE_KEYS_ANNOTATION: record}
        assert stale_metadata({"team": "web"}, annotations, contents) == (
            [],
            [TEMPLATE_KEYS_ANNOTATION],
        )
