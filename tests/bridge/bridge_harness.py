"""A real bridge process, a worker, an Issuer on the stack's Pebble: Orders end to end."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client

from acmeflow.activities.csr import build_csr, generate_private_key
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.progress import OrderProgress
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.order import OrderWorkflow
from tests.k8s.kube_helpers import Kubectl

EVENT_HEADER = ("Type", "Reason", "Age", "From", "Message")


@dataclass
class BridgeProcess:
    """``acmeflow bridge`` as its own process, so tests can SIGKILL and restart it."""

    stack: StackInfo
    worker_task_queue: str
    bridge_task_queue: str
    log_path: Path
    resync_s: float = 5.0
    extra_args: list[str] = field(default_factory=list)
    popen: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "acmeflow.cli",
            "bridge",
            "--kubeconfig",
            str(self.stack.kubeconfig),
            "--temporal-address",
            self.stack.temporal_address,
            "--worker-task-queue",
            self.worker_task_queue,
            "--bridge-task-queue",
            self.bridge_task_queue,
            "--resync-s",
            str(self.resync_s),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def tsig_secret(stack: StackInfo, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tsig", "namespace": namespace},
        "stringData": {"secret": stack.tsig_secret_path.read_text().strip()},
    }


def issuer_manifest(
    stack: StackInfo,
    namespace: str,
    name: str = "pebble",
    *,
    server: str = "",
    solvers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ca_bundle = base64.b64encode(stack.acme_ca_bundle.read_bytes()).decode()
    return {
        "apiVersion": "acmeflow.io/v1alpha1",
        "kind": "Issuer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "acme": {
                "server": server or stack.acme_directory_url,
                "caBundle": ca_bundle,
                "email": "ops@example.com",
                "privateKeySecretRef": {"name": f"{name}-account"},
                "solvers": solvers if solvers is not None else [http01_solver()],
            }
        },
    }


def http01_solver() -> dict[str, Any]:
    return {"http01": {"ingress": {}}}


def dns01_solver(stack: StackInfo, **selector: list[str]) -> dict[str, Any]:
    solver: dict[str, Any] = {
        "dns01": {
            "rfc2136": {
                "nameserver": stack.dns_address,
                "tsigKeyName": stack.tsig_key_name,
                "tsigSecretSecretRef": {"name": "tsig", "key": "secret"},
                "tsigAlgorithm": "HMACSHA256",
            }
        }
    }
    if selector:
        solver["selector"] = selector
    return solver


def order_manifest(
    namespace: str, name: str, names: list[str], *, issuer: str = "pebble"
) -> dict[str, Any]:
    """An Order as a user could write it: names and a CSR made from a fresh key."""
    csr = build_csr(generate_private_key("ECDSA"), RequestedNames(dns_names=names))
    return {
        "apiVersion": "acmeflow.io/v1alpha1",
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "request": csr,
            "issuerRef": {"name": issuer, "kind": "Issuer"},
            "dnsNames": names,
        },
    }


def wait_for(
    condition: Callable[[], Any], what: str, timeout_s: float = 90.0, interval_s: float = 0.3
) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last})")


def order_state(kubectl: Kubectl, namespace: str, name: str) -> str:
    result = kubectl(
        "get", "order", name, "-n", namespace, "-o", "jsonpath={.status.state}", check=False
    )
    return result.stdout.strip()


def wait_for_state(
    kubectl: Kubectl, namespace: str, name: str, states: tuple[str, ...], timeout_s: float = 90.0
) -> str:
    state: str = wait_for(
        lambda: (s := order_state(kubectl, namespace, name)) in states and s,
        f"Order {namespace}/{name} to reach {states}",
        timeout_s,
    )
    return state


def describe_events(output: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of each row under ``Events:`` in ``kubectl describe``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Events:"))
    rows = []
    for line in lines[start + 1 :]:
        cells = line.split()
        if not cells or tuple(cells[:5]) == EVENT_HEADER or set(line.strip()) <= {"-", " "}:
            continue
        # Type Reason Age From Message...: the message is everything after the 4th cell.
        parts = line.split(None, 4)
        rows.append((parts[0], parts[1], parts[4] if len(parts) > 4 else ""))
    return rows


def describe_field(output: str, section: str, label: str) -> str | None:
    """The value of ``label`` directly under the top-level ``section`` (Spec, Status)."""
    inside = False
    for line in output.splitlines():
        if re.match(r"[A-Za-z][A-Za-z ]*:( |$)", line):  # a top-level key, not PEM text
            inside = line.rstrip() == f"{section}:"
            continue
        if inside and line.startswith(f"  {label}:"):
            return line.split(":", 1)[1].strip()
    return None


def workflow_progress(stack: StackInfo, workflow_id: str) -> OrderProgress:
    """Query the Order workflow directly (from a synchronous test)."""

    async def query() -> OrderProgress:
        client = await Client.connect(stack.temporal_address)
        handle = client.get_workflow_handle_for(OrderWorkflow.run, workflow_id)
        return await handle.query(OrderWorkflow.progress)

    return asyncio.run(query())


def workflow_runs(stack: StackInfo, workflow_id: str) -> list[str]:
    """Statuses of every run Temporal has for ``workflow_id``."""

    async def runs() -> list[str]:
        client = await Client.connect(stack.temporal_address)
        return [
            str(e.status.name) async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")
        ]

    return asyncio.run(runs())


def object_events(
    kubectl: Kubectl, namespace: str, kind: str, name: str, *, uid: str = ""
) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about one object, oldest first, read from the
    API rather than ``kubectl describe``: they outlive the object (a valid Challenge is
    deleted once cleaned up)."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    if uid:  # one incarnation of a name (kubectl describe tells them apart so too)
        selector += f",involvedObject.uid={uid}"
    listed = json.loads(
        kubectl("get", "events", "-n", namespace, "--field-selector", selector, "-o", "json").stdout
    )
    items = sorted(listed["items"], key=lambda e: str(e["metadata"]["name"]))
    return [(e["type"], e["reason"], e["message"]) for e in items]


def challenge_names(kubectl: Kubectl, namespace: str, order: str) -> list[str]:
    result = kubectl(
        "get",
        "challenges",
        "-n",
        namespace,
        "-l",
        f"acmeflow.io/order={order}",
        "-o",
        "jsonpath={.items[*].metadata.name}",
        check=False,
    )
    return sorted(result.stdout.split())


def certificate_manifest(
    namespace: str,
    name: str,
    names: list[str],
    *,
    secret_name: str = "",
    issuer: str = "pebble",
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "acmeflow.io/v1alpha1",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": secret_name or f"{name}-tls",
            "dnsNames": names,
            "issuerRef": {"name": issuer},
            "privateKey": {"algorithm": "ECDSA"},
            **spec,
        },
    }


def condition_of(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in obj.get("status", {}).get("conditions", []):
        if item["type"] == type_:
            return dict(item)
    return {}


def wait_for_ready(
    kubectl: Kubectl,
    kind: str,
    namespace: str,
    name: str,
    status: str = "True",
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        result = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj if condition_of(obj, "Ready").get("status") == status else None

    found: dict[str, Any] = wait_for(ready, f"{kind} {namespace}/{name} Ready={status}", timeout_s)
    return found


def tls_secret(kubectl: Kubectl, namespace: str, name: str) -> dict[str, bytes] | None:
    result = kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    secret = json.loads(result.stdout)
    assert secret["type"] == "kubernetes.io/tls"
    return {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}
