"""CAs that demand more: External Account Binding, and nonces rejected half the time."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from acmeflow.contracts.issuer import ExternalAccountBinding
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.worker.build import build_worker
from acmeflow.workflows.order import OrderWorkflow
from tests.orders.order_harness import (
    assert_certificate,
    issuer,
    prepare,
    start,
    worker_config,
)

EAB_KID = "kid-acmeflow"


@pytest.fixture(scope="module")
def eab_hmac_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def eab_pebble(stack: StackInfo, eab_hmac_key: str) -> Iterator[PebbleEndpoints]:
    process, endpoints = start_extra_pebble(
        stack, PebbleOptions(name="pebble-eab", eab_keys={EAB_KID: eab_hmac_key})
    )
    yield endpoints
    stop_pid_file(process.pid_path)


@pytest.fixture(scope="module")
def nonce_rejecting_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    process, endpoints = start_extra_pebble(
        stack, PebbleOptions(name="pebble-nonce50", nonce_reject_percent=50)
    )
    yield endpoints
    stop_pid_file(process.pid_path)


async def test_eab_required_and_given(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    eab_pebble: PebbleEndpoints,
    eab_hmac_key: str,
) -> None:
    key_file = tmp_path / "eab.key"
    key_file.write_text(eab_hmac_key)
    eab = ExternalAccountBinding(key_id=EAB_KID, key_secret=SecretRef(path=str(key_file)))
    prepared = prepare(
        ["test1.example.com"], issuer(stack, tmp_path, server=eab_pebble.directory_url, eab=eab)
    )
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        result = await (await start(temporal_client, prepared, task_queue)).result()
    assert_certificate(
        result.certificate, prepared.key, ["test1.example.com"], eab_pebble.roots_path
    )


async def test_eab_required_but_missing_says_so(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    eab_pebble: PebbleEndpoints,
) -> None:
    prepared = prepare(
        ["test1.example.com"], issuer(stack, tmp_path, server=eab_pebble.directory_url)
    )
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    assert progress.state == "errored"
    assert "requires External Account Binding" in progress.reason
    assert "externalAccountBinding" in progress.reason


async def test_issues_while_half_the_nonces_are_rejected(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    nonce_rejecting_pebble: PebbleEndpoints,
) -> None:
    names = ["test2.example.com", "test3.example.com"]
    prepared = prepare(names, issuer(stack, tmp_path, server=nonce_rejecting_pebble.directory_url))
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        result = await handle.result()
    assert_certificate(result.certificate, prepared.key, names, nonce_rejecting_pebble.roots_path)
