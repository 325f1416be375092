"""The real kubectl against the test stack, plus installing acmeflow's CRDs once."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acmeflow.devstack.stack import StackInfo

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "deploy" / "crds"
ACMEFLOW_RESOURCES = ("certificates", "challenges", "clusterissuers", "issuers", "orders")


class KubectlError(RuntimeError):
    """kubectl failed; the message carries the command and what kubectl said."""


@dataclass
class Kubectl:
    """``kubectl(...)`` runs the stack's kubectl with the stack's kubeconfig."""

    stack: StackInfo
    timeout_s: float = 60.0

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.stack.kubectl), "--kubeconfig", str(self.stack.kubeconfig), *args]
        result = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed:\n{result.stderr.strip()}")
        return result

    def create(
        self, manifest: dict[str, Any], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl create`` of one object; with ``check=False`` a rejection is returned."""
        return self("create", "-f", "-", stdin=json.dumps(manifest), check=check)

    def get(self, resource: str, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        """The object as stored, parsed from ``-o json``."""
        scope = ("-n", namespace) if namespace else ()
        result: dict[str, Any] = json.loads(
            self("get", resource, name, *scope, "-o", "json").stdout
        )
        return result

    def patch_status(
        self, resource: str, name: str, status: dict[str, Any], *, namespace: str | None = None
    ) -> None:
        """Merge-patch the status subresource, the way acmeflow writes status."""
        scope = ("-n", namespace) if namespace else ()
        patch = json.dumps({"status": status})
        self("patch", resource, name, *scope, "--subresource=status", "--type=merge", "-p", patch)

    def table(self, *args: str) -> list[list[str]]:
        """``kubectl get`` output as rows of cells (header first); cells are space-free."""
        lines = self("get", *args).stdout.strip().splitlines()
        return [line.split() for line in lines]

    def wait_until_served(
        self, group: str, resources: Sequence[str], timeout_s: float = 30
    ) -> None:
        """Block until discovery lists every resource of ``group`` (CRDs take a moment)."""
        deadline = time.monotonic() + timeout_s
        served: set[str] = set()
        while time.monotonic() < deadline:
            listing = self("api-resources", f"--api-group={group}", "-o", "name", check=False)
            served = {line.split(".", 1)[0] for line in listing.stdout.split()}
            if set(resources) <= served:
                return
            time.sleep(0.5)
        missing = sorted(set(resources) - served)
        raise KubectlError(f"API group {group} does not serve {missing} after {timeout_s}s")


def install_acmeflow_crds(kubectl: Kubectl, directory: Path = CRD_DIR) -> None:
    """Apply ``deploy/crds`` through its kustomization and wait until it is served."""
    kubectl("apply", "-k", str(directory))
    for resource in ACMEFLOW_RESOURCES:
        name = f"crd/{resource}.acmeflow.io"
        kubectl("wait", "--for=condition=Established", name, "--timeout=30s")
    kubectl.wait_until_served("acmeflow.io", ACMEFLOW_RESOURCES)


@contextmanager
def temporary_namespace(kubectl: Kubectl, prefix: str) -> Iterator[str]:
    """A fresh namespace, deleted afterwards without waiting for finalizers."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)
