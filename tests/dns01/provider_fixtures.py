"""Fixtures of the cross-provider tests: the bridge, a worker that reaches every provider,
and each provider's session servers started.

The bridge and kubectl fixtures are tests/bridge's own, re-exported so a test here runs
the same ``acmeflow bridge`` process a user would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import issuer_manifest
from tests.bridge.conftest import WorkerThread, bridge, kubectl, queues
from tests.dns01.provider_cases import CASES, ProviderCase
from tests.k8s.kube_helpers import Kubectl, temporary_namespace

__all__ = ["bridge", "kubectl", "provider_worker", "queues"]


def worker_overrides(stack: StackInfo) -> dict[str, Any]:
    """What a worker needs to reach every provider."""
    merged: dict[str, Any] = {}
    for case in CASES:
        merged |= case.worker_overrides(stack)
    return merged


def worker_args(stack: StackInfo) -> list[str]:
    return [arg for case in CASES for arg in case.worker_args(stack)]


def ready(case: ProviderCase, request: pytest.FixtureRequest) -> None:
    """Start the session servers ``case`` needs (a mirror, a registration)."""
    for fixture in case.fixtures:
        request.getfixturevalue(fixture)


@pytest.fixture(scope="module")
def provider_worker(stack: StackInfo, queues: tuple[str, str]) -> Iterator[None]:
    """An order worker (Kubernetes Secrets, the stack's BIND9) for every provider."""
    with WorkerThread(stack, queues[0], **worker_overrides(stack)):
        yield


@contextmanager
def provider_namespace(
    kubectl: Kubectl, stack: StackInfo, cases: list[ProviderCase], *, server: str = ""
) -> Iterator[str]:
    """A fresh namespace with one Issuer per case, named after it, and its Secrets;
    ``server`` is the Issuers' ACME directory (the stack's Pebble unless given)."""
    with temporary_namespace(kubectl, "dns01") as namespace:
        for case in cases:
            solver, secrets = case.issuer_solver(stack, namespace)
            for secret in secrets:
                kubectl.create(secret)
            issuer = issuer_manifest(stack, namespace, case.name, server=server, solvers=[solver])
            kubectl.create(issuer)
        yield namespace
