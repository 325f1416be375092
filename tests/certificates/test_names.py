"""A Certificate's names as a user reads them in the issued certificate and its request.

An IP address is validated by HTTP-01 on that address (Pebble connects to it on its HTTP
port, where the stack's responder answers whatever the Host), and ends up an IP SAN beside
the DNS names. The common name goes into the CSR's subject as cert-manager puts it there,
and into the certificate where the CA writes a common name at all.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from acmeflow.devstack.pebble import PebbleEndpoints
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import BridgeProcess, certificate_manifest
from tests.bridge.test_certificates import _orders_of
from tests.certificates.names_fixtures import issued_chain, issuer_on
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack


def _sans(certificate: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in san]


def _common_names(certificate: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    return [str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _order(kubectl: Kubectl, namespace: str, certificate: str) -> dict[str, Any]:
    [name] = _orders_of(kubectl, namespace, certificate)
    return kubectl.get("order", name, namespace=namespace)


def _request(order: dict[str, Any]) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(order["spec"]["request"].encode())


def test_an_ip_address_is_issued_beside_a_dns_name_by_http01(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    name = "names-ip.example.com"
    kubectl.create(
        certificate_manifest(namespace, "ip", [name], ipAddresses=["127.0.0.1"], commonName=name)
    )

    leaf, *intermediates = issued_chain(kubectl, namespace, "ip")

    assert _sans(leaf) == [name, "127.0.0.1"]
    root = x509.load_pem_x509_certificate(stack.pebble_roots.read_bytes())
    for subject in (x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(name)):
        verifier = PolicyBuilder().store(Store([root])).build_server_verifier(subject)
        assert verifier.verify(leaf, intermediates)  # a TLS client for 127.0.0.1 accepts it
    order = _order(kubectl, namespace, "ip")
    assert order["spec"]["ipAddresses"] == ["127.0.0.1"]
    assert sorted(a["identifier"] for a in order["status"]["authorizations"]) == [
        "127.0.0.1",
        name,
    ]
    # The request carries the common name; the stack's Pebble, like Let's Encrypt's newer
    # profiles, writes none into the certificate.
    request = _request(order)
    assert (_common_names(request), _sans(request)) == ([name], [name, "127.0.0.1"])
    assert _common_names(leaf) == []


def test_the_common_name_is_in_the_certificate_where_the_ca_writes_one(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    promoting_pebble: PebbleEndpoints,
) -> None:
    names = ["names-cn.example.com", "names-cn-2.example.com"]
    kubectl.create(issuer_on(stack, namespace, "promoting", promoting_pebble))
    kubectl.create(
        certificate_manifest(namespace, "cn", names, issuer="promoting", commonName=names[0])
    )

    leaf, *_ = issued_chain(kubectl, namespace, "cn")

    assert (_common_names(leaf), _sans(leaf)) == ([names[0]], names)
    request = _request(_order(kubectl, namespace, "cn"))
    assert (_common_names(request), _sans(request)) == ([names[0]], names)
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical  # the subject names the certificate too (RFC 5280 4.2.1.6)
