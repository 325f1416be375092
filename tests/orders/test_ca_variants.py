"""CAs that demand more: External Account Binding, and nonces rejected.

The nonce tests count through the test's proxy (``durability_proxy``) that badNonce
answers really happened and that each rejected request was sent again and accepted.
"""

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
from acmeflow.devstack.tls import KeyPair, create_ca
from acmeflow.worker.build import build_worker
from acmeflow.workflows.order import OrderWorkflow
from tests.orders.durability_proxy import AcmeProxy, Exchange
from tests.orders.order_harness import (
    assert_certificate,
    issuer,
    prepare,
    start,
    worker_config,
)

EAB_KID = "kid-acmeflow"
PEBBLE_FINALIZE_PREFIX = "/finalize-order/"
PEBBLE_CHALLENGE_PREFIX = "/chalZ/"


@pytest.fixture
def tls_ca(stack: StackInfo) -> KeyPair:
    """The stack's local CA, which the issuer's CA bundle trusts (and the proxy serves)."""
    return create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")


def accepted_after(proxy: AcmeProxy, rejected: Exchange) -> Exchange | None:
    """The first later POST to the same path that Pebble answered 2xx, if any."""
    return next(
        (
            e
            for e in proxy.posts_to(rejected.path)
            if e.at > rejected.at and not e.refused and 200 <= e.status < 300
        ),
        None,
    )


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


async def test_rejected_nonces_are_retried_until_the_ca_accepts(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    tls_ca: KeyPair,
) -> None:
    """badNonce on new-order (three in a row: past the client's own single retry, so
    Temporal retries the step), finalize and challenge: each request is sent again."""
    names = ["test2.example.com"]
    with AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy:
        planned = {proxy.new_order_path: 3, PEBBLE_FINALIZE_PREFIX: 1, PEBBLE_CHALLENGE_PREFIX: 1}
        for prefix, times in planned.items():
            proxy.reject_nonces(prefix, times=times)
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        async with build_worker(temporal_client, worker_config(stack, task_queue)):
            result = await (await start(temporal_client, prepared, task_queue)).result()

    rejected = proxy.refused("badNonce")
    assert {p: sum(e.path.startswith(p) for e in rejected) for p in planned} == planned
    for exchange in rejected:
        assert accepted_after(proxy, exchange), f"{exchange.path} was not sent again"
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    assert proxy.orders_created == [result.url], "exactly one new-order reached Pebble"


async def test_issues_while_half_the_nonces_are_rejected(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    tls_ca: KeyPair,
    nonce_rejecting_pebble: PebbleEndpoints,
) -> None:
    """Pebble's own badNonce answers (400, the only 4xx an issued order meets) are retried."""
    names = ["test2.example.com", "test3.example.com"]
    with AcmeProxy(nonce_rejecting_pebble.directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy:
        prepared = prepare(names, issuer(stack, tmp_path, server=proxy.directory_url))
        async with build_worker(temporal_client, worker_config(stack, task_queue)):
            handle = await start(temporal_client, prepared, task_queue)
            result = await handle.result()
    rejected = [e for e in proxy.exchanges if e.method == "POST" and e.status == 400]
    assert rejected, "Pebble rejected no nonce: the test proved nothing"
    for exchange in rejected:
        assert accepted_after(proxy, exchange), f"{exchange.path} was not sent again"
    assert_certificate(result.certificate, prepared.key, names, nonce_rejecting_pebble.roots_path)
    assert proxy.orders_created == [result.url]
