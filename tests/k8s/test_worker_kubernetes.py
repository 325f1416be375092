"""``acmeflow worker --kubernetes``: Secrets and HTTP-01 routing, wired by ``build_worker``."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from acmeflow.activities.http01 import DirectoryStore
from acmeflow.activities.http01_routes import KubernetesHttp01Routes
from acmeflow.activities.kubernetes_api import MANAGED_LABEL
from acmeflow.contracts.issuer import Rfc2136, SolverConfig
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.settings import add_config_flags
from acmeflow.worker.build import build_worker, http01_publisher
from acmeflow.worker.config import WorkerConfig, load_config
from acmeflow.worker.kubernetes import kubernetes_services
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.orders.order_harness import assert_certificate, issuer, prepare, start, worker_config

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    return Kubectl(stack)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "worker-k8s") as name:
        yield name


def test_kubernetes_mode_is_configured_by_flags_and_environment(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, WorkerConfig)
    args = parser.parse_args(["--kubernetes", "true", "--kubeconfig", str(tmp_path / "kc")])
    config = load_config(args, env={"ACMEFLOW_SOLVER_NAMESPACE": "cert-system"})
    assert config.kubernetes
    assert config.kubeconfig == tmp_path / "kc"
    assert config.solver_namespace == "cert-system"
    assert not load_config(parser.parse_args([]), env={}).kubernetes


def test_a_store_directory_wins_over_kubernetes_routing(stack: StackInfo, tmp_path: Path) -> None:
    config = worker_config(stack, "unused", kubernetes=True, kubeconfig=stack.kubeconfig)
    services = kubernetes_services(config)
    assert isinstance(services.http01, KubernetesHttp01Routes)
    assert http01_publisher(None, services.http01) is services.http01
    assert isinstance(http01_publisher(tmp_path, services.http01), DirectoryStore)


async def test_a_kubernetes_worker_keeps_the_account_key_and_tsig_secret_in_secrets(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> None:
    kubectl(
        "create", "secret", "generic", "tsig", "-n", namespace,
        f"--from-file=secret={stack.tsig_secret_path}",
    )  # fmt: skip
    solver = SolverConfig(
        dns01=Rfc2136(
            nameserver=stack.dns_address,
            tsig_key_name=stack.tsig_key_name,
            tsig_secret=SecretRef(namespace=namespace, name="tsig", key="secret"),
            tsig_algorithm=stack.tsig_algorithm,
        )
    )
    account = SecretRef(namespace=namespace, name="acme-account", key="tls.key")
    issuer_config = dataclasses.replace(
        issuer(stack, tmp_path, solvers=[solver]), account_key=account
    )
    config = worker_config(stack, task_queue, kubernetes=True, kubeconfig=stack.kubeconfig)
    account_keys = []
    async with build_worker(temporal_client, config):
        for _ in range(2):
            names = [f"kw-{uuid.uuid4().hex[:8]}.example.com"]
            prepared = prepare(names, issuer_config)
            result = await (await start(temporal_client, prepared, task_queue)).result()
            assert result.state == "valid"
            assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
            secret = kubectl.get("secret", "acme-account", namespace=namespace)
            account_keys.append(base64.b64decode(secret["data"]["tls.key"]))
    assert secret["metadata"]["labels"] == {MANAGED_LABEL: "true"}
    assert account_keys[0].startswith(b"-----BEGIN")
    assert account_keys[0] == account_keys[1]  # the second order reused the stored account key
