"""Failures end the order with a reason a person can act on, and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.activities.dns01 import Dns01Activities, Rfc2136Publisher
from acmeflow.activities.dns01_publishers import Dns01Publishers
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.challenge import ChallengeSpec, SelfCheckResult
from acmeflow.contracts.progress import OrderProgress
from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import build_worker, self_check_settings
from acmeflow.workflows.order import OrderTimeouts, OrderWorkflow
from tests.orders.order_harness import (
    dns01_solver,
    http01_solver,
    issuer,
    prepare,
    start,
    txt_values,
    worker_config,
)


async def _fails(client: Client, prepared_handle: object) -> tuple[str, OrderProgress]:
    handle = prepared_handle
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()  # type: ignore[attr-defined]
    progress = await handle.query(OrderWorkflow.progress)  # type: ignore[attr-defined]
    assert failure.value.cause is not None
    return str(failure.value.cause), progress


async def test_a_name_the_ca_refuses(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    prepared = prepare(["blocked.test"], issuer(stack, tmp_path))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        message, progress = await _fails(
            temporal_client, await start(temporal_client, prepared, task_queue)
        )
    assert progress.state == "errored"
    assert "rejectedIdentifier" in progress.reason
    assert "blocked.test" in progress.reason
    assert progress.reason in message
    assert progress.failure_time
    assert [e.reason for e in progress.events] == ["OrderFailed"]


class WrongValueDns01(Dns01Activities):
    """Publishes a value the CA will not accept, and believes its own self-check."""

    @activity.defn(name="present_dns01")
    def present_dns01(self, spec: ChallengeSpec) -> None:
        super().present_dns01(_wrong(spec))

    @activity.defn(name="self_check_dns01")
    def self_check_dns01(self, spec: ChallengeSpec) -> SelfCheckResult:
        return SelfCheckResult(True)

    @activity.defn(name="clean_up_dns01")
    def clean_up_dns01(self, spec: ChallengeSpec) -> None:
        super().clean_up_dns01(_wrong(spec))


def _wrong(spec: ChallengeSpec) -> ChallengeSpec:
    from dataclasses import replace

    return replace(spec, key="wrong-" + spec.key[6:])


async def test_a_wrong_txt_value_makes_the_order_invalid(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    config = worker_config(stack, task_queue)
    tampered = WrongValueDns01(
        Dns01Publishers(rfc2136=Rfc2136Publisher(SecretStore())), self_check_settings(config)
    )
    prepared = prepare(
        ["test4.example.com"], issuer(stack, tmp_path, solvers=[dns01_solver(stack)])
    )
    async with build_worker(temporal_client, config, dns01=tampered):
        _, progress = await _fails(
            temporal_client, await start(temporal_client, prepared, task_queue)
        )
    assert progress.state == "invalid"
    # The CA's own detail reaches the reason.
    assert "Correct value not found for DNS challenge" in progress.reason
    assert progress.challenges[0].state == "invalid"
    reasons = [e.reason for e in progress.events]
    assert reasons[:3] == ["Created", "Started", "Presented"]
    assert "Failed" in reasons
    assert txt_values(stack, dns01_record_name("test4.example.com")) == []


async def test_an_unreachable_ca_is_retried_then_reported(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    server = f"https://127.0.0.1:{free_port()}/dir"
    prepared = prepare(
        ["test5.example.com"],
        issuer(stack, tmp_path, server=server),
        timeouts=OrderTimeouts(acme_call_s=4),
    )
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        message, progress = await _fails(temporal_client, handle)
        history = await handle.fetch_history()
    assert progress.state == "errored", message
    assert "unreachable" in progress.reason
    assert "gave up after 4s" in progress.reason
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(attempts) > 1, "the CA was not retried before giving up"


async def test_a_csr_that_does_not_match_is_rejected_before_any_acme_call(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    prepared = prepare(
        ["test6.example.com", "test7.example.com"],
        issuer(stack, tmp_path),
        csr_names=["test6.example.com", "other.example.com"],
    )
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        _, progress = await _fails(temporal_client, handle)
        history = await handle.fetch_history()
    assert progress.state == "errored"
    assert "other.example.com" in progress.reason and "test7.example.com" in progress.reason
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["check_request"]
    assert not Path(prepared.order.issuer.account_key.path).exists()


async def test_a_wildcard_without_a_dns01_solver(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    prepared = prepare(["*.example.com"], issuer(stack, tmp_path, solvers=[http01_solver()]))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        _, progress = await _fails(
            temporal_client, await start(temporal_client, prepared, task_queue)
        )
    assert progress.state == "errored"
    assert "*.example.com" in progress.reason
    assert "wildcard needs a DNS-01 solver" in progress.reason
    assert progress.challenges == []
