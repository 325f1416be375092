"""No DNS-01 provider's credentials reach a workflow history.

The credentials are the TSIG secret (RFC 2136), the TSIG secret the webhook's config names
(its Secret), the AWS secret access key (Route53) and the PowerDNS API key (lexicon). The
search is tests/orders/history_search.py's; first it is shown to find each of them planted
in a real history, then a Certificate is issued through each provider from Kubernetes and
every history of its Certificate, Order and Issuer account workflows is searched.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    tls_secret,
    wait_for_ready,
)
from tests.bridge.test_certificates import _histories, _leaf, _orders_of, _public_key
from tests.dns01.provider_cases import CASES, ProviderCase, unique_label
from tests.dns01.provider_fixtures import provider_namespace, ready
from tests.k8s.kube_helpers import Kubectl
from tests.orders.history_search import HistoryText

WORKFLOW_TYPES = ["CertificateWorkflow", "IssuerAccountWorkflow", "OrderWorkflow"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_a_planted_provider_secret_is_found(
    case: ProviderCase, stack: StackInfo, temporal_client: Client
) -> None:
    """Each credential, as text in a termination reason and JSON-escaped in an input."""
    credentials = case.secret_values(stack)
    unpolled = f"nobody-{uuid.uuid4().hex[:8]}"
    for secret in credentials:
        value = secret.needles[0].decode()
        for termination, planted_input in ((value, None), ("planted", {"leaked": value})):
            handle = await temporal_client.start_workflow(
                "PlantedSecret",
                planted_input,
                id=f"planted-{uuid.uuid4().hex}",
                task_queue=unpolled,
            )
            await handle.terminate(reason=termination)
            found = HistoryText(await handle.fetch_history()).found(credentials)
            assert found == [secret.name]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_no_history_holds_a_provider_credential(
    case: ProviderCase,
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    provider_worker: None,
    request: pytest.FixtureRequest,
) -> None:
    ready(case, request)
    forbidden = [secret for each in CASES for secret in each.secret_values(stack)]
    names = case.names(unique_label("secretive"))
    with provider_namespace(kubectl, stack, [case]) as namespace:
        kubectl.create(certificate_manifest(namespace, "secretive", names, issuer=case.name))
        wait_for_ready(kubectl, "certificate", namespace, "secretive", timeout_s=180)
        tls = tls_secret(kubectl, namespace, "secretive-tls")
        assert tls is not None
        [order] = _orders_of(kubectl, namespace, "secretive")
        histories = _histories(
            stack,
            [
                f"certificate/{namespace}/secretive",
                f"order/{namespace}/{order}",
                f"issuer/{namespace}/{case.name}",
            ],
        )
    assert sorted(histories) == WORKFLOW_TYPES
    for order_history in histories["OrderWorkflow"]:  # the search does read these payloads
        assert order_history.contains(_public_key(_leaf(tls)))
    for history in [h for runs in histories.values() for h in runs]:
        assert history.found(forbidden) == [], f"in the history of {history.workflow_id}"
