"""The lost-heartbeat lookup of ``create_order`` against the stack's real Pebble.

Pebble lists an account's orders oldest first, three to a page; with 25 newer open orders
on the account, the order a crashed attempt created is on the first page, behind eight
``next`` links, and more than twenty orders back. The fake-CA cases are in
tests/unit/test_order_lookup.py.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from acmeflow.activities.acme_client import AcmeClients
from acmeflow.activities.acme_order import AcmeOrderActivities
from acmeflow.activities.csr import build_csr, generate_private_key
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.acme import AcmeOrderState, CreateOrderInput
from acmeflow.contracts.issuer import AccountRef
from acmeflow.contracts.names import RequestedNames
from acmeflow.devstack.stack import StackInfo
from tests.orders.order_harness import issuer

pytestmark = pytest.mark.stack

NEWER_ORDERS = 25
RETRIES = 5


def create(steps: AcmeOrderActivities, request: CreateOrderInput, *, attempt: int) -> str:
    """``create_order`` as attempt ``attempt``, retried as Temporal would on a retryable
    error (Pebble rejects 5% of nonces, and ``acme`` retries a badNonce only once)."""
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=attempt)
    for _ in range(RETRIES):
        try:
            state: AcmeOrderState = environment.run(steps.create_order, request)
            return state.url
        except ApplicationError as error:
            if error.non_retryable:
                raise
            failure = error
    raise failure


def test_a_retry_finds_its_order_behind_more_than_twenty_newer_ones(
    stack: StackInfo, tmp_path: Path
) -> None:
    config = issuer(stack, tmp_path)
    secrets = SecretStore()
    steps = AcmeOrderActivities(AcmeClients(secrets), secrets)
    account = AccountRef.of(config, steps.ensure_account(config))
    run = uuid.uuid4().hex[:6]

    def request(*names: str) -> CreateOrderInput:
        csr = build_csr(generate_private_key("ECDSA"), RequestedNames(dns_names=list(names)))
        return CreateOrderInput(account=account, csr_pem=csr, profile="")

    ours = request(f"lookup-{run}.example.com", f"www.lookup-{run}.example.com")
    first = create(steps, ours, attempt=1)
    newer = [
        create(steps, request(f"other{i}-{run}.example.com"), attempt=1)
        for i in range(NEWER_ORDERS)
    ]
    assert len(set(newer) | {first}) == NEWER_ORDERS + 1

    assert create(steps, ours, attempt=2) == first
    # A name set no order has gets a new order, not one of the others.
    fresh = create(steps, request(f"fresh-{run}.example.com"), attempt=2)
    assert fresh not in {first, *newer}
