"""A user deletes or spoils a Ready Certificate's TLS Secret: it is reissued at once.

Each case starts from a Ready Certificate, does to its Secret what a user might, and
waits (with a generous deadline, not a timed assertion) for a Secret holding a new
certificate, by serial, that matches its key and the Certificate's names. The Certificate
must have said why on the way, with cert-manager's reason: its conditions are read from a
Kubernetes watch, which sees every status stored, however briefly it was held.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from acmeflow.activities.csr import generate_private_key, load_private_key, private_key_pem
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    describe_events,
    tls_secret,
    wait_for,
    wait_for_ready,
)
from tests.bridge.certificate_history import ConditionWatch, certificate_events, since_last_signal
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate

REISSUE_DEADLINE_S = 120.0
"""Generous on a shared machine; the report's figure is the time it took."""


def _self_signed(names: list[str]) -> tuple[bytes, bytes]:
    """A key pair that matches, for names the Certificate does not ask for."""
    key = generate_private_key("ECDSA")
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key)


def _overwrite(kubectl: Kubectl, namespace: str, secret: str, data: dict[str, bytes]) -> None:
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    kubectl(
        "patch", "secret", secret, "-n", namespace, "--type=merge", "-p",
        json.dumps({"data": encoded}),
    )  # fmt: skip


@dataclass(frozen=True)
class Tampering:
    reason: str
    """The reason the Certificate's Ready and Issuing conditions must show."""
    message: str
    """A part of the message its Event and conditions must carry."""
    spoil: Callable[[Kubectl, str, str, dict[str, bytes]], None]
    """(kubectl, namespace, Secret name, its data) -> None."""


def _delete(kubectl: Kubectl, namespace: str, secret: str, _: dict[str, bytes]) -> None:
    kubectl("delete", "secret", secret, "-n", namespace)


def _other_key(kubectl: Kubectl, namespace: str, secret: str, data: dict[str, bytes]) -> None:
    other = private_key_pem(generate_private_key("ECDSA"))
    _overwrite(kubectl, namespace, secret, {"tls.crt": data["tls.crt"], "tls.key": other})


def _other_names(kubectl: Kubectl, namespace: str, secret: str, _: dict[str, bytes]) -> None:
    chain, key = _self_signed(["elsewhere.example.com"])
    _overwrite(kubectl, namespace, secret, {"tls.crt": chain, "tls.key": key})


def _garbage(kubectl: Kubectl, namespace: str, secret: str, _: dict[str, bytes]) -> None:
    _overwrite(kubectl, namespace, secret, {"tls.crt": b"garbage\n", "tls.key": b"\x00\x01rubbish"})


CASES = {
    "deleted": Tampering("DoesNotExist", "does not exist", _delete),
    "other-key": Tampering("InvalidKeyPair", "not the key of its certificate", _other_key),
    "other-names": Tampering("SecretMismatch", "lacks", _other_names),
    "garbage": Tampering("InvalidCertificate", "tls.crt holds no certificate", _garbage),
}


def _leaf(secret: dict[str, bytes]) -> x509.Certificate:
    return x509.load_pem_x509_certificates(secret["tls.crt"])[0]


def _public(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _reissued(
    kubectl: Kubectl, namespace: str, name: str, *, serial: int, names: list[str]
) -> dict[str, bytes] | None:
    """The Secret once it holds a new certificate for ``names`` that matches its key."""
    secret = tls_secret(kubectl, namespace, name)
    try:
        leaf = _leaf(secret) if secret is not None else None
        key = load_private_key(secret["tls.key"]) if secret is not None else None
    except (KeyError, ValueError, IndexError):
        return None  # still spoilt
    if secret is None or leaf is None or leaf.serial_number == serial:
        return None
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if sorted(san.get_values_for_type(x509.DNSName)) != sorted(names):
        return None
    return secret if _public(leaf.public_key()) == _public(key.public_key()) else None


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_spoilt_secret_is_reissued_and_the_certificate_says_why(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    case: str,
) -> None:
    tampering = CASES[case]
    name, names = f"spoilt-{case}", [f"spoilt-{case}.example.com"]
    kubectl.create(certificate_manifest(namespace, name, names))
    wait_for_ready(kubectl, "certificate", namespace, name)
    first = tls_secret(kubectl, namespace, f"{name}-tls")
    assert first is not None

    with ConditionWatch(stack, namespace, name) as conditions:
        spoilt_at = time.monotonic()
        tampering.spoil(kubectl, namespace, f"{name}-tls", first)
        second: dict[str, bytes] = wait_for(
            lambda: _reissued(
                kubectl, namespace, f"{name}-tls", serial=_leaf(first).serial_number, names=names
            ),
            f"the {case} Secret to be reissued",
            timeout_s=REISSUE_DEADLINE_S,
        )
        print(f"{case}: a new certificate in the Secret {time.monotonic() - spoilt_at:.1f}s later")
        certificate = wait_for(
            lambda: (
                (c := wait_for_ready(kubectl, "certificate", namespace, name))
                and c["status"].get("revision") == 2
                and c
            ),
            "the Certificate to be Ready at revision 2",
        )

    assert_certificate(
        second["tls.crt"].decode(), load_private_key(second["tls.key"]), names, stack.pebble_roots
    )
    assert certificate["status"]["notAfter"] == _leaf(second).not_valid_after_utc.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    ready = [(s, r, m) for t, s, r, m in conditions.seen if t == "Ready"]
    issuing = [(s, r, m) for t, s, r, m in conditions.seen if t == "Issuing"]
    assert any(s == "False" and r == tampering.reason for s, r, _ in ready), ready
    assert any(
        s == "True" and r == tampering.reason and tampering.message in m for s, r, m in issuing
    ), issuing
    events = describe_events(kubectl("describe", "certificate", name, "-n", namespace).stdout)
    assert any((t, r) == ("Normal", "Issuing") and tampering.message in m for t, r, m in events), (
        events
    )


def test_an_edit_that_leaves_the_secret_good_changes_nothing(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    """As after acmeflow's own write: the workflow is woken, looks, and sleeps again."""
    name, names = "kept", ["kept.example.com"]
    kubectl.create(certificate_manifest(namespace, name, names))
    wait_for_ready(kubectl, "certificate", namespace, name)
    before = tls_secret(kubectl, namespace, f"{name}-tls")
    assert before is not None
    signals = since_last_signal(certificate_events(stack, namespace, name)).signals

    kubectl("annotate", "secret", f"{name}-tls", "-n", namespace, "example.com/owner=team-a")
    after = wait_for(
        lambda: (
            (s := since_last_signal(certificate_events(stack, namespace, name))).signals > signals
            and s.asleep
            and s
        ),
        "the workflow to be woken, look at the Secret and sleep again",
    )

    assert not after.issuing
    secret = tls_secret(kubectl, namespace, f"{name}-tls")
    assert secret is not None and _leaf(secret).serial_number == _leaf(before).serial_number
    certificate = wait_for_ready(kubectl, "certificate", namespace, name)
    assert certificate["status"]["revision"] == 1
