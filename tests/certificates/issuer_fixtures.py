"""Fixtures for tests/certificates/test_issuers.py: a bridge whose ClusterIssuers keep
their Secrets in a namespace of the test's own, and a Pebble that demands EAB."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest

from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from tests.bridge.bridge_harness import BridgeProcess
from tests.k8s.kube_helpers import Kubectl, temporary_namespace

ISSUERS_EAB_KEY_ID = "kid-issuers"
ISSUERS_EAB_HMAC = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
ACCOUNT_KEY_CHECK_S = 2.0
"""The bridge's ``--account-key-check-s``: how soon a replaced account key is noticed."""


@pytest.fixture(scope="module")
def cluster_resource_namespace(kubectl: Kubectl) -> Iterator[str]:
    """Where this module's bridge reads the Secrets its ClusterIssuers name."""
    with temporary_namespace(kubectl, "cluster-resources") as name:
        yield name


@pytest.fixture(scope="module")
def issuers_bridge(
    stack: StackInfo,
    kubectl: Kubectl,
    queues: tuple[str, str],
    cluster_resource_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BridgeProcess]:
    """``acmeflow bridge`` with ``--cluster-resource-namespace`` and a short key check."""
    log = tmp_path_factory.mktemp("issuers-bridge") / "bridge.log"
    process = BridgeProcess(
        stack,
        queues[0],
        queues[1],
        log,
        extra_args=[
            "--cluster-resource-namespace",
            cluster_resource_namespace,
            "--account-key-check-s",
            str(ACCOUNT_KEY_CHECK_S),
        ],
    )
    process.start()
    yield process
    process.stop()
    print(f"bridge log ({log}):\n{process.log()[-4000:]}")


@pytest.fixture(scope="module")
def issuers_eab_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A CA that registers accounts only with an External Account Binding."""
    options = PebbleOptions(
        name="pebble-eab-issuers", eab_keys={ISSUERS_EAB_KEY_ID: ISSUERS_EAB_HMAC}
    )
    process, endpoints = start_extra_pebble(stack, options)
    try:
        yield endpoints
    finally:
        stop_pid_file(process.pid_path)
