"""Fixtures for the deployment manifests: kubectl on the stack, the rendered kustomizations."""

from __future__ import annotations

import pytest

from acmeflow.devstack.stack import StackInfo
from tests.deploy.manifests import BASE, DEV_TEMPORAL, Rendered, render
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds


@pytest.fixture(scope="session")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    return kubectl


@pytest.fixture(scope="session")
def base(kubectl: Kubectl) -> Rendered:
    return render(kubectl, BASE)


@pytest.fixture(scope="session")
def dev_temporal(kubectl: Kubectl) -> Rendered:
    return render(kubectl, DEV_TEMPORAL)
