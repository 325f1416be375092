"""No account key, private key, TSIG or EAB secret ever appears in a workflow history."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from temporalio.client import Client

from acmeflow.activities.csr import private_key_pem
from acmeflow.contracts.issuer import ExternalAccountBinding
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.pebble import PebbleOptions
from acmeflow.devstack.processes import stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.worker.build import build_worker
from tests.orders.history_search import (
    fragments,
    history_text,
    pem_body,
    private_key_traces,
)
from tests.orders.order_harness import (
    dns01_solver,
    http01_solver,
    issuer,
    prepare,
    start,
    worker_config,
)


async def test_histories_hold_references_not_secrets(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    eab_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    process, eab_pebble = start_extra_pebble(
        stack, PebbleOptions(name="pebble-eab-history", eab_keys={"kid-h": eab_key})
    )
    try:
        eab_file = tmp_path / "eab.key"
        eab_file.write_text(eab_key)
        eab = ExternalAccountBinding(key_id="kid-h", key_secret=SecretRef(path=str(eab_file)))
        orders = [
            prepare(["test1.example.com"], issuer(stack, tmp_path, solvers=[http01_solver()])),
            prepare(
                ["*.example.com", "example.com"],
                issuer(stack, tmp_path, solvers=[dns01_solver(stack)]),
            ),
            prepare(
                ["test2.example.com"],
                issuer(stack, tmp_path, server=eab_pebble.directory_url, eab=eab),
            ),
        ]
        async with build_worker(temporal_client, worker_config(stack, task_queue)):
            handles = [await start(temporal_client, o, task_queue) for o in orders]
            for handle in handles:
                await handle.result()
            texts = [history_text(await h.fetch_history()) for h in handles]
    finally:
        stop_pid_file(process.pid_path)

    secret_values = {
        "TSIG secret": [stack.tsig_secret_path.read_text().strip()],
        "EAB HMAC key": [eab_key],
    }
    for prepared in orders:
        account_key = Path(prepared.order.issuer.account_key.path).read_bytes()
        secret_values[f"account key of {prepared.workflow_id}"] = private_key_traces(account_key)
        secret_values[f"private key of {prepared.workflow_id}"] = private_key_traces(
            private_key_pem(prepared.key)
        )
    for text, prepared in zip(texts, orders, strict=True):
        # The search does see payloads: public values of the same order are found.
        assert pem_body(prepared.order.request.encode())[:40] in text
        assert prepared.order.issuer.account_key.path in text
        for what, traces in secret_values.items():
            leaked = [f for trace in traces for f in fragments(trace) if f in text]
            assert not leaked, f"{what} appears in the history of {prepared.workflow_id}"
