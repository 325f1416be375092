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


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise bad_request(f"unsupported private key type {type(key).__name__}")
    return key


def build_csr(key: PrivateKey, names: RequestedNames) -> str:
    subject = (
        [x509.NameAttribute(NameOID.COMMON_NAME, names.common_name)] if names.common_name else []
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in names.ip_addresses]
    builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
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
    every challenge was solved); Let's Encrypt also refuses RSA under 2048 bits and P-521.
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
        kind = "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"
        raise bad_request(
            f"the CSR's key is {kind}: ACME CAs do not certify {kind} keys (Pebble answers "
            f"badCSR at finalize, Let's Encrypt refuses them); {KEY_ADVICE}"
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
