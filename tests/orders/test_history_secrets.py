"""No account key, private key, TSIG or EAB secret ever appears in a workflow history.

First the search itself is proven: each kind of secret is planted in a real history (a
workflow started on Temporal, never run) in each encoding a leak could take, and found.
Then the histories of real orders are searched. The Certificate and Issuer account
workflows are searched in ``tests/bridge/test_certificates.py``, where they run.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from temporalio.client import Client

from acmeflow.activities.acme_client import generate_account_key
from acmeflow.activities.csr import generate_private_key, private_key_pem
from acmeflow.contracts.issuer import ExternalAccountBinding
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.pebble import PebbleOptions
from acmeflow.devstack.processes import stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.worker.build import build_worker
from tests.orders.history_search import HistoryText, Secret, private_key_secret, text_secret
from tests.orders.order_harness import (
    dns01_solver,
    http01_solver,
    issuer,
    prepare,
    start,
    worker_config,
)


def _eab_hmac() -> str:
    """An EAB MAC key as a CA hands it out: base64url of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _der(pem: str) -> bytes:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Plant:
    """One secret, in one encoding, put into one workflow history."""

    secret: Secret
    encoding: str
    input: object = None
    """The workflow's input: Temporal stores it as a payload (JSON, or raw bytes)."""
    termination: str = ""
    """The termination reason: Temporal stores it as plain text in the history."""


def _plants(secret: Secret, value: str, *, pem: bool) -> list[Plant]:
    plants = [
        Plant(secret, "as text", termination=value),
        Plant(secret, "JSON-escaped in a payload", input={"leaked": value}),
        Plant(secret, "base64 of the text in a raw payload", input=value.encode()),
    ]
    if pem:
        der_line = base64.b64encode(_der(value)).decode()
        plants.append(Plant(secret, "its DER as one base64 line", input=der_line))
    return plants


async def test_a_secret_planted_in_a_history_is_found_in_every_encoding(
    stack: StackInfo, temporal_client: Client
) -> None:
    private_key = private_key_pem(generate_private_key("ECDSA")).decode()
    account_key = generate_account_key().decode()
    tsig = stack.tsig_secret_path.read_text().strip()
    eab = _eab_hmac()
    assert private_key.startswith("-----BEGIN PRIVATE KEY-----\n")  # P-256 PKCS#8 PEM
    planted = [
        (private_key_secret("private key", private_key.encode()), private_key, True),
        (private_key_secret("account key", account_key.encode()), account_key, True),
        (text_secret("TSIG secret", tsig), tsig, False),
        (text_secret("EAB HMAC key", eab), eab, False),
    ]
    every = [secret for secret, _, _ in planted]
    plants = [p for secret, value, pem in planted for p in _plants(secret, value, pem=pem)]
    # The histories are real; no worker runs them, and their type is no product workflow's,
    # so nothing that lists Order workflows meets them.
    unpolled = f"nobody-{uuid.uuid4().hex[:8]}"
    for plant in plants:
        handle = await temporal_client.start_workflow(
            "PlantedSecret", plant.input, id=f"planted-{uuid.uuid4().hex}", task_queue=unpolled
        )
        await handle.terminate(reason=plant.termination or "planted")
        found = HistoryText(await handle.fetch_history()).found(every)
        assert found == [plant.secret.name], f"{plant.secret.name} {plant.encoding}: {found}"


async def test_order_histories_hold_references_not_secrets(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    eab_key = _eab_hmac()
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
            texts = [HistoryText(await h.fetch_history()) for h in handles]
    finally:
        stop_pid_file(process.pid_path)

    forbidden = [
        text_secret("TSIG secret", stack.tsig_secret_path.read_text().strip()),
        text_secret("EAB HMAC key", eab_key),
    ]
    for prepared in orders:
        account_key = Path(prepared.order.issuer.account_key.path).read_bytes()
        forbidden += [
            private_key_secret(f"account key of {prepared.workflow_id}", account_key),
            private_key_secret(
                f"private key of {prepared.workflow_id}", private_key_pem(prepared.key)
            ),
        ]
    for text, prepared in zip(texts, orders, strict=True):
        # The search does read payloads: public values of the same order are found in them.
        csr = x509.load_pem_x509_csr(prepared.order.request.encode())
        public_key = csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert text.contains(Secret("the CSR's public key", (public_key,)))
        path = prepared.order.issuer.account_key.path
        assert text.contains(Secret("the account key's path", (path.encode(),)))
        assert text.found(forbidden) == [], f"in the history of {prepared.workflow_id}"
