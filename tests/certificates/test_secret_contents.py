"""The TLS Secret as cert-manager writes one: template labels and annotations, the
certificate's details as annotations, additional output formats, ca.crt only where known.

A secretTemplate or additionalOutputFormats change on a Ready Certificate reaches the
Secret without a new certificate, and what the template no longer names leaves it, as
cert-manager does it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmeflow.activities.csr import load_private_key
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    tls_secret,
    wait_for,
    wait_for_ready,
)
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate

pytestmark = pytest.mark.stack

NAMES = ["contents.example.com", "www.contents.example.com"]
TEMPLATE = {
    "labels": {"team": "web", "acmeflow.io/certificate-name": "forged"},
    "annotations": {"owner": "ops", "acmeflow.io/issuer-name": "forged"},
}


def _metadata(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    secret = json.loads(kubectl("get", "secret", name, "-n", namespace, "-o", "json").stdout)
    metadata: dict[str, Any] = secret["metadata"]
    return metadata


def _public(key_pem_or_der: Any) -> bytes:
    return bytes(
        key_pem_or_der.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def test_the_secret_carries_the_template_the_certificate_details_and_the_formats(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    kubectl.create(
        certificate_manifest(
            namespace,
            "contents",
            NAMES,
            secretTemplate=TEMPLATE,
            additionalOutputFormats=[{"type": "CombinedPEM"}, {"type": "DER"}],
        )
    )
    wait_for_ready(kubectl, "certificate", namespace, "contents")
    secret = tls_secret(kubectl, namespace, "contents-tls")
    assert secret is not None
    key = load_private_key(secret["tls.key"])
    assert_certificate(secret["tls.crt"].decode(), key, NAMES, stack.pebble_roots)
    assert secret["tls-combined.pem"] == secret["tls.key"] + b"\n" + secret["tls.crt"]
    assert _public(serialization.load_der_private_key(secret["key.der"], None)) == _public(key)
    # Pebble's chain is leaf and intermediate, no root, and no AIA URL names one: no ca.crt.
    chain = x509.load_pem_x509_certificates(secret["tls.crt"])
    assert chain[-1].issuer != chain[-1].subject
    assert sorted(secret) == ["key.der", "tls-combined.pem", "tls.crt", "tls.key"]

    metadata = _metadata(kubectl, namespace, "contents-tls")
    assert metadata["labels"] == {
        "team": "web",
        "acmeflow.io/managed": "true",
        "acmeflow.io/certificate-name": "contents",  # the template cannot override it
    }
    common_names = chain[0].subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert metadata["annotations"] == {
        "owner": "ops",
        "acmeflow.io/certificate-name": "contents",
        "acmeflow.io/issuer-name": "pebble",
        "acmeflow.io/issuer-kind": "Issuer",
        "acmeflow.io/issuer-group": "acmeflow.io",
        "acmeflow.io/common-name": str(common_names[0].value) if common_names else "",
        "acmeflow.io/alt-names": ",".join(NAMES),
        "acmeflow.io/ip-sans": "",
        "acmeflow.io/uri-sans": "",
        # which keys the template wrote, so that one dropped from it is removed later
        "acmeflow.io/secret-template-keys": json.dumps(
            {
                "labels": ["acmeflow.io/certificate-name", "team"],
                "annotations": ["acmeflow.io/issuer-name", "owner"],
            },
            separators=(",", ":"),
        ),
    }


def test_a_template_or_format_change_reaches_the_secret_without_a_reissue(
    kubectl: Kubectl, bridge: BridgeProcess, order_worker: None, namespace: str
) -> None:
    kubectl.create(
        certificate_manifest(
            namespace,
            "retemplated",
            ["retemplated.example.com"],
            secretTemplate={"labels": {"team": "web", "tier": "front"}},
            additionalOutputFormats=[{"type": "DER"}],
        )
    )
    wait_for_ready(kubectl, "certificate", namespace, "retemplated")
    before = tls_secret(kubectl, namespace, "retemplated-tls")
    assert before is not None and "key.der" in before
    patch = {
        "spec": {
            "secretTemplate": {
                "labels": {"team": "api", "tier": None},  # merge patch: null drops tier
                "annotations": {"owner": "ops"},
            },
            "additionalOutputFormats": [{"type": "CombinedPEM"}],
        }
    }
    kubectl(
        "patch", "certificate", "retemplated", "-n", namespace, "--type=merge",
        "-p", json.dumps(patch),
    )  # fmt: skip
    metadata = wait_for(
        lambda: (
            (m := _metadata(kubectl, namespace, "retemplated-tls"))["labels"].get("team") == "api"
            and m
        ),
        "the Secret to carry the new template",
    )
    assert metadata["annotations"]["owner"] == "ops"
    assert "tier" not in metadata["labels"], "a label dropped from the template stayed"
    after = tls_secret(kubectl, namespace, "retemplated-tls")
    assert after is not None
    assert after["tls.crt"] == before["tls.crt"], "a template change reissued the certificate"
    assert after["tls.key"] == before["tls.key"]
    assert "key.der" not in after, "the DER output format was turned off but stayed"
    assert after["tls-combined.pem"] == after["tls.key"] + b"\n" + after["tls.crt"]
    certificate = kubectl.get("certificate", "retemplated", namespace=namespace)
    assert certificate["status"]["revision"] == 1
