"""Bad input a person can hand acmeflow at runtime: CSRs no CA signs, wrong secrets, wrong CAs.

Each builder makes one mistake the way a person makes it (a truncated paste, a key type
no CA certifies, a TSIG secret from another server, the CA's home page as directory URL)
so the tests can show what acmeflow answers in status and Events.
"""

from __future__ import annotations

import base64
import http.server
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from acmeflow.devstack.stack import StackInfo
from acmeflow.devstack.tls import create_ca, issue_leaf

HTML_PAGE = b"<!doctype html><html><head><title>Welcome to nginx!</title></head></html>"


def csr_pem(key: Any, names: list[str], algorithm: hashes.HashAlgorithm | None) -> str:
    """A CSR for ``names`` signed by ``key``, as any tool would make it."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    san = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    csr = builder.add_extension(san, critical=False).sign(key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def p256_csr(names: list[str]) -> str:
    return csr_pem(ec.generate_private_key(ec.SECP256R1()), names, hashes.SHA256())


def ed25519_csr(names: list[str]) -> str:
    return csr_pem(ed25519.Ed25519PrivateKey.generate(), names, None)


def rsa_1024_csr(names: list[str]) -> str:
    return csr_pem(rsa.generate_private_key(65537, 1024), names, hashes.SHA256())


def garbage_csr(names: list[str]) -> str:
    """PEM armour around bytes that are no PKCS#10 request (passes admission's marker check)."""
    body = base64.b64encode(b"this is not a certificate request").decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"


def tampered_csr(names: list[str]) -> str:
    """A CSR whose signature no longer verifies: one bit of the signature flipped."""
    pem = p256_csr(names)
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def sha1_csr(names: list[str], work_dir: Path) -> str:
    """A CSR signed with SHA-1, which cryptography refuses to make; openssl still does."""
    key = work_dir / "sha1.key"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    san = ",".join(f"DNS:{n}" for n in names)
    made = subprocess.run(
        ["openssl", "req", "-new", "-sha1", "-key", str(key), "-subj", f"/CN={names[0]}",
         "-addext", f"subjectAltName={san}"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return made.stdout


def order_with_request(
    namespace: str, name: str, names: list[str], request: str, *, issuer: str = "pebble"
) -> dict[str, Any]:
    return {
        "apiVersion": "acmeflow.io/v1alpha1",
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"request": request, "issuerRef": {"name": issuer}, "dnsNames": names},
    }


def opaque_secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


class HtmlSite:
    """An HTTPS web site (a CA's home page, say) whose certificate the stack's CA signed."""

    def __init__(self, stack: StackInfo, work_dir: Path) -> None:
        ca = create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
        leaf = issue_leaf(
            ca, work_dir, "html-site", common_name="127.0.0.1", ip_addresses=("127.0.0.1",)
        )

        class Page(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(HTML_PAGE)))
                self.end_headers()
                self.wfile.write(HTML_PAGE)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(leaf.cert_path, leaf.key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
