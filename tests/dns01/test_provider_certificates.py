"""Every DNS-01 provider issues a wildcard and its apex from a Kubernetes Certificate.

The Certificate is acmeflow's own kind, applied with kubectl as a user would, through an
Issuer whose solver is the provider's (tests/dns01/provider_cases.py). It must become
Ready with a chain naming both names, and the provider must hold no TXT value at the
shared ``_acme-challenge`` name afterwards.
"""

from __future__ import annotations

import pytest

from acmeflow.activities.csr import load_private_key
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    tls_secret,
    wait_for_ready,
)
from tests.dns01.provider_cases import CASES, ProviderCase, challenge_record, unique_label
from tests.dns01.provider_fixtures import provider_namespace, ready
from tests.k8s.kube_helpers import Kubectl
from tests.orders.order_harness import assert_certificate


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_wildcard_and_its_apex_become_ready_and_leave_no_txt(
    case: ProviderCase,
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    provider_worker: None,
    request: pytest.FixtureRequest,
) -> None:
    ready(case, request)
    names = case.names(unique_label("cert"))
    with provider_namespace(kubectl, stack, [case]) as namespace:
        kubectl.create(certificate_manifest(namespace, "wild", names, issuer=case.name))
        wait_for_ready(kubectl, "certificate", namespace, "wild", timeout_s=180)
        tls = tls_secret(kubectl, namespace, "wild-tls")
        assert tls is not None, "the Certificate is Ready but its Secret is missing"
        key = load_private_key(tls["tls.key"])
        assert_certificate(tls["tls.crt"].decode(), key, names, stack.pebble_roots)
    assert case.txt_values(stack, challenge_record(names[1])) == []
