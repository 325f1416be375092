"""``helm install`` of deploy/helm/acmeflow into the test stack, then a Certificate issued by
acmeflow's processes running under the chart's RBAC alone (issue 17).

The stack runs no kubelet, so the chart's pods never start. Helm installs every object for
real (ServiceAccounts, roles and bindings, the ConfigMap, the Service, the Deployments); the
solver, the worker and the bridge then run as local processes, each with a kubeconfig holding
a token of the ServiceAccount the chart made, and with the arguments and environment read
back from the installed Deployments and ConfigMap. Only what must point at this host is
replaced: the kubeconfig, the Temporal address, the bind ports, and task queues of their own.
That is test_rbac's ``installation`` fixture, fed here with the installed objects; its
Certificate, identity and SIGTERM tests run again on top.

Names: the chart names its objects as deploy/base does (``acmeflow-worker`` ...) whatever the
release, and tests/deploy applies the base's RBAC into the same session stack; Helm refuses
to adopt objects it did not make. So ``release`` first deletes whatever exists of the chart's
``helm template`` render (the CRDs aside) and the bridge's Lease, installs, and ``helm
uninstall`` removes it all at the end. Each module that needs the base's RBAC applies it in
a module-scoped fixture of its own, so a module that runs later still finds what it needs.
``--take-ownership`` would install over the base's objects instead, but then nothing would
show that the chart, and not the base, granted what the processes did.

CRDs: the stack installs acmeflow's CRDs before any test; Helm installs crds/ only when a CRD
is absent, so they stay exactly as they were.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from acmeflow.devstack.stack import StackInfo
from tests.deploy import test_rbac as rbac_tests
from tests.deploy.manifests import NAMESPACE, Rendered, flag_values
from tests.helm.test_chart import CHART, HELM_LABELS, Obj, helm, key, template
from tests.k8s.kube_helpers import ACMEFLOW_RESOURCES, Kubectl

pytestmark = pytest.mark.stack

RELEASE = "acmeflow"
RELEASE_SELECTOR = f"app.kubernetes.io/managed-by=Helm,app.kubernetes.io/instance={RELEASE}"
CHART_KINDS = "serviceaccounts,configmaps,services,deployments,roles,rolebindings"
CLUSTER_KINDS = "clusterroles,clusterrolebindings"
CRDS = [f"customresourcedefinitions/{resource}.acmeflow.io" for resource in ACMEFLOW_RESOURCES]
BRIDGE_LEASE = "acmeflow-bridge"
LEFT_BY_EARLIER_MODULES = (f"leases/{BRIDGE_LEASE}",)
"""Not in the render, but what a bridge of an earlier module leaves in acmeflow's namespace:
a Lease held by a process that is gone, which a fresh cluster would not have."""

# test_rbac's fixtures, run here on the objects Helm installed.
installation = rbac_tests.installation
kubeconfigs = rbac_tests.kubeconfigs
namespace = rbac_tests.namespace


@dataclass(frozen=True)
class Release:
    """The installed release, and what the CRDs looked like before ``helm install``."""

    stack: StackInfo
    crds_before: dict[str, str]


def helm_on(stack: StackInfo, *args: str) -> str:
    return helm("--kubeconfig", str(stack.kubeconfig), *args)


def chart_objects() -> Rendered:
    """The default render without its CRDs: what ``helm install`` creates."""
    return Rendered([o for o in template().objects if o["kind"] != "CustomResourceDefinition"])


def release_objects(kubectl: Kubectl) -> Rendered:
    """Every object on the API server that carries the release's Helm labels."""
    found: list[Obj] = []
    for kinds, scope in ((CHART_KINDS, "--all-namespaces"), (CLUSTER_KINDS, None)):
        args = ["get", kinds, "-l", RELEASE_SELECTOR, "-o", "json"]
        found += json.loads(kubectl(*args, *([scope] if scope else [])).stdout)["items"]
    return Rendered(found)


def crd_versions(kubectl: Kubectl) -> dict[str, str]:
    listed = json.loads(kubectl("get", *CRDS, "-o", "json").stdout)["items"]
    return {crd["metadata"]["name"]: crd["metadata"]["resourceVersion"] for crd in listed}


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    return Kubectl(stack)


@pytest.fixture(scope="module")
def release(kubectl: Kubectl, stack: StackInfo) -> Iterator[Release]:
    """``helm install`` with the chart's defaults, into a cluster cleared of the objects of
    the same names that other modules applied; ``helm uninstall`` afterwards."""
    crds_before = crd_versions(kubectl)
    kubectl("delete", "-f", "-", "--ignore-not-found", stdin=chart_objects().as_yaml())
    kubectl("delete", *LEFT_BY_EARLIER_MODULES, "-n", NAMESPACE, "--ignore-not-found")
    started = time.monotonic()
    helm_on(stack, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace")
    print(f"helm install: {time.monotonic() - started:.1f}s")
    yield Release(stack=stack, crds_before=crds_before)
    helm_on(stack, "uninstall", RELEASE, "-n", NAMESPACE, "--ignore-not-found")


@pytest.fixture(scope="module")
def rbac(kubectl: Kubectl, release: Release) -> Kubectl:
    """test_rbac's ``rbac`` (the roles its processes run under): here the chart's."""
    return kubectl


@pytest.fixture(scope="module")
def base(rbac: Kubectl) -> Rendered:
    """What test_rbac's ``installation`` starts its processes from: the Deployments and the
    ConfigMap as they were installed, read back from the API server."""
    return Rendered(
        [o for o in release_objects(rbac).objects if o["kind"] in ("Deployment", "ConfigMap")]
    )


def test_helm_installs_every_object_of_the_chart_and_leaves_the_crds_alone(
    kubectl: Kubectl, release: Release
) -> None:
    status = json.loads(helm_on(release.stack, "status", RELEASE, "-n", NAMESPACE, "-o", "json"))
    assert status["info"]["status"] == "deployed"
    installed = {key(obj) for obj in release_objects(kubectl).objects}
    assert installed == {key(obj) for obj in chart_objects().objects}
    assert crd_versions(kubectl) == release.crds_before
    for crd in json.loads(kubectl("get", *CRDS, "-o", "json").stdout)["items"]:
        assert not set(crd["metadata"].get("labels", {})) & set(HELM_LABELS)


test_each_component_may_do_what_it_needs_and_no_more_under_the_chart = (
    rbac_tests.test_each_component_may_do_what_it_needs_and_no_more
)
test_a_certificate_becomes_a_tls_secret_under_the_charts_rbac = (
    rbac_tests.test_a_certificate_becomes_a_tls_secret_with_only_the_base_rbac
)
test_the_processes_run_as_the_charts_service_accounts = (
    rbac_tests.test_a_forbidden_request_really_fails_under_the_service_account
)


def test_a_leader_electing_bridge_holds_the_lease_under_the_charts_role(
    rbac: Kubectl, installation: rbac_tests.Installation, base: Rendered
) -> None:
    """The Lease was deleted before the install: if the installed bridge elects a leader,
    the one bridge running made it and holds it, as only the chart's Role lets it."""
    if flag_values(base.container("acmeflow-bridge")["args"], "--leader-elect") != ["true"]:
        pytest.skip("the installed bridge runs without --leader-elect")
    lease = rbac.get("lease", BRIDGE_LEASE, namespace=NAMESPACE)
    assert lease["spec"]["holderIdentity"]


test_each_process_stops_on_sigterm_within_the_charts_grace_period = (
    rbac_tests.test_each_process_stops_on_sigterm_within_its_grace_period
)


def test_helm_uninstall_removes_the_charts_objects(kubectl: Kubectl, release: Release) -> None:
    """Last: after the processes have stopped. The CRDs stay (Helm never deletes crds/)."""
    helm_on(release.stack, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    assert release_objects(kubectl).objects == []
    # Cluster-scoped ones by name too, in case a label went missing from a template.
    cluster_scoped = [
        f"{kind.lower()}/{name}"
        for kind, scope, name in map(key, chart_objects().objects)
        if not scope
    ]
    assert kubectl("get", *cluster_scoped, "--ignore-not-found", "-o", "name").stdout == ""
    releases = json.loads(helm_on(release.stack, "list", "-n", NAMESPACE, "-o", "json"))
    assert [r["name"] for r in releases] == []
    assert set(crd_versions(kubectl)) == {crd.split("/")[1] for crd in CRDS}
