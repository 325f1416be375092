"""SIGKILL the worker between present and accept, for every DNS-01 provider.

Several Certificates (each a wildcard and its apex: two values at one name) are applied
through an Issuer on the provider, whose CA is Pebble behind the test's counting proxy
(tests/orders/durability_proxy.py). The first ``acmeflow worker --kubernetes`` process
checks propagation against a server that knows no TXT value
(tests/orders/durability_gates.py), so every challenge sits presented, its values in the
provider, when the worker is killed. A second worker, with the real settings, must finish
every Certificate with one ACME order each, and leave no TXT value in the provider.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from acmeflow.devstack.bind import self_check_nameservers
from acmeflow.devstack.stack import StackInfo
from acmeflow.devstack.tls import KeyPair, create_ca
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    wait_for,
    wait_for_ready,
)
from tests.dns01.provider_cases import CASES, ProviderCase, challenge_record, unique_label
from tests.dns01.provider_fixtures import provider_namespace, ready, worker_args
from tests.k8s.kube_helpers import Kubectl
from tests.orders.durability_gates import EmptyDnsServer
from tests.orders.durability_proxy import AcmeProxy
from tests.orders.durability_workers import WorkerProcess, start_worker

CERTIFICATES = 3
REACH_KILL_POINT_S = 90.0
READY_AFTER_KILL_S = 180.0


@pytest.fixture
def tls_ca(stack: StackInfo) -> KeyPair:
    """The stack's local CA, which every Issuer's caBundle trusts (the proxy's leaf too)."""
    return create_ca(stack.state_dir / "tls", "ca", "acmeflow-dev-local-ca")


def _challenges(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    listed = kubectl("get", "challenges", "-n", namespace, "-o", "json", check=False)
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"] if listed.stdout else []
    return items


def _order_urls(kubectl: Kubectl, namespace: str) -> list[str]:
    listed = json.loads(kubectl("get", "orders", "-n", namespace, "-o", "json").stdout)
    return sorted(item["status"]["url"] for item in listed["items"])


def _waiting_presented(
    challenges: list[dict[str, Any]], expected: int, gate_port: int
) -> list[dict[str, Any]] | None:
    """Every challenge presented and failing its self-check at the gate; else None."""
    waiting = [
        c
        for c in challenges
        if (c.get("status") or {}).get("presented")
        and re.search(rf"127\.0\.0\.1:{gate_port}\b", (c.get("status") or {}).get("reason") or "")
    ]
    return waiting if len(waiting) == expected else None


def _held_by_provider(
    case: ProviderCase, stack: StackInfo, challenges: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """The provider's TXT values at each record the challenges use."""
    records = {challenge_record(c["spec"]["dnsName"]) for c in challenges}
    return {record: case.txt_values(stack, record) for record in sorted(records)}


def _kube_worker(
    name: str, stack: StackInfo, task_queue: str, log_dir: Path, *, gate: int | None = None
) -> WorkerProcess:
    """``acmeflow worker --kubernetes``; with ``gate``, every authoritative server the
    self-check would ask (at the DNS port, or named on its own: PowerDNS's) is the gate."""
    gated = [
        arg
        for nameserver in self_check_nameservers(stack.ports.powerdns)
        for arg in ("--self-check-nameserver", f"{nameserver}=127.0.0.1:{gate}")
    ]
    return start_worker(
        name,
        stack,
        task_queue,
        log_dir,
        self_check_dns_port=gate,
        extra_args=[
            *("--kubernetes", "true", "--kubeconfig", str(stack.kubeconfig)),
            *worker_args(stack),
            *(gated if gate else []),
        ],
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_worker_killed_between_present_and_accept_leaves_nothing_behind(
    case: ProviderCase,
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    queues: tuple[str, str],
    tls_ca: KeyPair,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    ready(case, request)
    certificates = {f"kill-{i}": case.names(unique_label("kill")) for i in range(CERTIFICATES)}
    expected = sum(len(names) for names in certificates.values())
    workers: list[WorkerProcess] = []
    with (
        AcmeProxy(stack.acme_directory_url, tls_ca=tls_ca, work_dir=tmp_path) as proxy,
        EmptyDnsServer() as gate,
        provider_namespace(kubectl, stack, [case], server=proxy.directory_url) as namespace,
    ):
        try:
            workers.append(_kube_worker("worker-1", stack, queues[0], tmp_path, gate=gate.port))
            for name, names in certificates.items():
                kubectl.create(certificate_manifest(namespace, name, names, issuer=case.name))
            waiting = wait_for(
                lambda: _waiting_presented(_challenges(kubectl, namespace), expected, gate.port),
                f"{expected} challenges presented, waiting for propagation at the gate",
                timeout_s=REACH_KILL_POINT_S,
            )
            workers[0].kill()
            held = _held_by_provider(case, stack, waiting)
            keys = sorted(c["spec"]["key"] for c in waiting)
            # Positive control: the provider's listing shows what was presented, both values
            # of each wildcard and its apex at their shared name.
            assert sorted(v for values in held.values() for v in values) == keys
            assert all(len(values) == 2 for values in held.values()), held

            workers.append(_kube_worker("worker-2", stack, queues[0], tmp_path))
            for name in certificates:
                wait_for_ready(
                    kubectl, "certificate", namespace, name, timeout_s=READY_AFTER_KILL_S
                )
            orders = _order_urls(kubectl, namespace)
        finally:
            for worker in workers:
                worker.stop()
            for worker in workers:
                print(f"--- {worker.name} ({worker.log_path}):\n{worker.log()}")
        assert len(orders) == CERTIFICATES
        assert sorted(proxy.orders_created) == orders, "a Certificate made a second ACME order"
        assert _held_by_provider(case, stack, waiting) == {record: [] for record in held}


def test_the_kill_test_waits_where_it_says() -> None:
    """The kill point is recognised only by the gate's own port in a challenge's reason."""
    presented = {"presented": True, "reason": "ns.example.com. (127.0.0.1:4242), ... serves 0"}
    elsewhere = {"presented": True, "reason": "ns.example.com. (127.0.0.1:42421), ... serves 0"}
    assert _waiting_presented([{"status": presented}], 1, 4242) is not None
    assert _waiting_presented([{"status": elsewhere}], 1, 4242) is None
    assert _waiting_presented([{"status": presented}], 2, 4242) is None
