"""A broken DNS-01 provider says why in the Challenge's reason and disturbs no other.

For each failure kind (bad credentials, a zone the provider does not host, its API out of
reach) and each provider, one order goes to the broken provider while an order on another
provider runs on the same worker at the same time. The broken order's challenge reason
must name the provider and carry what the provider (or the network) said; the other order
must issue as if nothing happened. Single-provider failure details are each provider's own
tests (tests/dns01/test_<provider>.py); this is the "nothing else disturbed" proof.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from kubernetes import config as kube_config
from temporalio.client import Client, WorkflowFailureError

from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import build_worker
from acmeflow.worker.kubernetes import kubernetes_services
from acmeflow.workflows.order import OrderTimeouts, OrderWorkflow
from tests.dns01.provider_cases import (
    CASES,
    Credentials,
    Fault,
    ProviderCase,
    challenge_record,
    unique_label,
)
from tests.dns01.provider_fixtures import ready, worker_overrides
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.orders.order_harness import (
    PreparedOrder,
    assert_certificate,
    issuer,
    prepare,
    start,
    worker_config,
)

GIVE_UP_S = 8.0
"""How long a retryable failure (an API out of reach) is retried before the order says so."""
ORDER_WITHIN_S = 120.0


def _neighbour(case: ProviderCase) -> ProviderCase:
    """Another provider than ``case``, whose order must issue beside the broken one."""
    return next(c for c in CASES if c.name != case.name)


def _order(
    case: ProviderCase,
    stack: StackInfo,
    credentials: Credentials,
    names: list[str],
    fault: Fault | None = None,
) -> PreparedOrder:
    solver = case.solver(stack, credentials, fault)
    return prepare(
        names,
        issuer(stack, credentials.directory, solvers=[solver]),
        timeouts=OrderTimeouts(acme_call_s=GIVE_UP_S),
    )


async def _broken_beside_healthy(
    fault: Fault,
    case: ProviderCase,
    *,
    stack: StackInfo,
    kubectl: Kubectl,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    ready(case, request)
    other = _neighbour(case)
    ready(other, request)
    with temporary_namespace(kubectl, "dns01-failure") as namespace:
        credentials = Credentials(tmp_path, kubectl, namespace)
        broken = _order(
            case, stack, credentials, case.fault_names(fault, unique_label("broken")), fault
        )
        healthy_names = other.names(unique_label("beside"))
        healthy = _order(other, stack, credentials, healthy_names)
        api = kube_config.new_client_from_config(config_file=str(stack.kubeconfig))
        with case.fault_worker(stack, fault) as breaking:
            config = worker_config(stack, task_queue, **(worker_overrides(stack) | breaking))
            async with build_worker(
                temporal_client, config, kubernetes=kubernetes_services(config, api)
            ):
                broken_handle = await start(temporal_client, broken, task_queue)
                healthy_handle = await start(temporal_client, healthy, task_queue)
                result = await asyncio.wait_for(healthy_handle.result(), ORDER_WITHIN_S)
                with pytest.raises(WorkflowFailureError):
                    await asyncio.wait_for(broken_handle.result(), ORDER_WITHIN_S)
                progress = await broken_handle.query(OrderWorkflow.progress)

    assert result.state == "valid"
    assert_certificate(result.certificate, healthy.key, healthy_names, stack.pebble_roots)
    assert other.txt_values(stack, challenge_record(healthy_names[-1])) == []
    assert progress.state == "errored"
    reasons = [c.reason for c in progress.challenges]
    assert reasons, f"no challenge was made for the broken order: {progress.reason}"
    for reason in reasons:
        assert case.said_as in reason, reason
        assert any(words in reason for words in case.what_it_said(fault)), reason
        if fault is Fault.MISSING_ZONE:
            assert case.foreign_zone in reason, reason


Breaks = Callable[[Fault, ProviderCase], Awaitable[None]]


@pytest.fixture
def broken_beside_healthy(
    stack: StackInfo,
    kubectl: Kubectl,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Breaks:
    """Break ``case`` by ``fault`` while another provider issues; check both outcomes."""

    async def check(fault: Fault, case: ProviderCase) -> None:
        await _broken_beside_healthy(
            fault,
            case,
            stack=stack,
            kubectl=kubectl,
            temporal_client=temporal_client,
            task_queue=task_queue,
            tmp_path=tmp_path,
            request=request,
        )

    return check


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_bad_credentials_are_named_and_disturb_no_other_provider(
    case: ProviderCase, broken_beside_healthy: Breaks
) -> None:
    await broken_beside_healthy(Fault.BAD_CREDENTIALS, case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_a_missing_zone_is_named_and_disturbs_no_other_provider(
    case: ProviderCase, broken_beside_healthy: Breaks
) -> None:
    """A zone DNS knows (its SOA is found) that the provider does not host."""
    await broken_beside_healthy(Fault.MISSING_ZONE, case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_an_unreachable_api_is_named_and_disturbs_no_other_provider(
    case: ProviderCase, broken_beside_healthy: Breaks
) -> None:
    """Retried as an outage, then named once the step gives up (GIVE_UP_S)."""
    await broken_beside_healthy(Fault.UNREACHABLE, case)
