"""A cert-manager ACME Issuer, run through ``acmeflow convert-issuer`` and applied, issues.

The Issuer is written as a cert-manager user has it: the stack's Pebble as server with its
CA bundle, DNS-01 by RFC 2136 against the stack's BIND9 (TSIG algorithm in lowercase, as
cert-manager allows), HTTP-01 through an Ingress as fallback, plus what acmeflow cannot
carry (an Akamai solver, a solver pod template). The command's output goes to
``kubectl apply`` unchanged; one acmeflow Certificate then needs both solvers.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid
from typing import Any

import yaml

from acmeflow.activities.csr import load_private_key
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    tls_secret,
    wait_for_ready,
)
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate


def cert_manager_issuer(stack: StackInfo, namespace: str, zone: str) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": "pebble-from-cert-manager", "namespace": namespace},
        "spec": {
            "acme": {
                "server": stack.acme_directory_url,
                "caBundle": base64.b64encode(stack.acme_ca_bundle.read_bytes()).decode(),
                "email": "ops@example.com",
                "privateKeySecretRef": {"name": "pebble-from-cert-manager-account"},
                "solvers": [
                    {
                        "selector": {"dnsZones": ["example.org"]},
                        "dns01": {
                            "akamai": {
                                "serviceConsumerDomain": "akab-x.luna.akamaiapis.net",
                                "clientTokenSecretRef": {"name": "akamai", "key": "client-token"},
                                "clientSecretSecretRef": {"name": "akamai", "key": "secret"},
                                "accessTokenSecretRef": {"name": "akamai", "key": "access-token"},
                            }
                        },
                    },
                    {
                        "selector": {"dnsZones": [zone]},
                        "dns01": {
                            "cnameStrategy": "None",
                            "rfc2136": {
                                "nameserver": stack.dns_address,
                                "tsigKeyName": stack.tsig_key_name,
                                "tsigAlgorithm": stack.tsig_algorithm.replace("-", "").lower(),
                                "tsigSecretSecretRef": {"name": "tsig", "key": "secret"},
                                "protocol": "TCP",
                            },
                        },
                    },
                    {
                        "http01": {
                            "ingress": {
                                "serviceType": "ClusterIP",
                                "podTemplate": {"spec": {"nodeSelector": {"pool": "edge"}}},
                            }
                        }
                    },
                ],
            }
        },
    }


def convert_issuer(manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acmeflow.cli", "convert-issuer"],
        input=yaml.safe_dump(manifest),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_a_converted_cert_manager_issuer_issues_by_dns01_and_http01(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    zone = f"dns-{suffix}.example.com"
    names = [f"*.{zone}", zone, f"converted-{suffix}.example.com"]

    converted = convert_issuer(cert_manager_issuer(stack, namespace, zone))

    losses = converted.stderr.splitlines()
    assert len(losses) == 2, converted.stderr
    assert losses[0].startswith(f"Issuer {namespace}/pebble-from-cert-manager: ")
    assert "spec.acme.solvers[0]: solver left out" in losses[0]
    assert "dns01.akamai is not supported: " in losses[0]
    assert "spec.acme.solvers[2].http01.ingress.podTemplate: ingress.podTemplate" in losses[1]
    applied = kubectl("apply", "-f", "-", stdin=converted.stdout)
    assert "issuer.acmeflow.io/pebble-from-cert-manager created" in applied.stdout

    issuer = wait_for_ready(kubectl, "issuers.acmeflow.io", namespace, "pebble-from-cert-manager")
    solvers = issuer["spec"]["acme"]["solvers"]
    assert solvers[0]["dns01"]["rfc2136"]["tsigAlgorithm"] == "hmacsha256"
    assert solvers[1]["http01"]["ingress"] == {"serviceType": "ClusterIP"}
    kubectl.create(
        certificate_manifest(namespace, "converted", names, issuer="pebble-from-cert-manager")
    )
    wait_for_ready(kubectl, "certificates.acmeflow.io", namespace, "converted")
    secret = tls_secret(kubectl, namespace, "converted-tls")
    assert secret is not None
    assert_certificate(
        secret["tls.crt"].decode(), load_private_key(secret["tls.key"]), names, stack.pebble_roots
    )
