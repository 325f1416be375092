"""Every key a Certificate can ask for, issued by the stack's Pebble or refused with a reason.

What is checked is the Secret's ``tls.key`` as a user reads it: its PEM form (PKCS#1 /
SEC 1 or PKCS#8, per ``privateKey.encoding``), its type and size, and across a reissue
whether the key stayed (``rotationPolicy: Never``) or changed (``Always``).
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from dataclasses import dataclass
from typing import Any

import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import josepy as jose
import pytest
from acme import challenges, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from temporalio.client import Client

from acmeflow.activities.csr import build_csr, load_private_key
from acmeflow.contracts.names import RequestedNames
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    condition_of,
    tls_secret,
    wait_for,
    wait_for_ready,
)
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate

pytestmark = pytest.mark.stack

PKCS1_RSA, PKCS1_EC = b"-----BEGIN RSA PRIVATE KEY-----", b"-----BEGIN EC PRIVATE KEY-----"
PKCS8 = b"-----BEGIN PRIVATE KEY-----"


@dataclass(frozen=True)
class KeyCase:
    private_key: dict[str, Any]
    pem_header: bytes
    key_type: type
    size: int


KEY_CASES = {
    "rsa-2048-pkcs1": KeyCase({"algorithm": "RSA"}, PKCS1_RSA, rsa.RSAPrivateKey, 2048),
    "rsa-3072-pkcs8": KeyCase(
        {"algorithm": "RSA", "size": 3072, "encoding": "PKCS8"}, PKCS8, rsa.RSAPrivateKey, 3072
    ),
    "rsa-4096-pkcs1": KeyCase(
        {"algorithm": "RSA", "size": 4096, "encoding": "PKCS1"}, PKCS1_RSA, rsa.RSAPrivateKey, 4096
    ),
    "ecdsa-p256-pkcs1": KeyCase({"algorithm": "ECDSA"}, PKCS1_EC, ec.EllipticCurvePrivateKey, 256),
    "ecdsa-p384-pkcs8": KeyCase(
        {"algorithm": "ECDSA", "size": 384, "encoding": "PKCS8"},
        PKCS8,
        ec.EllipticCurvePrivateKey,
        384,
    ),
}


def _leaf(secret: dict[str, bytes]) -> x509.Certificate:
    return x509.load_pem_x509_certificates(secret["tls.crt"])[0]


def _public(secret: dict[str, bytes]) -> bytes:
    return (
        load_private_key(secret["tls.key"])
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _renew(stack: StackInfo, namespace: str, name: str) -> None:
    """What ``acmeflow renew`` sends: the Certificate's workflow reissues now."""

    async def signal() -> None:
        client = await Client.connect(stack.temporal_address)
        handle = client.get_workflow_handle(f"certificate/{namespace}/{name}")
        await handle.signal("renew", "renewed by the test")

    asyncio.run(signal())


def _reissued(kubectl: Kubectl, namespace: str, name: str, serial: int) -> dict[str, bytes]:
    found: dict[str, bytes] = wait_for(
        lambda: (
            (s := tls_secret(kubectl, namespace, f"{name}-tls"))
            and _leaf(s).serial_number != serial
            and s
        ),
        f"Certificate {name} to be reissued",
        timeout_s=120,
    )
    return found


def test_every_key_type_pebble_certifies_is_issued_in_its_encoding(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    for case_id, case in KEY_CASES.items():
        kubectl.create(
            certificate_manifest(
                namespace, case_id, [f"{case_id}.example.com"], privateKey=case.private_key
            )
        )
    for case_id, case in KEY_CASES.items():
        wait_for_ready(kubectl, "certificate", namespace, case_id, timeout_s=180)
        secret = tls_secret(kubectl, namespace, f"{case_id}-tls")
        assert secret is not None
        assert secret["tls.key"].startswith(case.pem_header), case_id
        key = load_private_key(secret["tls.key"])
        assert isinstance(key, case.key_type), case_id
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        assert key.key_size == case.size, case_id
        assert_certificate(
            secret["tls.crt"].decode(), key, [f"{case_id}.example.com"], stack.pebble_roots
        )


def test_an_ed25519_key_is_refused_saying_what_to_use_instead(
    kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    kubectl.create(
        certificate_manifest(
            namespace, "edwards", ["edwards.example.com"], privateKey={"algorithm": "Ed25519"}
        )
    )
    # Ready is False (DoesNotExist) from the start, as cert-manager's; wait for the failure.
    certificate = wait_for(
        lambda: next(
            (
                c
                for c in [kubectl.get("certificate", "edwards", namespace=namespace)]
                if condition_of(c, "Ready").get("reason") == "Failed"
            ),
            None,
        ),
        "Ready False saying why the issuance failed",
    )
    issuing = wait_for(
        lambda: (
            (
                c := condition_of(
                    kubectl.get("certificate", "edwards", namespace=namespace), "Issuing"
                )
            )
            and c.get("status") == "False"
            and c
        ),
        "the Issuing condition to say why the issuance failed",
    )
    for condition in (condition_of(certificate, "Ready"), issuing):
        message = condition["message"]
        assert "the CSR's key is Ed25519: ACME CAs do not certify Ed25519 keys" in message
        assert "set privateKey.algorithm to ECDSA (P-256 by default) or RSA" in message
    assert tls_secret(kubectl, namespace, "edwards-tls") is None

    # Doing what the message says issues at once: the refused Ed25519 key is not reused.
    kubectl(
        "patch", "certificate", "edwards", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"privateKey": {"algorithm": "ECDSA"}}}',
    )  # fmt: skip
    wait_for_ready(kubectl, "certificate", namespace, "edwards")
    secret = tls_secret(kubectl, namespace, "edwards-tls")
    assert secret is not None
    assert isinstance(load_private_key(secret["tls.key"]), ec.EllipticCurvePrivateKey)


def test_rotation_always_makes_a_new_key_and_never_keeps_it_across_a_reissue(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    for policy in ("Always", "Never"):
        kubectl.create(
            certificate_manifest(
                namespace,
                policy.lower(),
                [f"rotate-{policy.lower()}.example.com"],
                privateKey={"algorithm": "ECDSA", "rotationPolicy": policy},
            )
        )
    first = {}
    for name in ("always", "never"):
        wait_for_ready(kubectl, "certificate", namespace, name)
        secret = tls_secret(kubectl, namespace, f"{name}-tls")
        assert secret is not None and secret["tls.key"].startswith(PKCS1_EC)
        first[name] = secret
        _renew(stack, namespace, name)
    for name, before in first.items():
        after = _reissued(kubectl, namespace, name, _leaf(before).serial_number)
        assert_certificate(
            after["tls.crt"].decode(),
            load_private_key(after["tls.key"]),
            [f"rotate-{name}.example.com"],
            stack.pebble_roots,
        )
        if name == "never":
            assert _public(after) == _public(before), "rotationPolicy Never changed the key"
        else:
            assert _public(after) != _public(before), "rotationPolicy Always kept the key"


def test_a_flipped_encoding_rewrites_the_key_and_a_kept_key_still_loads(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    """PKCS1 to PKCS8 on a Ready Certificate: the same key, rewritten without a reissue;
    then a reissue with rotationPolicy Never reads that key back in its new form."""
    private_key = {"algorithm": "RSA", "rotationPolicy": "Never"}
    kubectl.create(
        certificate_manifest(namespace, "flip", ["flip.example.com"], privateKey=private_key)
    )
    wait_for_ready(kubectl, "certificate", namespace, "flip")
    before = tls_secret(kubectl, namespace, "flip-tls")
    assert before is not None and before["tls.key"].startswith(PKCS1_RSA)
    kubectl(
        "patch", "certificate", "flip", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"privateKey": {"encoding": "PKCS8"}}}',
    )  # fmt: skip
    flipped: dict[str, bytes] = wait_for(
        lambda: (
            (s := tls_secret(kubectl, namespace, "flip-tls"))
            and s["tls.key"].startswith(PKCS8)
            and s
        ),
        "tls.key to be rewritten as PKCS#8",
    )
    assert flipped["tls.crt"] == before["tls.crt"], "an encoding change reissued the certificate"
    assert _public(flipped) == _public(before)
    certificate = kubectl.get("certificate", "flip", namespace=namespace)
    assert certificate["status"]["revision"] == 1

    _renew(stack, namespace, "flip")
    after = _reissued(kubectl, namespace, "flip", _leaf(before).serial_number)
    assert after["tls.key"].startswith(PKCS8)
    assert _public(after) == _public(before), "the PKCS#8 key was not kept"


# --- what Pebble itself does with an Ed25519 key ---------------------------------------------


def _acme(stack: StackInfo) -> acme_client.ClientV2:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = acme_client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(stack.acme_ca_bundle))
    directory = acme_client.ClientV2.get_directory(stack.acme_directory_url, net)
    client = acme_client.ClientV2(directory, net)
    client.new_account(messages.NewRegistration(terms_of_service_agreed=True))
    return client


def _publish_txt(stack: StackInfo, name: str, value: str) -> None:
    host, port = stack.dns_address.split(":")
    keyring = dns.tsigkeyring.from_text(
        {stack.tsig_key_name: stack.tsig_secret_path.read_text().strip()}
    )
    update = dns.update.UpdateMessage(
        "example.com.", keyring=keyring, keyalgorithm=stack.tsig_algorithm
    )
    update.replace(f"_acme-challenge.{name}.", 60, "TXT", f'"{value}"')
    assert dns.query.tcp(update, host, port=int(port), timeout=5).rcode() == dns.rcode.NOERROR


def test_pebble_refuses_an_ed25519_csr_at_finalize(stack: StackInfo) -> None:
    """Why acmeflow refuses Ed25519 before any ACME call: the CA, asked for real, answers
    badCSR only at finalize, after every challenge was solved."""
    name = f"ed25519-{uuid.uuid4().hex[:6]}.example.com"
    client = _acme(stack)
    csr = build_csr(ed25519.Ed25519PrivateKey.generate(), RequestedNames(dns_names=[name]))
    order = client.new_order(csr.encode())
    [authorization] = order.authorizations
    dns01 = next(c for c in authorization.body.challenges if isinstance(c.chall, challenges.DNS01))
    assert isinstance(dns01.chall, challenges.DNS01)
    _publish_txt(stack, name, dns01.chall.validation(client.net.key))
    client.answer_challenge(dns01, dns01.chall.response(client.net.key))
    ready = wait_for(
        lambda: (o := client.poll(authorization)[0]).body.status == messages.STATUS_VALID and o,
        "the authorization to be valid",
    )
    assert ready is not None
    with pytest.raises(acme_errors.Error) as refused:
        client.finalize_order(
            order, deadline=datetime.datetime.now() + datetime.timedelta(seconds=30)
        )
    assert _problem(refused.value) == (
        "urn:ietf:params:acme:error:badCSR",
        "CSR signature algorithm Ed25519 is not supported",
    )


def _problem(error: Exception) -> tuple[str, str]:
    assert isinstance(error, messages.Error), f"not an ACME problem: {error!r}"
    return str(error.typ), str(error.detail)
