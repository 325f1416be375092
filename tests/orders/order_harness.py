"""Building blocks for order tests: issuers on the stack, in-process workers, checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store
from temporalio.client import Client, WorkflowHandle

from acmeflow.activities.csr import PrivateKey, build_csr, generate_private_key
from acmeflow.contracts.issuer import (
    ExternalAccountBinding,
    Http01Ingress,
    IssuerConfig,
    Rfc2136,
    SolverConfig,
)
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.progress import OrderProgress
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.bind import self_check_nameservers
from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.config import WorkerConfig
from acmeflow.workflows.order import OrderInput, OrderResult, OrderTimeouts, OrderWorkflow


def http01_solver() -> SolverConfig:
    return SolverConfig(http01=Http01Ingress())


def dns01_solver(stack: StackInfo) -> SolverConfig:
    return SolverConfig(
        dns01=Rfc2136(
            nameserver=stack.dns_address,
            tsig_key_name=stack.tsig_key_name,
            tsig_secret=SecretRef(path=str(stack.tsig_secret_path)),
            tsig_algorithm=stack.tsig_algorithm,
        )
    )


def issuer(
    stack: StackInfo,
    account_dir: Path,
    *,
    server: str = "",
    solvers: list[SolverConfig] | None = None,
    eab: ExternalAccountBinding | None = None,
) -> IssuerConfig:
    return IssuerConfig(
        name="test-issuer",
        server=server or stack.acme_directory_url,
        account_key=SecretRef(path=str(account_dir / f"account-{uuid.uuid4().hex[:6]}.pem")),
        ca_bundle_pem=stack.acme_ca_bundle.read_text(),
        external_account_binding=eab,
        solvers=solvers if solvers is not None else [http01_solver()],
    )


def worker_config(stack: StackInfo, task_queue: str, **overrides: Any) -> WorkerConfig:
    """A worker wired to the stack's responder and BIND9; ``overrides`` win."""
    settings: dict[str, Any] = {
        "temporal_address": stack.temporal_address,
        "task_queue": task_queue,
        "http01_store_dir": stack.http01_store,
        "self_check_resolver": stack.dns_address,
        "self_check_http01_port": stack.http01_port,
        "self_check_dns_port": stack.ports.dns,
        "self_check_nameservers": self_check_nameservers(stack.ports.powerdns),
        "graceful_shutdown_s": 1,
    }
    return WorkerConfig(**(settings | overrides))


@dataclass
class PreparedOrder:
    """An order input and the private key behind its CSR (which stays in the test)."""

    order: OrderInput
    key: PrivateKey
    workflow_id: str


def prepare(
    names: list[str],
    issuer_config: IssuerConfig,
    *,
    csr_names: list[str] | None = None,
    timeouts: OrderTimeouts | None = None,
) -> PreparedOrder:
    key = generate_private_key("ECDSA")
    order_name = f"test-{uuid.uuid4().hex[:10]}"
    csr = build_csr(key, RequestedNames(dns_names=csr_names or names))
    order = OrderInput(
        order_name=order_name,
        issuer=issuer_config,
        request=csr,
        names=RequestedNames(dns_names=names),
        timeouts=timeouts or OrderTimeouts(),
    )
    return PreparedOrder(order=order, key=key, workflow_id=f"order/test/{order_name}")


async def start(
    client: Client, prepared: PreparedOrder, task_queue: str
) -> WorkflowHandle[OrderWorkflow, OrderResult]:
    return await client.start_workflow(
        OrderWorkflow.run, prepared.order, id=prepared.workflow_id, task_queue=task_queue
    )


def assert_certificate(chain_pem: str, key: PrivateKey, names: list[str], roots_path: Path) -> None:
    """The chain names exactly ``names``, matches ``key`` and chains to Pebble's root."""
    chain = x509.load_pem_x509_certificates(chain_pem.encode())
    leaf = chain[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert leaf.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ) == key.public_key().public_bytes(serialization.Encoding.PEM, public)
    root = x509.load_pem_x509_certificate(roots_path.read_bytes())
    covered = names[0].replace("*.", "any.", 1)
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(covered))
    assert len(verifier.verify(leaf, chain[1:])) >= 3


def txt_values(stack: StackInfo, record: str) -> list[str]:
    host, port = stack.dns_address.split(":")
    answer = dns.query.udp(dns.message.make_query(record, "TXT"), host, port=int(port), timeout=5)
    return [b"".join(r.strings).decode() for rrset in answer.answer for r in rrset]


def leftover_tokens(stack: StackInfo, progress: OrderProgress) -> list[str]:
    """Tokens of this order's challenges still published in the HTTP-01 store."""
    return sorted(
        c.spec.token for c in progress.challenges if (stack.http01_store / c.spec.token).exists()
    )
