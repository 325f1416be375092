"""The base's RBAC, applied for real: each component may do what it needs and nothing
representative beyond it, and the real processes issue certificates under their service
accounts alone.

Identities: ``kubectl auth can-i --as=<service account>`` asks the API server's
authorizer directly. The processes cannot be given an impersonating kubeconfig (a user
with ``as:``), because the Python ``kubernetes`` client ignores that field and would run
as the admin behind it; so each process gets a kubeconfig holding a real token of its
service account (TokenRequest, ``kubectl create token``), which is what a pod mounts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from acmeflow.activities.csr import load_private_key
from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions
from acmeflow.devstack.processes import free_port, log_tail, stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from tests.bridge.bridge_harness import (
    certificate_manifest,
    issuer_manifest,
    order_manifest,
    tls_secret,
    unique,
    wait_for,
    wait_for_ready,
    wait_for_state,
)
from tests.deploy.manifests import (
    NAMESPACE,
    RBAC_KINDS,
    Rendered,
    container_env,
    render_overlay,
)
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.orders.order_harness import assert_certificate

pytestmark = pytest.mark.stack

ACCOUNT_PREFIX = f"system:serviceaccount:{NAMESPACE}:"
ANY = "team-a"
"""A namespace an Issuer or Certificate might live in (can-i needs no real namespace)."""
ALL = "*"
"""Across all namespaces (a cluster-wide list or watch), or a cluster-scoped resource."""
FINAL = ("valid", "invalid", "errored")
CHALLENGE_LABEL = "acmeflow.io/challenge"

Check = tuple[str, str, str]
"""(verb, resource[.group][/subresource], namespace or ALL)."""


def _each(verbs: str, resources: str, namespace: str) -> list[Check]:
    return [(v, r, namespace) for v in verbs.split() for r in resources.split()]


NOBODY_MAY: list[Check] = [
    # No component can grow its own rights or run code elsewhere.
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", ALL),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ALL),
    ("impersonate", "serviceaccounts", NAMESPACE),
    ("create", "pods", ANY),
    ("create", "pods/exec", NAMESPACE),
    ("create", "serviceaccounts/token", NAMESPACE),
    ("get", "configmaps", NAMESPACE),
]
MAY: dict[str, list[Check]] = {
    "acmeflow-worker": [
        *_each("get create patch update delete", "secrets", ANY),
        ("get", "challenges.acmeflow.io", ANY),
        *_each("get create", "orders.acmeflow.io", ANY),
        # revisionHistoryLimit: a Certificate's old Orders pruned after each issuance.
        *_each("list delete", "orders.acmeflow.io", ANY),
        ("get", "certificates.acmeflow.io", ANY),
        *_each(
            "get create patch delete",
            "services ingresses.networking.k8s.io httproutes.gateway.networking.k8s.io",
            ANY,
        ),
        *_each("get create patch", "referencegrants.gateway.networking.k8s.io", NAMESPACE),
    ],
    "acmeflow-bridge": [
        *_each(
            "get list watch",
            "orders.acmeflow.io challenges.acmeflow.io certificates.acmeflow.io"
            " issuers.acmeflow.io",
            ALL,
        ),
        *_each("get list watch", "clusterissuers.acmeflow.io", ALL),
        *_each(
            "get patch update",
            "orders.acmeflow.io/status challenges.acmeflow.io/status"
            " certificates.acmeflow.io/status issuers.acmeflow.io/status",
            ANY,
        ),
        *_each("patch update", "clusterissuers.acmeflow.io/status", ALL),
        ("create", "challenges.acmeflow.io", ANY),
        # A Challenge left by an earlier run (reset, recreated Order) is replaced.
        ("delete", "challenges.acmeflow.io", ANY),
        *_each("create delete", "orders.acmeflow.io", ANY),
        *_each("create patch", "events", ANY),
        # acmeflow's TLS Secrets, by label, to reissue one a user deleted or spoilt.
        *_each("list watch", "secrets", ALL),
        # Leader election of the replicas, on a Lease in acmeflow's namespace.
        *_each("get create update", "leases.coordination.k8s.io", NAMESPACE),
    ],
    "acmeflow-solver": _each("get list watch", "challenges.acmeflow.io", ALL),
}
MAY_NOT: dict[str, list[Check]] = {
    "acmeflow-worker": [
        # Secrets by name only: no listing every Secret of the cluster into memory.
        *_each("list watch", "secrets", ALL),
        ("list", "secrets", ANY),
        ("patch", "orders.acmeflow.io", ANY),
        ("patch", "orders.acmeflow.io/status", ANY),
        ("update", "challenges.acmeflow.io", ANY),
        ("patch", "challenges.acmeflow.io/status", ANY),
        ("list", "challenges.acmeflow.io", ALL),
        ("get", "issuers.acmeflow.io", ANY),
        ("patch", "certificates.acmeflow.io", ANY),
        ("update", "services", ANY),
        ("list", "ingresses.networking.k8s.io", ALL),
        # ReferenceGrants only in acmeflow's namespace, and never removed.
        ("create", "referencegrants.gateway.networking.k8s.io", ANY),
        ("delete", "referencegrants.gateway.networking.k8s.io", NAMESPACE),
        ("create", "gateways.gateway.networking.k8s.io", ANY),
        ("create", "events", ANY),
    ],
    "acmeflow-bridge": [
        ("get", "secrets", ANY),
        # Specs are the user's: the bridge writes status subresources only.
        *_each("patch update", "orders.acmeflow.io challenges.acmeflow.io", ANY),
        *_each("patch update delete", "issuers.acmeflow.io certificates.acmeflow.io", ANY),
        ("patch", "clusterissuers.acmeflow.io", ALL),
        ("create", "certificates.acmeflow.io", ANY),
        # Leases only in acmeflow's namespace: no other controller's election to disturb.
        *_each("update delete", "leases.coordination.k8s.io", ANY),
        ("delete", "leases.coordination.k8s.io", NAMESPACE),
        ("create", "ingresses.networking.k8s.io", ANY),
        ("create", "services", ANY),
        ("delete", "events", ANY),
    ],
    "acmeflow-solver": [
        *_each("get list", "secrets", ANY),
        ("list", "secrets", ALL),
        ("patch", "challenges.acmeflow.io/status", ANY),
        ("create", "challenges.acmeflow.io", ANY),
        ("delete", "challenges.acmeflow.io", ANY),
        ("list", "orders.acmeflow.io", ALL),
        ("get", "issuers.acmeflow.io", ANY),
        ("create", "events", ANY),
    ],
}


def can_i(kubectl: Kubectl, account: str, check: Check) -> bool:
    """``kubectl auth can-i --as=<account>``; for a resource this cluster does not serve
    (the Gateway API without its CRDs) kubectl cannot tell resource from group and asks
    about the wrong thing, so that question goes to ``access_review`` instead."""
    verb, resource, namespace = check
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={ACCOUNT_PREFIX}{account}"]
    if subresource:
        args.append(f"--subresource={subresource}")
    args += ["--all-namespaces"] if namespace == ALL else ["-n", namespace]
    result = kubectl(*args, check=False)
    if "doesn't have a resource type" in result.stderr:
        return access_review(kubectl, account, check)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {result.stderr}"
    return answer == "yes"


def access_review(kubectl: Kubectl, account: str, check: Check) -> bool:
    """The same question as a SubjectAccessReview, group and resource spelled out."""
    verb, resource, namespace = check
    resource, _, subresource = resource.partition("/")
    plural, _, group = resource.partition(".")
    attributes = {"verb": verb, "group": group, "resource": plural}
    if subresource:
        attributes["subresource"] = subresource
    if namespace != ALL:
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"{ACCOUNT_PREFIX}{account}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{NAMESPACE}",
                "system:authenticated",
            ],
            "resourceAttributes": attributes,
        },
    }
    result = kubectl(
        "create", "-f", "-", "-o", "jsonpath={.status.allowed}", stdin=json.dumps(review)
    )
    return result.stdout.strip() == "true"


def describe(check: Check) -> str:
    verb, resource, namespace = check
    where = "in all namespaces" if namespace == ALL else f"in {namespace}"
    return f"{verb} {resource} {where}"


@pytest.fixture(scope="module")
def rbac(kubectl: Kubectl, base: Rendered) -> Kubectl:
    """The base's namespace, service accounts, roles and bindings, applied for real."""
    kubectl("apply", "-f", "-", stdin=base.as_yaml(RBAC_KINDS))
    return kubectl


@pytest.mark.parametrize("account", sorted(MAY))
def test_each_component_may_do_what_it_needs_and_no_more(rbac: Kubectl, account: str) -> None:
    expected = [(check, True) for check in MAY[account]]
    expected += [(check, False) for check in MAY_NOT[account] + NOBODY_MAY]
    wrong = [
        f"{'cannot' if allowed else 'can'} {describe(check)}"
        for check, allowed in expected
        if can_i(rbac, account, check) != allowed
    ]
    assert not wrong, f"{account}:\n  " + "\n  ".join(wrong)


def test_the_access_review_answers_as_can_i_does(rbac: Kubectl) -> None:
    checks = [
        ("acmeflow-worker", ("get", "secrets", ANY)),
        ("acmeflow-worker", ("list", "secrets", ALL)),
        ("acmeflow-bridge", ("patch", "orders.acmeflow.io/status", ANY)),
        ("acmeflow-bridge", ("patch", "orders.acmeflow.io", ANY)),
        ("acmeflow-worker", ("create", "ingresses.networking.k8s.io", ANY)),
        ("acmeflow-solver", ("watch", "challenges.acmeflow.io", ALL)),
    ]
    pairs = [(can_i(rbac, a, c), access_review(rbac, a, c)) for a, c in checks]
    assert pairs == [
        (True, True),
        (False, False),
        (True, True),
        (False, False),
        (True, True),
        (True, True),
    ]


def test_the_owner_reference_component_adds_only_what_the_admission_plugin_asks(
    kubectl: Kubectl, base: Rendered
) -> None:
    composed = render_overlay(
        kubectl,
        {
            "namespace": NAMESPACE,
            "resources": ["base"],
            "components": ["components/owner-references-permission-enforcement"],
        },
    )
    added = {(obj["kind"], obj["metadata"]["name"]) for obj in composed.objects} - {
        (obj["kind"], obj["metadata"]["name"]) for obj in base.objects
    }
    assert added == {
        (kind, f"acmeflow-{who}-owner-references")
        for kind in ("ClusterRole", "ClusterRoleBinding")
        for who in ("bridge", "worker")
    }
    rules = {
        role["metadata"]["name"]: {
            (verb, resource)
            for rule in role["rules"]
            for verb in rule["verbs"]
            for resource in rule["resources"]
        }
        for role in composed.of_kind("ClusterRole")
        if role["metadata"]["name"].endswith("-owner-references")
    }
    assert rules == {
        # Challenges are created owned by their Order, blockOwnerDeletion set.
        "acmeflow-bridge-owner-references": {("delete", "challenges"),
                                             ("update", "orders/finalizers")},
        # Orders and next-key Secrets are created owned by their Certificate.
        "acmeflow-worker-owner-references": {("delete", "orders"),
                                             ("update", "certificates/finalizers")},
    }  # fmt: skip
    for binding in composed.of_kind("ClusterRoleBinding"):
        assert [s["namespace"] for s in binding["subjects"]] == [NAMESPACE]


# --- The real processes under their service accounts -----------------------------------------


def service_account_kubeconfig(
    kubectl: Kubectl, stack: StackInfo, account: str, directory: Path
) -> Path:
    """A kubeconfig that authenticates with a fresh token of ``account``, as a pod would."""
    token = kubectl("create", "token", account, "-n", NAMESPACE, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(stack.kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {
                "name": account,
                "context": {"cluster": cluster["name"], "user": account, "namespace": NAMESPACE},
            }
        ],
        "current-context": account,
    }
    path = directory / f"{account}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class ComponentProcess:
    """``python -m acmeflow.cli <argv>`` in its own process group, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def like_deployment(
        cls, rendered: Rendered, name: str, extra: list[str], log_dir: Path
    ) -> ComponentProcess:
        """The Deployment ``acmeflow-<name>``'s arguments and environment, then ``extra``
        (later flags win): what differs outside a pod, a kubeconfig instead of the mounted
        token and the stack's local addresses."""
        deployment = rendered.one("Deployment", f"acmeflow-{name}")
        container = rendered.container(f"acmeflow-{name}")
        # In a pod every process has its own 0.0.0.0:9464; on this host they share one.
        if "--metrics-bind" in container["args"]:
            extra = [*extra, "--metrics-bind", f"127.0.0.1:{free_port()}"]
        return cls(
            name=name,
            argv=[*container["args"], *extra],
            env=container_env(rendered, deployment, container),
            log_path=log_dir / f"{name}.log",
        )

    def start(self, ready: Callable[[], bool], timeout_s: float = 60.0) -> None:
        # Nothing from the test's environment (KUBECONFIG, TEMPORAL_ADDRESS, ACMEFLOW_*)
        # may hand the process another identity or server.
        env = {
            key: value
            for key, value in os.environ.items()
            if key != "KUBECONFIG" and not key.startswith(("ACMEFLOW_", "TEMPORAL_"))
        }
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "acmeflow.cli", *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env | self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.popen.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} not ready after {timeout_s:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def logged(self, marker: str) -> bool:
        return self.log_path.exists() and marker in self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM, as the kubelet sends; SIGKILL after ``grace_s``. The exit code, or
        None when it had to be killed (or was never started)."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
                return None
        return self.popen.returncode


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


@dataclass(frozen=True)
class Installation:
    """acmeflow's three processes, each under its own service account, and a CA for them."""

    pebble: PebbleEndpoints
    processes: list[ComponentProcess]


@pytest.fixture(scope="module")
def kubeconfigs(
    rbac: Kubectl, stack: StackInfo, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("identities")
    return {account: service_account_kubeconfig(rbac, stack, account, directory) for account in MAY}


@pytest.fixture(scope="module")
def installation(
    stack: StackInfo,
    base: Rendered,
    kubeconfigs: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installation]:
    """The solver, the worker and the bridge as real processes started the way their
    Deployments start them, plus a Pebble of their own whose HTTP-01 validations reach
    this solver and no other."""
    logs = tmp_path_factory.mktemp("processes")
    solver_port = free_port()
    worker_queue, bridge_queue = unique("deploy-orders"), unique("deploy-bridge")
    temporal = [
        "--temporal-address", stack.temporal_address,
        "--temporal-namespace", stack.temporal_namespace,
    ]  # fmt: skip
    solver = ComponentProcess.like_deployment(
        base,
        "solver",
        [
            "--kubeconfig", str(kubeconfigs["acmeflow-solver"]),
            "--listen", f"127.0.0.1:{solver_port}",
        ],
        logs,
    )  # fmt: skip
    worker = ComponentProcess.like_deployment(
        base,
        "worker",
        [
            "--kubeconfig", str(kubeconfigs["acmeflow-worker"]),
            *temporal,
            "--task-queue", worker_queue,
            "--self-check-resolver", stack.dns_address,
            "--self-check-http01-port", str(solver_port),
            "--self-check-dns-port", str(stack.ports.dns),
            "--graceful-shutdown-s", "1",
        ],
        logs,
    )  # fmt: skip
    bridge = ComponentProcess.like_deployment(
        base,
        "bridge",
        [
            "--kubeconfig", str(kubeconfigs["acmeflow-bridge"]),
            *temporal,
            "--worker-task-queue", worker_queue,
            "--bridge-task-queue", bridge_queue,
            "--resync-s", "5",
        ],
        logs,
    )  # fmt: skip
    processes = [solver, worker, bridge]
    pebble_process, pebble = start_extra_pebble(
        stack, PebbleOptions(name="pebble-deploy"), http01_port=solver_port
    )
    try:
        solver.start(lambda: answers(f"http://127.0.0.1:{solver_port}/readyz"))
        worker.start(lambda: worker.logged("worker polling"))
        bridge.start(lambda: bridge.logged("bridge running"))
        yield Installation(pebble=pebble, processes=processes)
    finally:
        for process in reversed(processes):
            process.stop()
            print(f"--- {process.name} log ({process.log_path}):\n{process.log_tail(60)}")
        stop_pid_file(pebble_process.pid_path)


@pytest.fixture
def namespace(rbac: Kubectl) -> Iterator[str]:
    with temporary_namespace(rbac, "deploy") as name:
        yield name


def route_objects(kubectl: Kubectl, namespace: str) -> list[str]:
    """The Ingresses and Services the worker made for HTTP-01 challenges in ``namespace``."""
    result = kubectl(
        "get", "ingresses,services", "-n", namespace, "-l", CHALLENGE_LABEL, "-o", "name"
    )
    return result.stdout.split()


def test_an_order_ends_valid_with_only_the_base_rbac(
    stack: StackInfo, rbac: Kubectl, installation: Installation, namespace: str
) -> None:
    """HTTP-01 from a user's namespace: the worker keeps the account key in a Secret,
    routes the challenge with an Ingress and an ExternalName Service and removes them;
    the bridge creates the Challenges and writes status and Events; the solver serves
    the token from the Challenge."""
    rbac.create(issuer_manifest(stack, namespace, server=installation.pebble.directory_url))
    rbac.create(order_manifest(namespace, "rbac-order", ["test1.example.com"]))
    assert wait_for_state(rbac, namespace, "rbac-order", FINAL) == "valid"

    order = rbac.get("order", "rbac-order", namespace=namespace)
    assert "BEGIN CERTIFICATE" in order["status"]["certificate"]
    account_key = rbac.get("secret", "pebble-account", namespace=namespace)
    assert account_key["metadata"]["labels"]["acmeflow.io/managed"] == "true"
    # The bridge deletes the valid Challenge once cleaned up (its base role may); its
    # Events stay.
    wait_for(
        lambda: rbac.table("challenges", "-n", namespace, "--no-headers") == [],
        "the valid Challenge to be deleted",
    )
    challenge_reasons = rbac(
        "get", "events", "-n", namespace, "--field-selector",
        "involvedObject.name=rbac-order-0", "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    assert "DomainVerified" in challenge_reasons
    reasons = rbac(
        "get", "events", "-n", namespace, "--field-selector",
        "involvedObject.name=rbac-order", "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    assert "OrderValid" in reasons
    wait_for(lambda: route_objects(rbac, namespace) == [], "the HTTP-01 routes to be removed")


def test_a_certificate_becomes_a_tls_secret_with_only_the_base_rbac(
    stack: StackInfo, rbac: Kubectl, installation: Installation, namespace: str
) -> None:
    """The Certificate flow on top: the worker generates the key into a Secret, creates
    the Order, writes the TLS Secret; the bridge marks Issuer and Certificate Ready."""
    rbac.create(issuer_manifest(stack, namespace, server=installation.pebble.directory_url))
    names = ["test2.example.com"]
    rbac.create(certificate_manifest(namespace, "rbac-cert", names))
    wait_for_ready(rbac, "issuer", namespace, "pebble")
    wait_for_ready(rbac, "certificate", namespace, "rbac-cert", timeout_s=120)
    secret = tls_secret(rbac, namespace, "rbac-cert-tls")
    assert secret is not None
    assert_certificate(
        secret["tls.crt"].decode(),
        load_private_key(secret["tls.key"]),
        names,
        installation.pebble.roots_path,
    )
    orders = rbac(
        "get", "orders", "-n", namespace, "-l", "acmeflow.io/certificate=rbac-cert",
        "-o", "jsonpath={.items[*].status.state}",
    ).stdout.split()  # fmt: skip
    assert orders == ["valid"]


def test_a_forbidden_request_really_fails_under_the_service_account(
    rbac: Kubectl, kubeconfigs: dict[str, Path], namespace: str
) -> None:
    """The kubeconfigs the processes ran with carry the service accounts' identities, and
    the API server refuses them what the roles leave out."""
    rbac("create", "secret", "generic", "private", "-n", namespace, "--from-literal=key=v")
    rbac.create(order_manifest(namespace, "kept", ["test3.example.com"], issuer="none"))
    for account, path in kubeconfigs.items():
        whoami = rbac(
            "--kubeconfig",
            str(path),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        )
        assert whoami.stdout == f"{ACCOUNT_PREFIX}{account}"

    def refused(account: str, call: Callable[[Any], object]) -> int:
        api_client = kubernetes_api_client(kubeconfigs[account])
        with pytest.raises(ApiException) as refusal:
            call(api_client)
        return int(refusal.value.status)

    core = client.CoreV1Api
    custom = client.CustomObjectsApi
    bridge_reads_secret = refused(
        "acmeflow-bridge", lambda c: core(c).read_namespaced_secret("private", namespace)
    )
    solver_reads_secret = refused(
        "acmeflow-solver", lambda c: core(c).read_namespaced_secret("private", namespace)
    )
    worker_lists_secrets = refused(
        "acmeflow-worker", lambda c: core(c).list_secret_for_all_namespaces()
    )
    # It may delete a Certificate's old Orders (revisionHistoryLimit), never change one.
    worker_patches_order = refused(
        "acmeflow-worker",
        lambda c: custom(c).patch_namespaced_custom_object(
            "acmeflow.io", "v1alpha1", namespace, "orders", "kept", {"metadata": {"labels": {}}}
        ),
    )
    assert (bridge_reads_secret, solver_reads_secret) == (403, 403)
    assert (worker_lists_secrets, worker_patches_order) == (403, 403)
    assert rbac.get("order", "kept", namespace=namespace)["metadata"]["name"] == "kept"
    # What they may do still works with the same kubeconfig.
    api_client = kubernetes_api_client(kubeconfigs["acmeflow-worker"])
    secret = client.CoreV1Api(api_client).read_namespaced_secret("private", namespace)
    assert secret.metadata.name == "private"


def test_each_process_stops_on_sigterm_within_its_grace_period(
    installation: Installation, base: Rendered
) -> None:
    """Last in this module: stop the processes the way the kubelet does. ``stop`` sends
    SIGTERM and, like the kubelet, SIGKILLs after the Deployment's grace period (then it
    answers None): exit code 0 means the process finished shutting down by itself."""
    for process in installation.processes:
        deployment = base.one("Deployment", f"acmeflow-{process.name}")
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert process.stop(grace) == 0, f"{process.name}:\n{process.log_tail()}"
