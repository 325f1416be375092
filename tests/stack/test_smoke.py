"""Each server of the embedded stack really answers, the way acmeflow will use it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import josepy as jose
import pytest
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import Client
from temporalio.worker import Worker

from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.sandbox import workflow_runner
from tests.stack.shout import ShoutWorkflow, shout


async def test_temporal_runs_a_workflow(temporal_client: Client, task_queue: str) -> None:
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[ShoutWorkflow],
        activities=[shout],
        workflow_runner=workflow_runner(),
    ):
        result = await temporal_client.execute_workflow(
            ShoutWorkflow.run, "hello", id=f"smoke-{uuid.uuid4()}", task_queue=task_queue
        )
    assert result == "HELLO"


async def test_temporal_has_acmeflow_search_attributes(temporal_client: Client) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    response = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert {"AcmeflowOrderState", "AcmeflowDomains"} <= set(response.custom_attributes)


def _acme_client(stack: StackInfo, key: jose.JWK) -> acme_client.ClientV2:
    net = acme_client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(stack.acme_ca_bundle))
    directory = acme_client.ClientV2.get_directory(stack.acme_directory_url, net)
    return acme_client.ClientV2(directory, net)


def test_pebble_registers_an_account_once(stack: StackInfo) -> None:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    registration = messages.NewRegistration(terms_of_service_agreed=True)
    account = _acme_client(stack, key).new_account(registration)
    assert account.uri.startswith(stack.acme_directory_url.removesuffix("/dir"))
    with pytest.raises(acme_errors.ConflictError) as existing:
        _acme_client(stack, key).new_account(registration)
    assert existing.value.location == account.uri
    assert "BEGIN CERTIFICATE" in stack.pebble_roots.read_text()


def _dns_server(stack: StackInfo) -> tuple[str, int]:
    host, port = stack.dns_address.split(":")
    return host, int(port)


def test_bind_serves_a_tsig_signed_update(stack: StackInfo) -> None:
    host, port = _dns_server(stack)
    record = f"_acme-challenge.smoke-{uuid.uuid4().hex[:8]}.example.com."
    keyring = dns.tsigkeyring.from_text(
        {stack.tsig_key_name: stack.tsig_secret_path.read_text().strip()}
    )
    update = dns.update.UpdateMessage(
        "example.com.", keyring=keyring, keyalgorithm=stack.tsig_algorithm
    )
    update.add(record, 60, "TXT", '"smoke-value"')
    assert dns.query.tcp(update, host, port=port, timeout=5).rcode() == dns.rcode.NOERROR

    answer = dns.query.udp(dns.message.make_query(record, "TXT"), host, port=port, timeout=5)
    values = [b"".join(r.strings).decode() for rrset in answer.answer for r in rrset]
    assert values == ["smoke-value"]

    unsigned = dns.update.UpdateMessage("example.com.")
    unsigned.add(record, 60, "TXT", '"forged"')
    assert dns.query.tcp(unsigned, host, port=port, timeout=5).rcode() == dns.rcode.REFUSED


def test_bind_resolves_test_names_to_loopback(stack: StackInfo) -> None:
    host, port = _dns_server(stack)
    for name in ("test1.example.com", "anything.example.com", "example.com"):
        answer = dns.query.udp(
            dns.message.make_query(name, dns.rdatatype.A), host, port=port, timeout=5
        )
        assert [r.to_text() for rrset in answer.answer for r in rrset] == ["127.0.0.1"], name


@dataclass
class Kubectl:
    stack: StackInfo

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.stack.kubectl), "--kubeconfig", str(self.stack.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.acmeflow.io"},
    "spec": {
        "group": "smoke.acmeflow.io",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {
                                "type": "object",
                                "properties": {"state": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_kube_apiserver_serves_a_crd_with_status(stack: StackInfo) -> None:
    kubectl = Kubectl(stack)
    kubectl("apply", "-f", "-", stdin=json.dumps(WIDGET_CRD))
    kubectl("wait", "--for=condition=Established", "crd/widgets.smoke.acmeflow.io", "--timeout=30s")
    widget = {
        "apiVersion": "smoke.acmeflow.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"},
        "spec": {"size": 3},
        "status": {"state": "ignored-on-create"},
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(widget))
    kubectl(
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"state": "ready"}}',
    )
    got = json.loads(kubectl("get", "widget", "w1", "-o", "json").stdout)
    assert got["spec"] == {"size": 3}
    assert got["status"] == {"state": "ready"}


def test_rbac_denies_an_unprivileged_user(stack: StackInfo) -> None:
    kubectl = Kubectl(stack)
    denied = kubectl("get", "secrets", "--as=alice", check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    assert (
        kubectl("auth", "can-i", "list", "secrets", "--as=alice", check=False).stdout.strip()
        == "no"
    )
    assert kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "yes"


def test_garbage_collector_deletes_an_orphaned_child(stack: StackInfo) -> None:
    kubectl = Kubectl(stack)
    suffix = uuid.uuid4().hex[:8]
    kubectl("create", "configmap", f"owner-{suffix}")
    owner_uid = kubectl(
        "get", "configmap", f"owner-{suffix}", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"child-{suffix}",
            "namespace": "default",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": f"owner-{suffix}",
                    "uid": owner_uid,
                }
            ],
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(child))
    kubectl("delete", "configmap", f"owner-{suffix}", "--wait=true")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if kubectl("get", "configmap", f"child-{suffix}", check=False).returncode != 0:
            return
        time.sleep(0.5)
    pytest.fail("the garbage collector did not delete the child of a deleted owner")
