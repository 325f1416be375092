"""What an Order is made from: the identifiers a CSR asks for, and the Order's name.

Shared by the worker's Certificate steps (which create the Orders of acmeflow
Certificates) and the bridge (which creates the Orders of cert-manager
CertificateRequests); the bridge may not import activities, so this lives below both.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.x509.oid import NameOID

ORDER_NAME_PREFIX_MAX = 52
"""The owner's name is cut here so ``<prefix>-<hash>`` stays a valid label value (63)."""


def identifiers(csr: x509.CertificateSigningRequest) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses a CSR asks for (SANs plus a DNS-like common name)."""
    dns_names: list[str] = []
    ips: list[str] = []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = list(san.get_values_for_type(x509.DNSName))
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    for value in common_names(csr):
        if value not in dns_names and value not in ips:
            dns_names.append(value)
    return dns_names, ips


def common_names(csr: x509.CertificateSigningRequest) -> list[str]:
    return [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def csr_identifiers(csr_pem: str) -> tuple[list[str], list[str]]:
    """``identifiers`` of a PEM CSR; ValueError if it is not one."""
    return identifiers(x509.load_pem_x509_csr(csr_pem.encode()))


def order_name(owner: str, csr_pem: str, revision: int) -> str:
    """``<owner>-<decimal hash>`` as the reference names Orders; stable per CSR and revision,
    so the same request reconciled again (or after a restart) names the same Order."""
    digest = hashlib.sha256(f"{revision}\n{csr_pem}".encode()).digest()
    return f"{owner[:ORDER_NAME_PREFIX_MAX]}-{int.from_bytes(digest[:4], 'big')}"
