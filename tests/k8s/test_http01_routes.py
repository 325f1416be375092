"""In-cluster HTTP-01 routing against the real kube-apiserver: Ingress and Gateway HTTPRoute.

The dev stack has no ingress controller and no Gateway controller, so what is checked is
what acmeflow writes: the objects, their rule, backend, owner and clean-up. The Gateway API
CRDs are the real standard ones (as cert-manager's gateway-shim needs them), so the API
server validates acmeflow's routes and grants and fills in its defaults.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from temporalio.exceptions import ApplicationError

from acmeflow.activities.errors import BAD_REQUEST, STILL_WAITING
from acmeflow.activities.http01_routes import CHALLENGE_LABEL, KubernetesHttp01Routes, route_name
from acmeflow.activities.kubernetes_api import MANAGED_LABEL
from acmeflow.contracts.issuer import Http01Ingress
from acmeflow.devstack.cert_manager import install_gateway_api_crds
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from tests.k8s.challenge_resources import create_challenge, http01_spec
from tests.k8s.kube_helpers import (
    Kubectl,
    install_acmeflow_crds,
    temporary_namespace,
)

pytestmark = pytest.mark.stack

GATEWAY_GROUP = "gateway.networking.k8s.io"
PARENTS = [{"name": "public", "namespace": "infra", "sectionName": "http"}]
# What the API server's Gateway API schema fills in on what acmeflow wrote.
GATEWAY_DEFAULTS = {"group": GATEWAY_GROUP, "kind": "Gateway"}
SERVICE_DEFAULTS = {"group": "", "kind": "Service", "weight": 1}


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    install_gateway_api_crds(stack)
    return kubectl


@pytest.fixture(scope="module")
def solver_namespace(kubectl: Kubectl) -> Iterator[str]:
    """Stands in for the ``acmeflow`` namespace, where the solver Service lives."""
    with temporary_namespace(kubectl, "solver") as name:
        yield name


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "routes") as name:
        yield name


@pytest.fixture(scope="module")
def routes(stack: StackInfo, solver_namespace: str) -> KubernetesHttp01Routes:
    return KubernetesHttp01Routes(
        kubernetes_api_client(stack.kubeconfig), solver_namespace=solver_namespace
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def exists(kubectl: Kubectl, resource: str, name: str, namespace: str) -> bool:
    result = kubectl("get", resource, name, "-n", namespace, "--ignore-not-found", "-o", "name")
    return bool(result.stdout.strip())


def owner(name: str, uid: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "acmeflow.io/v1alpha1",
            "kind": "Challenge",
            "name": name,
            "uid": uid,
            "controller": True,
        }
    ]


def test_an_ingress_routes_the_token_path_to_the_solver_through_an_external_name_service(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str, solver_namespace: str
) -> None:
    name = unique("chal")
    uid = create_challenge(kubectl, name, namespace, token="tok-ing", dns_name="ing.example.com")
    spec = http01_spec(
        name,
        namespace,
        token="tok-ing",
        dns_name="ing.example.com",
        http01=Http01Ingress(ingress_class_name="nginx"),
    )
    routes.publish(spec)

    ingress = kubectl.get("ingress", name, namespace=namespace)
    assert ingress["spec"] == {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": "ing.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/.well-known/acme-challenge/tok-ing",
                            "pathType": "Exact",
                            "backend": {"service": {"name": name, "port": {"number": 8089}}},
                        }
                    ]
                },
            }
        ],
    }
    assert ingress["metadata"]["labels"] == {CHALLENGE_LABEL: name, MANAGED_LABEL: "true"}
    assert ingress["metadata"]["ownerReferences"] == owner(name, uid)

    service = kubectl.get("service", name, namespace=namespace)
    assert service["spec"]["type"] == "ExternalName"
    assert (
        service["spec"]["externalName"] == f"acmeflow-solver.{solver_namespace}.svc.cluster.local"
    )
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8089, 8089)]
    assert service["metadata"]["labels"] == {CHALLENGE_LABEL: name, MANAGED_LABEL: "true"}
    assert service["metadata"]["ownerReferences"] == owner(name, uid)

    routes.publish(spec)  # presenting again converges on the same objects
    again = kubectl.get("ingress", name, namespace=namespace)
    assert again["metadata"]["uid"] == ingress["metadata"]["uid"]
    assert again["spec"] == ingress["spec"]

    routes.withdraw(spec)
    assert not exists(kubectl, "ingress", name, namespace)
    assert not exists(kubectl, "service", name, namespace)
    routes.withdraw(spec)  # cleaning up twice is harmless


def test_service_name_and_port_come_from_the_solver_and_the_class_is_optional(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str, solver_namespace: str
) -> None:
    name = unique("chal")
    create_challenge(kubectl, name, namespace, token="tok-port", dns_name="port.example.com")
    http01 = Http01Ingress(service_name="edge-solver", service_port=9000)
    routes.publish(
        http01_spec(name, namespace, token="tok-port", dns_name="port.example.com", http01=http01)
    )
    ingress = kubectl.get("ingress", name, namespace=namespace)
    assert "ingressClassName" not in ingress["spec"]
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["backend"]["service"] == {"name": name, "port": {"number": 9000}}
    service = kubectl.get("service", name, namespace=namespace)
    assert service["spec"]["externalName"] == f"edge-solver.{solver_namespace}.svc.cluster.local"
    assert service["spec"]["ports"][0]["port"] == 9000


def test_in_the_solver_namespace_the_ingress_uses_the_solver_service_itself(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, solver_namespace: str
) -> None:
    name = unique("chal")
    create_challenge(kubectl, name, solver_namespace, token="tok-local", dns_name="l.example.com")
    spec = http01_spec(name, solver_namespace, token="tok-local", dns_name="l.example.com")
    routes.publish(spec)
    ingress = kubectl.get("ingress", name, namespace=solver_namespace)
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "acmeflow-solver", "port": {"number": 8089}}
    assert not exists(kubectl, "service", name, solver_namespace)
    routes.withdraw(spec)
    assert not exists(kubectl, "ingress", name, solver_namespace)


def test_presenting_before_the_challenge_resource_exists_is_retried(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str
) -> None:
    spec = http01_spec("not-yet", namespace, token="tok-early", dns_name="early.example.com")
    with pytest.raises(ApplicationError) as caught:
        routes.publish(spec)
    assert caught.value.type == STILL_WAITING
    assert not caught.value.non_retryable
    assert "the Challenge resource is not there yet" in caught.value.message
    assert not exists(kubectl, "ingress", "not-yet", namespace)


def test_objects_acmeflow_did_not_create_are_neither_changed_nor_deleted(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str
) -> None:
    name = unique("chal")
    create_challenge(kubectl, name, namespace, token="tok-taken", dns_name="taken.example.com")
    kubectl("create", "service", "clusterip", name, "-n", namespace, "--tcp=80:8080")
    spec = http01_spec(name, namespace, token="tok-taken", dns_name="taken.example.com")
    with pytest.raises(ApplicationError) as caught:
        routes.publish(spec)
    assert caught.value.type == BAD_REQUEST
    assert f"Service {namespace}/{name} already exists and acmeflow did not create it" in (
        caught.value.message
    )
    routes.withdraw(spec)
    assert kubectl.get("service", name, namespace=namespace)["spec"]["type"] == "ClusterIP"


def test_deleting_the_challenge_garbage_collects_its_route(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str
) -> None:
    name = unique("chal")
    create_challenge(kubectl, name, namespace, token="tok-gc", dns_name="gc.example.com")
    routes.publish(http01_spec(name, namespace, token="tok-gc", dns_name="gc.example.com"))
    kubectl("delete", "challenge", name, "-n", namespace)
    deadline = time.monotonic() + 60
    while exists(kubectl, "ingress", name, namespace) or exists(
        kubectl, "service", name, namespace
    ):
        assert time.monotonic() < deadline, "the garbage collector left the route behind"
        time.sleep(0.5)


def test_a_long_challenge_name_gets_a_short_route_name(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str
) -> None:
    name = "1-" + "certificate-with-a-rather-long-name." * 3 + uuid.uuid4().hex[:8]
    uid = create_challenge(kubectl, name, namespace, token="tok-long", dns_name="long.example.com")
    spec = http01_spec(name, namespace, token="tok-long", dns_name="long.example.com")
    routes.publish(spec)
    short = route_name(name)
    ingress = kubectl.get("ingress", short, namespace=namespace)
    assert ingress["metadata"]["labels"][CHALLENGE_LABEL] == short
    assert ingress["metadata"]["ownerReferences"] == owner(name, uid)
    assert kubectl.get("service", short, namespace=namespace)["metadata"]["name"] == short
    routes.withdraw(spec)
    assert not exists(kubectl, "ingress", short, namespace)


def test_a_gateway_solver_gets_an_http_route_and_a_reference_grant(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str, solver_namespace: str
) -> None:
    http01 = Http01Ingress(gateway_parent_refs=PARENTS)
    specs = []
    for index in range(2):  # the second challenge finds the namespace's grant in place
        name = unique("chal")
        token = f"tok-gw-{index}"
        uid = create_challenge(kubectl, name, namespace, token=token, dns_name="gw.example.com")
        spec = http01_spec(name, namespace, token=token, dns_name="gw.example.com", http01=http01)
        routes.publish(spec)
        routes.publish(spec)
        specs.append(spec)

        route = kubectl.get(f"httproutes.{GATEWAY_GROUP}", name, namespace=namespace)
        assert route["spec"] == {
            "parentRefs": [{**GATEWAY_DEFAULTS, **parent} for parent in PARENTS],
            "hostnames": ["gw.example.com"],
            "rules": [
                {
                    "matches": [
                        {"path": {"type": "Exact", "value": f"/.well-known/acme-challenge/{token}"}}
                    ],
                    "backendRefs": [
                        {
                            **SERVICE_DEFAULTS,
                            "name": "acmeflow-solver",
                            "namespace": solver_namespace,
                            "port": 8089,
                        }
                    ],
                }
            ],
        }
        assert route["metadata"]["labels"] == {CHALLENGE_LABEL: name, MANAGED_LABEL: "true"}
        assert route["metadata"]["ownerReferences"] == owner(name, uid)
        assert not exists(kubectl, "ingress", name, namespace)
        assert not exists(kubectl, "service", name, namespace)

    grant = kubectl.get(
        f"referencegrants.{GATEWAY_GROUP}",
        f"acmeflow-solver-from-{namespace}",
        namespace=solver_namespace,
    )
    assert grant["spec"] == {
        "from": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": namespace}],
        "to": [{"group": "", "kind": "Service", "name": "acmeflow-solver"}],
    }
    assert grant["metadata"]["labels"] == {MANAGED_LABEL: "true"}

    for spec in specs:
        routes.withdraw(spec)
        routes.withdraw(spec)
        assert not exists(kubectl, f"httproutes.{GATEWAY_GROUP}", spec.name, namespace)
    # The grant stays for the namespace's next challenges.
    assert exists(
        kubectl,
        f"referencegrants.{GATEWAY_GROUP}",
        f"acmeflow-solver-from-{namespace}",
        solver_namespace,
    )


def test_a_gateway_route_carries_the_solver_labels_and_acmeflow_labels_win(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, namespace: str
) -> None:
    """``gatewayHTTPRoute.labels`` let a Gateway select the route; they cannot take it over."""
    name = unique("chal")
    create_challenge(kubectl, name, namespace, token="tok-lbl", dns_name="lbl.example.com")
    http01 = Http01Ingress(
        gateway_parent_refs=PARENTS,
        route_labels={
            "gateway": "public",
            "team": "web",
            CHALLENGE_LABEL: "someone-else",
            MANAGED_LABEL: "false",
        },
    )
    spec = http01_spec(name, namespace, token="tok-lbl", dns_name="lbl.example.com", http01=http01)
    routes.publish(spec)
    routes.publish(spec)

    route = kubectl.get(f"httproutes.{GATEWAY_GROUP}", name, namespace=namespace)
    assert route["metadata"]["labels"] == {
        "gateway": "public",
        "team": "web",
        CHALLENGE_LABEL: name,
        MANAGED_LABEL: "true",
    }
    selected = kubectl(
        "get", f"httproutes.{GATEWAY_GROUP}", "-n", namespace, "-l", "gateway=public,team=web",
        "-o", "name",
    )  # fmt: skip
    assert selected.stdout.split() == [f"httproute.{GATEWAY_GROUP}/{name}"]

    routes.withdraw(spec)  # acmeflow's label won, so clean-up still knows the route as its own
    assert not exists(kubectl, f"httproutes.{GATEWAY_GROUP}", name, namespace)


def test_a_gateway_route_in_the_solver_namespace_needs_no_grant(
    routes: KubernetesHttp01Routes, kubectl: Kubectl, solver_namespace: str
) -> None:
    name = unique("chal")
    create_challenge(kubectl, name, solver_namespace, token="tok-gwl", dns_name="gwl.example.com")
    http01 = Http01Ingress(gateway_parent_refs=[{"name": "public"}])
    spec = http01_spec(
        name, solver_namespace, token="tok-gwl", dns_name="gwl.example.com", http01=http01
    )
    routes.publish(spec)
    route = kubectl.get(f"httproutes.{GATEWAY_GROUP}", name, namespace=solver_namespace)
    assert route["spec"]["parentRefs"] == [{**GATEWAY_DEFAULTS, "name": "public"}]
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {**SERVICE_DEFAULTS, "name": "acmeflow-solver", "port": 8089}
    ]
    assert not exists(
        kubectl,
        f"referencegrants.{GATEWAY_GROUP}",
        f"acmeflow-solver-from-{solver_namespace}",
        solver_namespace,
    )
    routes.withdraw(spec)


def test_missing_rbac_is_named(
    stack: StackInfo, kubectl: Kubectl, namespace: str, solver_namespace: str
) -> None:
    user = "acmeflow-test-routes"
    kubectl(
        "create", "role", "read-challenges", "-n", namespace,
        "--verb=get", "--resource=challenges.acmeflow.io",
    )  # fmt: skip
    kubectl(
        "create", "rolebinding", "read-challenges", "-n", namespace,
        "--role=read-challenges", f"--user={user}",
    )  # fmt: skip
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(stack.kubeconfig), client_configuration=configuration)
    as_user = client.ApiClient(configuration, header_name="Impersonate-User", header_value=user)
    limited = KubernetesHttp01Routes(as_user, solver_namespace=solver_namespace)
    name = unique("chal")
    create_challenge(kubectl, name, namespace, token="tok-rbac", dns_name="rbac.example.com")
    spec = http01_spec(name, namespace, token="tok-rbac", dns_name="rbac.example.com")
    with pytest.raises(ApplicationError) as caught:
        limited.publish(spec)
    assert caught.value.type == BAD_REQUEST
    assert f'verb "create" on "services" in namespace "{namespace}"' in caught.value.message
    assert f"Challenge {namespace}/{name}" in caught.value.message

    with pytest.raises(ApplicationError) as caught:
        limited.withdraw(spec)
    assert f'verb "get" on "ingresses.networking.k8s.io" in namespace "{namespace}"' in (
        caught.value.message
    )


@pytest.mark.parametrize(
    "name",
    [
        "1-starts-with-a-digit",
        "has.dots.in.it",
        "x" * 64,
        "cert-" + "y" * 200 + "-0",
        "Upper-Case",
    ],
)
def test_derived_route_names_are_valid_service_names(name: str) -> None:
    derived = route_name(name)
    assert len(derived) <= 63
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", derived), derived
    assert route_name(name) == derived
    assert route_name(name + "-other") != derived


def test_valid_names_are_kept() -> None:
    assert route_name("web-cert-12345-0") == "web-cert-12345-0"
    assert json.dumps(route_name("a")) == '"a"'
