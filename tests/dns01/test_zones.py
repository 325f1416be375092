"""Zones the way the world has them, against the stack's BIND9 (and PowerDNS behind it).

The zone of a record is found by SOA, a ``_acme-challenge`` CNAME is followed into
another zone when the solver says so, and the self-check names the authoritative server
that does not serve the value yet. The zones are described in acmeflow/devstack/bind.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dns.query
import dns.rdatatype
import dns.zone
import pytest
from temporalio.client import Client, WorkflowFailureError

from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.activities.csr import load_private_key
from acmeflow.activities.dns01 import Rfc2136Publisher, check_dns01
from acmeflow.activities.dns_zones import Nameserver, authoritative_servers, resolve_target
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.activities.self_check_settings import SelfCheckSettings
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Route53, SolverConfig
from acmeflow.contracts.states import ChallengeType
from acmeflow.devstack.bind import CNAME_LOOP_NAME, CNAME_NAME, CNAME_TARGET_ZONE
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.addresses import split_host_port
from acmeflow.worker.build import build_worker, self_check_settings
from acmeflow.workflows.order import OrderTimeouts, OrderWorkflow
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    issuer_manifest,
    tls_secret,
    tsig_secret,
    wait_for,
    wait_for_ready,
)
from tests.bridge.bridge_harness import dns01_solver as dns01_solver_block
from tests.bridge.conftest import WorkerThread
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.orders.durability_gates import EmptyDnsServer
from tests.orders.order_harness import (
    assert_certificate,
    dns01_solver,
    issuer,
    prepare,
    start,
    worker_config,
)

OWNER = CopyOwner(workflow_id="test/zones", challenge="test/zones-0")
BOUNDED = OrderTimeouts(self_check_s=60)
"""A value written to the wrong place fails the order instead of waiting half an hour."""


def challenge(name: str, solver: SolverConfig, *, key: str = "zones-test-value") -> ChallengeSpec:
    return ChallengeSpec(
        name="zones-0",
        namespace="test",
        order_name="zones",
        dns_name=name,
        wildcard=False,
        type=ChallengeType.DNS01,
        token="token",
        key=key,
        url="https://ca.test/chall/1",
        authorization_url="https://ca.test/authz/1",
        solver=solver,
    )


def solvers(stack: StackInfo, *, cname_follow: bool = False) -> dict[str, SolverConfig]:
    """RFC 2136 asks the nameserver it updates; any other provider asks the resolver."""
    return {
        "rfc2136": replace(dns01_solver(stack), cname_follow=cname_follow),
        "route53": SolverConfig(route53=Route53(), cname_follow=cname_follow),
    }


def settings(stack: StackInfo, **nameservers: str) -> SelfCheckSettings:
    """The test workers' settings; ``nameservers`` replace the stack's overrides."""
    configured = self_check_settings(worker_config(stack, "unused"))
    return replace(configured, nameservers=nameservers or configured.nameservers)


def txt_records(stack: StackInfo, zone: str) -> dict[str, list[str]]:
    """Every TXT record of ``zone``, transferred whole from BIND9."""
    host, port = split_host_port(stack.dns_address, 53)
    transferred = dns.zone.from_xfr(dns.query.xfr(host, zone, port=port, timeout=5))
    return {
        str(name): [b"".join(rdata.strings).decode() for rdata in rdataset]
        for name, rdataset in transferred.iterate_rdatasets(dns.rdatatype.TXT)
    }


@pytest.mark.parametrize("provider", ["rfc2136", "route53"])
@pytest.mark.parametrize(
    ("name", "fqdn", "zone"),
    [
        ("example.com", "_acme-challenge.example.com.", "example.com."),
        ("www.example.com", "_acme-challenge.www.example.com.", "example.com."),
        ("a.b.c.example.com", "_acme-challenge.a.b.c.example.com.", "example.com."),
        ("www.delegated.test", "_acme-challenge.www.delegated.test.", "delegated.test."),
        ("x.y.example.org", "_acme-challenge.x.y.example.org.", "example.org."),
        # The alias is not a zone, though BIND's answer about it carries delegated.test's SOA.
        (CNAME_NAME, f"_acme-challenge.{CNAME_NAME}.", "example.com."),
    ],
)
def test_the_zone_is_found_by_soa_at_every_depth(
    stack: StackInfo, provider: str, name: str, fqdn: str, zone: str
) -> None:
    spec = challenge(name, solvers(stack)[provider])
    target = resolve_target(spec, settings(stack))
    assert (target.fqdn, target.zone, target.value) == (fqdn, zone, spec.key)


@pytest.mark.parametrize("provider", ["rfc2136", "route53"])
def test_cname_follow_writes_where_the_cname_points(stack: StackInfo, provider: str) -> None:
    spec = challenge(CNAME_NAME, solvers(stack, cname_follow=True)[provider])
    target = resolve_target(spec, settings(stack))
    assert (target.fqdn, target.zone) == (
        f"_acme-challenge.cname.{CNAME_TARGET_ZONE}.",
        f"{CNAME_TARGET_ZONE}.",
    )


def test_a_zone_served_by_powerdns_is_found_and_checked_at_powerdns(stack: StackInfo) -> None:
    # BIND9 forwards example.net to PowerDNS; its NS is reached at PowerDNS's own port.
    spec = challenge("www.example.net", solvers(stack)["route53"])
    target = resolve_target(spec, settings(stack))
    assert target.zone == "example.net."
    assert authoritative_servers(spec, target, settings(stack)) == [
        Nameserver("ns.example.net.", ("127.0.0.1", stack.ports.powerdns))
    ]


@pytest.mark.parametrize("provider", ["rfc2136", "route53"])
def test_the_self_check_names_the_authoritative_server_that_lacks_the_value(
    stack: StackInfo, provider: str
) -> None:
    name = f"check-{provider}.example.org"
    written = challenge(name, solvers(stack)["rfc2136"])
    target = resolve_target(written, settings(stack))
    publisher = Rfc2136Publisher(SecretStore())
    checked = challenge(name, solvers(stack)[provider])
    publisher.add_txt(written, target, copy=OWNER)
    try:
        assert check_dns01(checked, settings(stack)).passed
        with EmptyDnsServer() as empty:
            port = empty.port
            lagging = settings(stack, **{"ns.example.org.": f"127.0.0.1:{port}"})
            result = check_dns01(checked, lagging)
        assert not result.passed
        assert result.reason == (
            f"nameserver ns.example.org. at 127.0.0.1:{port} serves 0 TXT value(s) for "
            f"_acme-challenge.{name}. (zone example.org.), not yet the expected one"
        )
    finally:
        publisher.delete_txt(written, target, copy=OWNER)
    assert f"_acme-challenge.{name.removesuffix('.example.org')}" not in txt_records(
        stack, "example.org"
    )


def test_a_cname_without_follow_is_named_in_the_self_check(stack: StackInfo) -> None:
    # BIND drops a TXT record added beside a CNAME, so the check could never pass: say why.
    spec = challenge(CNAME_NAME, solvers(stack)["rfc2136"])
    target = resolve_target(spec, settings(stack))
    publisher = Rfc2136Publisher(SecretStore())
    publisher.add_txt(spec, target, copy=OWNER)
    try:
        result = check_dns01(spec, settings(stack))
    finally:
        publisher.delete_txt(spec, target, copy=OWNER)
    assert not result.passed
    assert result.reason.endswith(
        f"; _acme-challenge.{CNAME_NAME}. is a CNAME to "
        f"_acme-challenge.cname.{CNAME_TARGET_ZONE}.: set cnameStrategy: Follow on the solver"
    )


async def test_a_cname_delegated_wildcard_and_apex_issue(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    # Both share _acme-challenge.cname.example.com, a CNAME: their two values go to
    # delegated.test, where Pebble, following the CNAME, finds them.
    names = [CNAME_NAME, f"*.{CNAME_NAME}"]
    solver = replace(dns01_solver(stack), cname_follow=True)
    prepared = prepare(names, issuer(stack, tmp_path, solvers=[solver]), timeouts=BOUNDED)
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        result = await (await start(temporal_client, prepared, task_queue)).result()
    assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
    assert "_acme-challenge.cname" not in txt_records(stack, CNAME_TARGET_ZONE)
    assert "_acme-challenge.cname" not in txt_records(stack, "example.com")


async def test_a_cname_loop_gives_the_challenge_a_reason(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    solver = replace(dns01_solver(stack), cname_follow=True)
    prepared = prepare(
        [CNAME_LOOP_NAME], issuer(stack, tmp_path, solvers=[solver]), timeouts=BOUNDED
    )
    async with build_worker(temporal_client, worker_config(stack, task_queue)):
        handle = await start(temporal_client, prepared, task_queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        progress = await handle.query(OrderWorkflow.progress)
    loop = (
        f"CNAME loop: _acme-challenge.{CNAME_LOOP_NAME}. -> "
        f"_acme-challenge.loop.{CNAME_TARGET_ZONE}. -> _acme-challenge.{CNAME_LOOP_NAME}."
    )
    [only] = progress.challenges
    assert loop in only.reason
    assert loop in progress.reason
    assert not only.presented


@pytest.fixture(scope="module")
def zones_worker(stack: StackInfo, queues: tuple[str, str]) -> Iterator[None]:
    """An order worker with Kubernetes Secrets on the bridge's task queue."""
    with WorkerThread(stack, queues[0]):
        yield


def test_a_certificate_whose_issuer_follows_cnames_becomes_ready(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess, zones_worker: None
) -> None:
    solver = dns01_solver_block(stack)
    solver["dns01"]["cnameStrategy"] = "Follow"
    names = [CNAME_NAME, f"*.{CNAME_NAME}"]
    with temporary_namespace(kubectl, "zones") as namespace:
        kubectl.create(tsig_secret(stack, namespace))
        kubectl.create(issuer_manifest(stack, namespace, solvers=[solver]))
        kubectl.create(certificate_manifest(namespace, "cname", names))
        wait_for_ready(kubectl, "certificate", namespace, "cname")
        secret = tls_secret(kubectl, namespace, "cname-tls")
        assert secret is not None
        key = load_private_key(secret["tls.key"])
        assert_certificate(secret["tls.crt"].decode(), key, names, stack.pebble_roots)
    # Clean-up may still be running when the Certificate turns Ready.
    wait_for(
        lambda: "_acme-challenge.cname" not in txt_records(stack, CNAME_TARGET_ZONE),
        "both values gone from delegated.test",
    )
