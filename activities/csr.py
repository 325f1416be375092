"""Private keys and CSRs, and the check that a CSR asks for exactly the order's names."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from acmeflow.activities.errors import bad_request
from acmeflow.contracts.names import RequestedNames
from acmeflow.crds.order_requests import identifiers

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def generate_private_key(algorithm: str = "ECDSA", size: int = 0) -> PrivateKey:
    """A new key as cert-manager would make it: RSA 2048 / ECDSA P-256 / Ed25519 by default."""
    algorithm = algorithm.upper()
    if algorithm == "RSA":
        size = size or 2048
        if not 2048 <= size <= 8192:
            raise bad_request(f"RSA key size {size} is not between 2048 and 8192")
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if algorithm == "ECDSA":
        curves: dict[int, ec.EllipticCurve] = {
            256: ec.SECP256R1(),
            384: ec.SECP384R1(),
            521: ec.SECP521R1(),
        }
        if (size or 256) not in curves:
            raise bad_request(f"ECDSA key size {size} is not one of 256, 384, 521")
        return ec.generate_private_key(curves[size or 256])
    if algorithm == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise bad_request(f"private key algorithm {algorithm!r} is not one of RSA, ECDSA, Ed25519")


def key_matches(key: PrivateKey, *, algorithm: str, size: int = 0) -> bool:
    """Whether a key kept from before is what ``privateKey`` asks for now, with the same
    defaults as ``generate_private_key``; cert-manager, too, makes a new key otherwise."""
    algorithm = algorithm.upper()
    if isinstance(key, rsa.RSAPrivateKey):
        return algorithm == "RSA" and key.key_size == (size or 2048)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return algorithm == "ECDSA" and key.curve.key_size == (size or 256)
    return algorithm == "ED25519"


KEY_ENCODINGS = ("PKCS1", "PKCS8")
"""A Certificate's ``privateKey.encoding``: PKCS1 is cert-manager's default."""


def private_key_format(key: PrivateKey, encoding: str) -> serialization.PrivateFormat:
    """PKCS1 means each key's own traditional form ("RSA PRIVATE KEY", SEC 1's "EC PRIVATE
    KEY"), as cert-manager writes it; Ed25519 has none, so it is PKCS#8 whatever is asked."""
    if encoding.upper() not in KEY_ENCODINGS:
        raise bad_request(f"private key encoding {encoding!r} is not one of PKCS1, PKCS8")
    if encoding.upper() == "PKCS8" or isinstance(key, ed25519.Ed25519PrivateKey):
        return serialization.PrivateFormat.PKCS8
    return serialization.PrivateFormat.TraditionalOpenSSL


def private_key_pem(key: PrivateKey, *, encoding: str = "PKCS8") -> bytes:
    """The key in PEM; PKCS#8 unless ``encoding`` says PKCS1 (see ``private_key_format``)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        private_key_format(key, encoding),
        serialization.NoEncryption(),
    )


def private_key_der(key: PrivateKey, *, encoding: str = "PKCS8") -> bytes:
    """The same structure as ``private_key_pem`` writes, without the PEM armour."""
    return key.private_bytes(
        serialization.Encoding.DER,
        private_key_format(key, encoding),
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> PrivateKey:
    """A key in any of the PEM forms (PKCS#1, SEC 1, PKCS#8), whatever ``encoding`` the
    Certificate asks for now: a user may flip it on a Secret that holds the other."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise bad_request(f"unsupported private key type {type(key).__name__}")
    return key


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def build_csr(key: PrivateKey, names: RequestedNames) -> str:
    """The CSR as cert-manager makes it for ACME: the common name in the subject, every DNS
    name and IP address as a SAN, SANs critical when the subject is empty (RFC 5280 §4.2.1.6).

    The SANs keep the order given (a CA that writes a common name of its own, like Pebble's
    promoting profiles, takes the first). The common name must be one of them: CAs compare
    the SANs with the order's identifiers, which list it. cert-manager fails a request whose
    common name is not among its names and a Certificate's admission refuses one, so it is
    added here, first, only for a caller that left it out of ``dns_names``.
    """
    subject = (
        [x509.NameAttribute(NameOID.COMMON_NAME, names.common_name)] if names.common_name else []
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in names.ip_addresses]
    if names.common_name and _alt_name(names.common_name) not in alt_names:
        alt_names.insert(0, _alt_name(names.common_name))
    builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=not subject)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


MIN_RSA_BITS = 2048
"""The Baseline Requirements' floor; Let's Encrypt certifies RSA 2048, 3072 and 4096."""
CA_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
"""The curves of the Baseline Requirements (Let's Encrypt takes P-256 and P-384, Pebble all)."""
CA_SIGNATURE_HASHES = ("sha256", "sha384", "sha512")
"""The CSR signature hashes Pebble and Let's Encrypt accept (SHA-1 and MD5 are refused)."""
KEY_ADVICE = "make the CSR with an ECDSA P-256 or an RSA 2048 (or larger) key"


def load_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    """The CSR, refused unless it is PKCS#10 in PEM, signed with SHA-2 (or EdDSA), and its
    signature verifies with its own key."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as error:
        raise bad_request(
            "the request is not a PEM certificate signing request (PKCS#10 between "
            f"-----BEGIN CERTIFICATE REQUEST----- lines): {error}"
        ) from error
    _refuse_weak_signature(csr)
    if not csr.is_signature_valid:
        raise bad_request(
            "the certificate signing request's signature is invalid: it does not verify with "
            "the CSR's own public key, so the CSR was altered after signing; make it again "
            "(e.g. openssl req -new -key <key>)"
        )
    return csr


def _refuse_weak_signature(csr: x509.CertificateSigningRequest) -> None:
    """Checked before the signature, which cryptography cannot verify for SHA-1 ("invalid")."""
    if isinstance(csr.public_key(), ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return  # EdDSA hashes inside the signature; the key check speaks for these
    hash_algorithm = csr.signature_hash_algorithm
    if hash_algorithm is None or hash_algorithm.name not in CA_SIGNATURE_HASHES:
        name = hash_algorithm.name.upper() if hash_algorithm else "no hash"
        raise bad_request(
            f"the CSR is signed with {name}: CAs accept CSR signatures with SHA-256, SHA-384 "
            "or SHA-512; sign it again (e.g. openssl req -new -sha256)"
        )


def refuse_unusable_key(csr: x509.CertificateSigningRequest) -> None:
    """Refuse, before any ACME call, a key no ACME CA would certify.

    Pebble accepts any RSA size and P-521 but refuses Ed25519 (badCSR, at finalize: after
    every challenge was solved; tests/certificates/test_keys.py asks the stack's Pebble);
    Let's Encrypt also refuses RSA under 2048 bits and P-521.
    The floor here is what the Baseline Requirements allow, so every public CA agrees.
    """
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise bad_request(
                f"the CSR's RSA key has {key.key_size} bits: CAs refuse RSA keys under "
                f"{MIN_RSA_BITS} bits; {KEY_ADVICE}"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in CA_CURVES:
            raise bad_request(
                f"the CSR's ECDSA key is on curve {key.curve.name}: CAs certify only "
                f"{', '.join(CA_CURVES.values())}; {KEY_ADVICE}"
            )
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        ed25519_key = isinstance(key, ed25519.Ed25519PublicKey)
        kind = "Ed25519" if ed25519_key else "Ed448"
        pebble = (  # what the stack's Pebble answered (test_keys.py); Go cannot read Ed448
            'them at finalize with badCSR "CSR signature algorithm Ed25519 is not supported"'
            if ed25519_key
            else "them at finalize"
        )
        raise bad_request(
            f"the CSR's key is {kind}: ACME CAs do not certify {kind} keys (Pebble refuses "
            f"{pebble}, after every challenge was solved; Let's Encrypt refuses them too); "
            f"{KEY_ADVICE}; on a Certificate, set privateKey.algorithm to ECDSA (P-256 by "
            "default) or RSA"
        )
    else:
        raise bad_request(f"the CSR's {type(key).__name__} is not a key CAs certify; {KEY_ADVICE}")


def check_csr_matches(csr_pem: str, names: RequestedNames) -> None:
    """Reject, before any ACME call, a CSR that asks for other names than the order, or
    that no CA would sign (its signature, see ``load_csr``; its key, ``refuse_unusable_key``)."""
    csr = load_csr(csr_pem)
    refuse_unusable_key(csr)
    csr_dns, csr_ips = identifiers(csr)
    wanted_dns = set(names.dns_names) | ({names.common_name} if names.common_name else set())
    wanted_dns -= set(names.ip_addresses)
    if {n.lower() for n in csr_dns} != {n.lower() for n in wanted_dns}:
        raise bad_request(
            f"the CSR's DNS names {sorted(csr_dns)} do not match the order's {sorted(wanted_dns)}"
        )
    if {ipaddress.ip_address(i) for i in csr_ips} != {
        ipaddress.ip_address(i) for i in names.ip_addresses
    }:
        raise bad_request(
            f"the CSR's IP addresses {sorted(csr_ips)} do not match the order's "
            f"{sorted(names.ip_addresses)}"
        )
    if not csr_dns and not csr_ips:
        raise bad_request("the CSR names no identifier")
