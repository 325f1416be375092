"""The kustomize manifests as objects: render with the real kubectl, find what a test needs."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acmeflow.cli import build_parser
from tests.k8s.kube_helpers import REPO, Kubectl

DEPLOY = REPO / "deploy"
BASE = DEPLOY / "base"
DEV_TEMPORAL = DEPLOY / "overlays" / "dev-temporal"
COMPONENTS = DEPLOY / "components"
NAMESPACE = "acmeflow"
COMPONENT_ACCOUNTS = ("acmeflow-worker", "acmeflow-bridge", "acmeflow-solver")
RBAC_KINDS = (
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
)

Obj = dict[str, Any]


class CommandRejected(AssertionError):
    """``acmeflow`` would refuse a container's arguments (argparse exits with a usage error)."""


@dataclass(frozen=True)
class Rendered:
    """What ``kubectl kustomize <directory>`` prints, parsed."""

    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str) -> Obj:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def containers(self) -> Iterator[tuple[Obj, Obj]]:
        """(Deployment, container) for every container of every Deployment."""
        for deployment in self.of_kind("Deployment"):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                yield deployment, container

    def container(self, deployment_name: str) -> Obj:
        containers = self.one("Deployment", deployment_name)["spec"]["template"]["spec"][
            "containers"
        ]
        assert len(containers) == 1, f"{deployment_name}: expected one container"
        container: Obj = containers[0]
        return container

    def as_yaml(self, kinds: tuple[str, ...] | None = None) -> str:
        chosen = [obj for obj in self.objects if kinds is None or obj["kind"] in kinds]
        return yaml.safe_dump_all(chosen)


def render(kubectl: Kubectl, directory: Path) -> Rendered:
    output = kubectl("kustomize", str(directory)).stdout
    return Rendered([obj for obj in yaml.safe_load_all(output) if obj])


def render_overlay(kubectl: Kubectl, kustomization: dict[str, Any]) -> Rendered:
    """Render a throw-away overlay; ``resources``/``components`` are paths under deploy/."""
    with tempfile.TemporaryDirectory(prefix="acmeflow-overlay-") as tmp:
        relative = dict(kustomization)
        for key in ("resources", "components"):
            if key in relative:
                relative[key] = [os.path.relpath(DEPLOY / path, tmp) for path in relative[key]]
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(relative))
        return render(kubectl, Path(tmp))


def parse_acmeflow(argv: list[str]) -> argparse.Namespace:
    """``argv`` as ``acmeflow`` parses it; an argument it rejects raises CommandRejected."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exit_:
        raise CommandRejected(f"acmeflow {' '.join(argv)}: rejected (exit {exit_.code})") from None


def container_env(rendered: Rendered, deployment: Obj, container: Obj) -> dict[str, str]:
    """The environment a container starts with: envFrom ConfigMaps, then env, resolved."""
    namespace = deployment["metadata"].get("namespace", "")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = rendered.one("ConfigMap", source["configMapRef"]["name"])
        env.update(config_map.get("data", {}))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            field = variable["valueFrom"]["fieldRef"]["fieldPath"]
            assert field == "metadata.namespace", f"unexpected fieldRef {field}"
            env[variable["name"]] = namespace
    return env


def flag_values(args: list[str], flag: str) -> list[str]:
    """Every value given to ``flag`` in an argument list (``--flag value`` form)."""
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]
