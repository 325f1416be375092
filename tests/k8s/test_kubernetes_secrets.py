"""``KubernetesSecrets`` against the real kube-apiserver: read, create, races, RBAC refusals."""

from __future__ import annotations

import base64
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from kubernetes import client, config
from temporalio.exceptions import ApplicationError

from acmeflow.activities.errors import BAD_REQUEST
from acmeflow.activities.kubernetes_api import KUBERNETES_UNAVAILABLE, MANAGED_LABEL
from acmeflow.activities.kubernetes_secrets import KubernetesSecrets
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from tests.k8s.kube_helpers import Kubectl, temporary_namespace

pytestmark = pytest.mark.stack

T = TypeVar("T")
NOBODY = "acmeflow-test-nobody"
HANG_GUARD_S = 120.0
"""Ends a call that hangs; how soon a call gives up is measured by a benchmark, not here."""


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    return Kubectl(stack)


@pytest.fixture(scope="module")
def api(stack: StackInfo) -> client.ApiClient:
    return kubernetes_api_client(stack.kubeconfig)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "secrets") as name:
        yield name


@pytest.fixture
def secrets(api: client.ApiClient) -> KubernetesSecrets:
    return KubernetesSecrets(api)


def impersonating(stack: StackInfo, user: str) -> client.ApiClient:
    """A client that acts as ``user`` (the stack's admin may impersonate anyone)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(stack.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration, header_name="Impersonate-User", header_value=user)


def stored(kubectl: Kubectl, ref: SecretRef) -> tuple[dict[str, bytes], dict[str, str], str]:
    """(decoded data, labels, type) of the Secret as kubectl sees it."""
    secret = kubectl.get("secret", ref.name, namespace=ref.namespace)
    data = {key: base64.b64decode(value) for key, value in secret.get("data", {}).items()}
    return data, secret["metadata"].get("labels", {}), secret["type"]


def concurrently(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released at the same moment; their results in order."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result(timeout=60) for future in futures]


def raised_unless_hung(call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raised (None if it returned). It runs in a thread so that a call that
    hangs fails the test instead of the run; the deadline guards only against that."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert outcome, f"the call still hangs after {HANG_GUARD_S:.0f}s"
    return outcome[0]


def racing_writers(kubectl: Kubectl, ref: SecretRef, count: int = 6) -> list[bytes]:
    """``count`` writers, each with its own client, creating ``ref`` with their own value."""
    calls = [
        partial(
            KubernetesSecrets(kubernetes_api_client(kubectl.stack.kubeconfig)).create,
            ref,
            f"writer-{i}".encode(),
        )
        for i in range(count)
    ]
    return concurrently(calls)


def test_missing_secret_or_key_reads_as_none(
    secrets: KubernetesSecrets, kubectl: Kubectl, namespace: str
) -> None:
    assert secrets.read(SecretRef(namespace=namespace, name="absent", key="tls.key")) is None
    kubectl("create", "secret", "generic", "partial", "-n", namespace, "--from-literal=other=x")
    assert secrets.read(SecretRef(namespace=namespace, name="partial", key="tls.key")) is None
    assert secrets.read(SecretRef(namespace=namespace, name="partial", key="other")) == b"x"


def test_create_makes_a_labelled_opaque_secret_and_never_overwrites(
    secrets: KubernetesSecrets, kubectl: Kubectl, namespace: str
) -> None:
    ref = SecretRef(namespace=namespace, name="account", key="tls.key")
    value = b"-----BEGIN PRIVATE KEY-----\n\x00\xff binary too\n"
    assert secrets.create(ref, value) == value
    assert secrets.read(ref) == value
    data, labels, kind = stored(kubectl, ref)
    assert data == {"tls.key": value}
    assert labels == {MANAGED_LABEL: "true"}
    assert kind == "Opaque"

    assert secrets.create(ref, b"a second key") == value
    assert stored(kubectl, ref)[0] == {"tls.key": value}


def test_create_adds_a_missing_key_and_keeps_the_others(
    secrets: KubernetesSecrets, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "secret", "generic", "users", "-n", namespace, "--from-literal=eab=keep-me")
    ref = SecretRef(namespace=namespace, name="users", key="tls.key")
    assert secrets.create(ref, b"new") == b"new"
    data, labels, _ = stored(kubectl, ref)
    assert data == {"eab": b"keep-me", "tls.key": b"new"}
    assert labels == {}  # the user's Secret: acmeflow adds its key, not its label


def test_racing_creators_of_a_new_secret_agree_on_one_value(
    kubectl: Kubectl, namespace: str
) -> None:
    for round_ in range(5):
        ref = SecretRef(namespace=namespace, name=f"race-{round_}", key="tls.key")
        results = racing_writers(kubectl, ref)
        assert len(results) == 6
        assert len(set(results)) == 1, results
        assert stored(kubectl, ref)[0] == {"tls.key": results[0]}
        assert results[0].startswith(b"writer-")


def test_racing_writers_adding_a_key_to_an_existing_secret_agree(
    kubectl: Kubectl, namespace: str
) -> None:
    for round_ in range(5):
        name = f"shared-{round_}"
        kubectl("create", "secret", "generic", name, "-n", namespace, "--from-literal=a=1")
        ref = SecretRef(namespace=namespace, name=name, key="tls.key")
        results = racing_writers(kubectl, ref)
        assert len(set(results)) == 1, results
        assert stored(kubectl, ref)[0] == {"a": b"1", "tls.key": results[0]}


def test_a_stale_resource_version_is_refused_not_overwritten(
    secrets: KubernetesSecrets, api: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    """The guard the add-a-key race relies on, made to happen deterministically."""
    kubectl("create", "secret", "generic", "guarded", "-n", namespace, "--from-literal=a=1")
    ref = SecretRef(namespace=namespace, name="guarded", key="tls.key")
    as_read = client.CoreV1Api(api).read_namespaced_secret("guarded", namespace)
    kubectl(
        "patch", "secret", "guarded", "-n", namespace, "-p", '{"stringData":{"tls.key":"first"}}'
    )
    assert secrets._add_key(ref, as_read, b"second") is False
    assert secrets.create(ref, b"second") == b"first"


def test_forbidden_reads_name_the_missing_permission(stack: StackInfo, namespace: str) -> None:
    nobody = KubernetesSecrets(impersonating(stack, NOBODY))
    ref = SecretRef(namespace=namespace, name="account", key="tls.key")
    with pytest.raises(ApplicationError) as caught:
        nobody.read(ref)
    error = caught.value
    assert error.type == BAD_REQUEST
    assert error.non_retryable
    assert f'key "tls.key" of Secret {namespace}/account' in error.message
    assert f'verb "get" on "secrets" in namespace "{namespace}"' in error.message
    assert f'User "{NOBODY}" cannot get resource "secrets"' in error.message


def test_forbidden_create_names_the_missing_verb(
    stack: StackInfo, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "role", "read-secrets", "-n", namespace, "--verb=get", "--resource=secrets")
    kubectl(
        "create",
        "rolebinding",
        "read-secrets",
        "-n",
        namespace,
        "--role=read-secrets",
        f"--user={NOBODY}",
    )
    reader = KubernetesSecrets(impersonating(stack, NOBODY))
    ref = SecretRef(namespace=namespace, name="account", key="tls.key")
    assert reader.read(ref) is None  # get is allowed now
    with pytest.raises(ApplicationError) as caught:
        reader.create(ref, b"key")
    assert caught.value.type == BAD_REQUEST
    assert f'verb "create" on "secrets" in namespace "{namespace}"' in caught.value.message

    kubectl("create", "secret", "generic", "account", "-n", namespace, "--from-literal=a=1")
    with pytest.raises(ApplicationError) as caught:
        reader.create(ref, b"key")
    assert f'verb "patch" on "secrets" in namespace "{namespace}"' in caught.value.message


def test_the_secret_store_routes_kubernetes_references_here(
    secrets: KubernetesSecrets, kubectl: Kubectl, namespace: str
) -> None:
    store = SecretStore(kubernetes=secrets)
    ref = SecretRef(namespace=namespace, name=f"eab-{uuid.uuid4().hex[:6]}", key="secret")
    with pytest.raises(ApplicationError, match="does not exist"):
        store.require(ref, "external account binding")
    store.create(ref, b"mac-key")
    assert store.require(ref, "external account binding") == b"mac-key"


def test_an_incomplete_reference_is_a_bad_request(secrets: KubernetesSecrets) -> None:
    with pytest.raises(ApplicationError) as caught:
        secrets.read(SecretRef(namespace="default", name="x"))
    assert caught.value.type == BAD_REQUEST
    assert "needs a namespace, a name and a key" in caught.value.message


def test_a_namespace_being_deleted_is_not_reported_as_missing_rbac(
    secrets: KubernetesSecrets, kubectl: Kubectl, namespace: str
) -> None:
    # A finalizer keeps the namespace in Terminating long enough to try.
    kubectl("create", "configmap", "hold", "-n", namespace)
    kubectl(
        "patch",
        "configmap",
        "hold",
        "-n",
        namespace,
        "-p",
        '{"metadata":{"finalizers":["acmeflow.io/test-hold"]}}',
    )
    kubectl("delete", "namespace", namespace, "--wait=false")
    try:
        ref = SecretRef(namespace=namespace, name="account", key="tls.key")
        with pytest.raises(ApplicationError) as caught:
            secrets.create(ref, b"key")
        assert caught.value.type == BAD_REQUEST
        assert "the namespace is being deleted" in caught.value.message
        assert "RBAC" not in caught.value.message
    finally:
        kubectl(
            "patch",
            "configmap",
            "hold",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )


def test_a_stalled_api_server_is_a_retryable_error_not_a_hang(
    stack: StackInfo, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        kubeconfig = yaml.safe_load(stack.kubeconfig.read_text())
        for cluster in kubeconfig["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{silent.getsockname()[1]}"
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig))
        stalled = KubernetesSecrets(kubernetes_api_client(path), request_timeout=(1.0, 1.0))
        error = raised_unless_hung(
            lambda: stalled.read(SecretRef(namespace="default", name="account", key="tls.key"))
        )
    assert isinstance(error, ApplicationError), f"expected an ApplicationError, got {error!r}"
    assert error.type == KUBERNETES_UNAVAILABLE
    assert not error.non_retryable
    assert "Kubernetes API unreachable" in error.message
