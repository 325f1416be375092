"""The Helm chart deploy/helm/acmeflow: lint, the renders a user would notice, and parity
with ``kubectl kustomize deploy/base`` (the default render holds the same objects, apart
from Helm's labels and the Namespace, which ``helm install --create-namespace`` makes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from acmeflow.devstack.go_builds import binary_path, helm_binary
from tests.deploy.manifests import BASE, DEPLOY, NAMESPACE, Rendered, flag_values

CHART = DEPLOY / "helm" / "acmeflow"
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)
PARITY_EXCEPTIONS = {("Namespace", "", NAMESPACE)}
"""In deploy/base, not in the default render: Helm stores its release in the namespace first."""

Obj = dict[str, Any]


def _tool(path: Path) -> Path:
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} missing: python -m acmeflow.devstack.go_builds builds it")
        pytest.skip(f"{path} not built")
    return path


def helm(*args: str) -> str:
    result = subprocess.run(
        [str(_tool(helm_binary())), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def template(*sets: str) -> Rendered:
    flags = [arg for value in sets for arg in ("--set", value)]
    output = helm("template", "acmeflow", str(CHART), "-n", NAMESPACE, "--include-crds", *flags)
    return Rendered([obj for obj in yaml.safe_load_all(output) if obj])


def kustomize_base() -> Rendered:
    kubectl = _tool(binary_path("kubectl"))
    output = subprocess.run(
        [str(kubectl), "kustomize", str(BASE)], capture_output=True, text=True, check=True
    ).stdout
    return Rendered([obj for obj in yaml.safe_load_all(output) if obj])


def key(obj: Obj) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def without_helm_labels(obj: Obj) -> Obj:
    labels = {k: v for k, v in obj["metadata"].get("labels", {}).items() if k not in HELM_LABELS}
    return {**obj, "metadata": {**obj["metadata"], "labels": labels}}


def body(obj: Obj) -> Obj:
    """What an object does: everything but metadata, plus its non-Helm labels."""
    return {
        **{k: v for k, v in obj.items() if k != "metadata"},
        "labels": without_helm_labels(obj)["metadata"]["labels"],
    }


def volumes(rendered: Rendered, deployment: str) -> dict[str, Obj]:
    spec = rendered.one("Deployment", deployment)["spec"]["template"]["spec"]
    return {volume["name"]: volume for volume in spec["volumes"]}


def test_lint_is_clean() -> None:
    output = helm("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in output


def test_default_render_matches_kustomize_base() -> None:
    chart = {key(obj): obj for obj in template().objects}
    base = {key(obj): obj for obj in kustomize_base().objects}
    assert set(chart) == set(base) - PARITY_EXCEPTIONS
    for name, obj in chart.items():
        if name[0] == "CustomResourceDefinition":
            continue  # crds/ are copies, compared byte for byte below
        assert body(obj) == body(base[name]), f"{name} differs from deploy/base"


def test_chart_crds_are_deploy_crds() -> None:
    chart_crds = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    deploy_crds = sorted(p.name for p in (DEPLOY / "crds").glob("*.acmeflow.io.yaml"))
    assert chart_crds == deploy_crds
    for name in chart_crds:
        assert (CHART / "crds" / name).read_text() == (DEPLOY / "crds" / name).read_text(), (
            f"crds/{name} drifted: cp deploy/crds/*.acmeflow.io.yaml {CHART}/crds/"
        )


def test_defaults_leave_optional_objects_out() -> None:
    kinds = {obj["kind"] for obj in template().objects}
    assert not kinds & {"ServiceMonitor", "PodDisruptionBudget", "PersistentVolumeClaim"}
    args = template().container("acmeflow-bridge")["args"]
    assert "--external-issuer" not in args


def test_mtls_mounts_the_secret_and_names_its_files() -> None:
    rendered = template("temporal.mtls.enabled=true", "temporal.mtls.secretName=my-tls")
    data = rendered.one("ConfigMap", "acmeflow-temporal")["data"]
    assert data["ACMEFLOW_TEMPORAL_TLS_CERT"] == "/etc/acmeflow/temporal-tls/tls.crt"
    assert data["ACMEFLOW_TEMPORAL_TLS_KEY"] == "/etc/acmeflow/temporal-tls/tls.key"
    assert data["ACMEFLOW_TEMPORAL_TLS_CA"] == "/etc/acmeflow/temporal-tls/ca.crt"
    for deployment in ("acmeflow-worker", "acmeflow-bridge"):
        secret = volumes(rendered, deployment)["temporal-tls"]["secret"]
        assert secret == {"secretName": "my-tls", "optional": False}
        mounts = {m["name"]: m["mountPath"] for m in rendered.container(deployment)["volumeMounts"]}
        assert mounts["temporal-tls"] == "/etc/acmeflow/temporal-tls"
    no_ca = template("temporal.mtls.enabled=true", "temporal.mtls.ca=false")
    assert "ACMEFLOW_TEMPORAL_TLS_CA" not in no_ca.one("ConfigMap", "acmeflow-temporal")["data"]


def test_api_key_mounts_the_secret_and_names_the_file() -> None:
    rendered = template(
        "temporal.apiKey.enabled=true",
        "temporal.address=ns.acct.tmprl.cloud:7233",
        "temporal.namespace=ns.acct",
    )
    data = rendered.one("ConfigMap", "acmeflow-temporal")["data"]
    assert data == {
        "ACMEFLOW_TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233",
        "ACMEFLOW_TEMPORAL_NAMESPACE": "ns.acct",
        "ACMEFLOW_TEMPORAL_API_KEY_FILE": "/etc/acmeflow/temporal-api-key/api-key",
    }
    for deployment in ("acmeflow-worker", "acmeflow-bridge"):
        secret = volumes(rendered, deployment)["temporal-api-key"]["secret"]
        assert secret == {"secretName": "acmeflow-temporal-api-key", "optional": False}


def test_external_issuer_passes_the_flag_and_grants_certificaterequests() -> None:
    rendered = template("externalIssuer.enabled=true")
    args = rendered.container("acmeflow-bridge")["args"]
    assert flag_values(args, "--external-issuer") == ["true"]
    rules = rendered.one("ClusterRole", "acmeflow-bridge-certificaterequests")["rules"]
    assert {"certificaterequests/status"} <= {r for rule in rules for r in rule["resources"]}
    binding = rendered.one("ClusterRoleBinding", "acmeflow-cert-manager-approver")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"}
    ]
    bridge = rendered.one("ClusterRoleBinding", "acmeflow-bridge-certificaterequests")
    assert bridge["subjects"][0]["namespace"] == NAMESPACE


def test_service_monitor_and_dev_temporal() -> None:
    rendered = template(
        "metrics.serviceMonitor.enabled=true", "devTemporal.enabled=true", "metrics.port=9500"
    )
    monitor = rendered.one("ServiceMonitor", "acmeflow")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    for component in ("worker", "bridge"):
        service = rendered.one("Service", f"acmeflow-{component}-metrics")
        assert (
            service["metadata"]["labels"].items()
            >= monitor["spec"]["selector"]["matchLabels"].items()
        )
        assert service["spec"]["ports"][0]["port"] == 9500
        container = rendered.container(f"acmeflow-{component}")
        assert flag_values(container["args"], "--metrics-bind") == ["0.0.0.0:9500"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    data = rendered.one("ConfigMap", "acmeflow-temporal")["data"]
    assert data["ACMEFLOW_TEMPORAL_ADDRESS"] == "temporal-dev:7233"
    assert rendered.one("Service", "temporal-dev")["metadata"]["namespace"] == NAMESPACE
    assert rendered.one("PersistentVolumeClaim", "temporal-dev")
    assert rendered.container("temporal-dev")["image"] == "acmeflow:0.1.0"


def test_replicas_resources_pdb_image_and_rbac_create() -> None:
    rendered = template(
        "worker.replicas=3",
        "worker.resources.limits.memory=2Gi",
        "worker.podDisruptionBudget.enabled=true",
        "image.repository=registry.example/acmeflow",
        "image.tag=9.9.9",
    )
    worker = rendered.one("Deployment", "acmeflow-worker")
    assert worker["spec"]["replicas"] == 3
    assert rendered.container("acmeflow-worker")["resources"]["limits"]["memory"] == "2Gi"
    assert rendered.container("acmeflow-solver")["image"] == "registry.example/acmeflow:9.9.9"
    pdb = rendered.one("PodDisruptionBudget", "acmeflow-worker")
    assert pdb["spec"]["selector"]["matchLabels"] == worker["spec"]["selector"]["matchLabels"]
    assert [p["metadata"]["name"] for p in rendered.of_kind("PodDisruptionBudget")] == [
        "acmeflow-worker"
    ]
    no_rbac = template("rbac.create=false")
    kinds = {obj["kind"] for obj in no_rbac.objects}
    assert "ServiceAccount" in kinds
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
