"""Fixtures for acmeflow as cert-manager's external issuer: cert-manager's CRDs, a bridge with
``--external-issuer true``, an order worker, a namespace with acmeflow Issuers, a ClusterIssuer.

Reusable by tests that also run cert-manager's controllers (the session ``cert_manager``
fixture): the bridge keeps ClusterIssuer Secrets in the same cluster resource namespace
cert-manager uses. The bridge and the worker are module-scoped (one pair per test module,
each on its own task queues); a module may set ``WORKER_OVERRIDES`` for its worker.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from acmeflow.devstack.cert_manager import CLUSTER_RESOURCE_NAMESPACE, install_cert_manager_crds
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    dns01_solver,
    http01_solver,
    issuer_manifest,
    tsig_secret,
    unique,
)
from tests.bridge.conftest import kubectl, order_worker, queues
from tests.k8s.kube_helpers import Kubectl, temporary_namespace

__all__ = ["kubectl", "order_worker", "queues"]


@pytest.fixture(scope="session")
def cert_manager_crds(stack: StackInfo, kubectl: Kubectl) -> str:
    """cert-manager's external-issuer CRDs installed; the cluster resource namespace."""
    install_cert_manager_crds(stack)
    return CLUSTER_RESOURCE_NAMESPACE


@pytest.fixture(scope="module")
def bridge(
    stack: StackInfo,
    kubectl: Kubectl,
    cert_manager_crds: str,
    queues: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BridgeProcess]:
    """``acmeflow bridge --external-issuer true``: it signs CertificateRequests too."""
    log = tmp_path_factory.mktemp("bridge") / "bridge.log"
    process = BridgeProcess(
        stack,
        queues[0],
        queues[1],
        log,
        extra_args=[
            "--external-issuer",
            "true",
            "--cluster-resource-namespace",
            cert_manager_crds,
        ],
    )
    process.start()
    yield process
    process.stop()
    print(f"bridge log ({log}):\n{process.log()[-4000:]}")


def signing_issuer(stack: StackInfo, namespace: str, name: str = "pebble") -> dict[str, Any]:
    """HTTP-01 where the CA offers it, DNS-01 (RFC 2136 to BIND9) for wildcards."""
    return issuer_manifest(stack, namespace, name, solvers=[http01_solver(), dns01_solver(stack)])


@pytest.fixture
def namespace(stack: StackInfo, kubectl: Kubectl) -> Iterator[str]:
    """A namespace with the TSIG Secret, Issuer ``pebble`` (HTTP-01, DNS-01 for wildcards)
    and Issuer ``dns`` (DNS-01 only)."""
    with temporary_namespace(kubectl, "signer") as name:
        kubectl.create(tsig_secret(stack, name))
        kubectl.create(signing_issuer(stack, name))
        kubectl.create(issuer_manifest(stack, name, "dns", solvers=[dns01_solver(stack)]))
        yield name


@pytest.fixture(scope="module")
def cluster_issuer(stack: StackInfo, kubectl: Kubectl, cert_manager_crds: str) -> Iterator[str]:
    """An acmeflow ClusterIssuer (as ``signing_issuer``); its Secrets in the cluster
    resource namespace the bridge was given."""
    name = unique("cluster-pebble")
    kubectl("apply", "-f", "-", stdin=json.dumps(tsig_secret(stack, cert_manager_crds)))
    manifest = signing_issuer(stack, cert_manager_crds, name)
    manifest["kind"] = "ClusterIssuer"
    del manifest["metadata"]["namespace"]
    kubectl.create(manifest)
    yield name
    kubectl("delete", "clusterissuers.acmeflow.io", name, "--wait=false", check=False)


@pytest.fixture
def approval_by_hand() -> Callable[[], AbstractContextManager[None]]:
    """No approver but the test while its context is open: cert-manager's own approver (run
    by the session's ``cert_manager`` fixture, if a test asked for it) approves every request
    within milliseconds, so a request could never be seen unapproved or be denied. Its
    process is paused meanwhile; once resumed it leaves decided requests alone."""
    from tests.conftest import _cert_managers

    @contextmanager
    def paused() -> Iterator[None]:
        pids = [info.pid for info in _cert_managers]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    return paused
