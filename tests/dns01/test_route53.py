"""Route53, natively with boto3, against moto's server: certificates, refusals, secrets.

Orders run on the stack's Pebble; moto holds the hosted zone ``example.org.`` and the
mirror (tests/dns01/route53_stack.py) copies its TXT record sets into BIND9, which Pebble
and the self-check ask. Refused credentials need IAM authentication, which the stack's
moto does not check: those tests start a moto of their own with it on.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from acmeflow.activities import dns01_route53
from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.dns01_route53 import ROUTE53_UNAVAILABLE, Route53Publisher
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.errors import BAD_REQUEST, STILL_WAITING
from acmeflow.contracts.issuer import Route53, SolverConfig
from acmeflow.contracts.progress import OrderProgress
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import ChallengeType
from acmeflow.devstack.moto import start_extra_moto
from acmeflow.devstack.processes import free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo
from acmeflow.worker.build import build_worker
from acmeflow.workflows.order import OrderResult, OrderTimeouts, OrderWorkflow
from tests.dns01.route53_stack import (
    ZONE,
    ClusterSecrets,
    KeptCopies,
    Route53Mirror,
    Route53Zone,
    StrictRoute53,
    plant_txt,
    unquoted,
)
from tests.orders.history_search import HistoryText, Secret, text_secret
from tests.orders.order_harness import assert_certificate, issuer, prepare, start, worker_config

ACCESS_KEY_ID = "AKIAROUTE53TEST00000"
"""Given in the clear (cert-manager's ``accessKeyID``): not a secret, so it is in history."""


def _label() -> str:
    return f"r53-{uuid.uuid4().hex[:8]}"


def _record(name: str) -> str:
    return f"_acme-challenge.{name.removeprefix('*.')}."


def _secret_key() -> str:
    return f"r53-secret-{uuid.uuid4().hex}{uuid.uuid4().hex}"


def _solver(tmp_path: Path, secret_key: str, **fields: str) -> SolverConfig:
    path = tmp_path / f"aws-{uuid.uuid4().hex[:6]}"
    path.write_text(secret_key)
    settings = {"access_key_id": ACCESS_KEY_ID, "region": "us-east-1", **fields}
    return SolverConfig(route53=Route53(secret_access_key=SecretRef(path=str(path)), **settings))


@dataclass(frozen=True)
class Orders:
    """Runs one order to its end on a worker of its own, pointed at a Route53 endpoint."""

    stack: StackInfo
    client: Client
    task_queue: str
    tmp_path: Path

    async def run(
        self,
        names: list[str],
        solver: SolverConfig,
        *,
        endpoint: str,
        timeouts: OrderTimeouts | None = None,
    ) -> Issued:
        stack = self.stack
        account = issuer(stack, self.tmp_path, solvers=[solver])
        prepared = prepare(names, account, timeouts=timeouts)
        config = worker_config(stack, self.task_queue, route53_endpoint=endpoint)
        async with build_worker(self.client, config):
            handle = await start(self.client, prepared, self.task_queue)
            try:
                result: OrderResult | None = await handle.result()
            except WorkflowFailureError:
                result = None  # the run fails with the order's reason; progress holds its state
            progress = await handle.query(OrderWorkflow.progress)
        if result is not None:
            assert_certificate(result.certificate, prepared.key, names, stack.pebble_roots)
        return Issued(progress, handle)


@pytest.fixture
def orders(stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path) -> Orders:
    return Orders(stack, temporal_client, task_queue, tmp_path)


@dataclass(frozen=True)
class Issued:
    """An order run to its end: its last progress, and its workflow."""

    progress: OrderProgress
    handle: WorkflowHandle[OrderWorkflow, OrderResult]

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.progress.challenges]

    @property
    def keys(self) -> list[str]:
        return sorted(c.spec.key for c in self.progress.challenges)


# -- certificates ------------------------------------------------------------------------


async def test_wildcard_and_apex_issue_through_route53_with_both_values_at_once(
    orders: Orders,
    tmp_path: Path,
    route53_zone: Route53Zone,
    route53_mirror: Route53Mirror,
) -> None:
    apex = f"{_label()}.example.org"
    names = [f"*.{apex}", apex]
    issued = await orders.run(
        names,
        _solver(tmp_path, _secret_key()),
        endpoint=route53_zone.endpoint_url,
    )
    assert issued.progress.state == "valid", issued.progress.reason
    assert len(set(issued.keys)) == 2
    # One name, two values, in Route53 together: neither write dropped the other's value.
    assert issued.keys in route53_mirror.states(_record(apex))
    assert route53_zone.txt(_record(apex)) == []


async def test_a_foreign_value_at_the_name_is_kept(
    orders: Orders,
    tmp_path: Path,
    route53_zone: Route53Zone,
    route53_mirror: Route53Mirror,
) -> None:
    name = f"{_label()}.example.org"
    plant_txt(route53_zone.client(), route53_zone.zone_id, _record(name), ["someone-elses"])
    issued = await orders.run(
        [name],
        _solver(tmp_path, _secret_key()),
        endpoint=route53_zone.endpoint_url,
    )
    assert issued.progress.state == "valid", issued.progress.reason
    assert sorted(["someone-elses", *issued.keys]) in route53_mirror.states(_record(name))
    assert route53_zone.txt(_record(name)) == ["someone-elses"]


@pytest.mark.usefixtures("route53_mirror")  # Pebble resolves what the order writes
async def test_histories_hold_the_secret_key_by_reference_only(
    orders: Orders, tmp_path: Path, route53_zone: Route53Zone
) -> None:
    secret_key = _secret_key()
    solver = _solver(tmp_path, secret_key)
    issued = await orders.run(
        [f"{_label()}.example.org"],
        solver,
        endpoint=route53_zone.endpoint_url,
    )
    assert issued.progress.state == "valid", issued.progress.reason
    text = HistoryText(await issued.handle.fetch_history())
    assert solver.route53 is not None and solver.route53.secret_access_key is not None
    # The search reads the solver's settings where they travel: the clear key id and the
    # secret's file path are found, the secret access key is not.
    assert text.contains(Secret("access key id", (ACCESS_KEY_ID.encode(),)))
    assert text.contains(Secret("secret's path", (solver.route53.secret_access_key.path.encode(),)))
    assert text.found([text_secret("AWS secret access key", secret_key)]) == []


# -- refusals and outages, as the Challenge says them -------------------------------------


async def test_a_zone_with_no_hosted_zone_is_refused_naming_route53_and_the_zone(
    orders: Orders,
    tmp_path: Path,
    route53_zone: Route53Zone,
) -> None:
    # delegated.test is a zone BIND9 serves (so SOA finds it) that no hosted zone matches.
    issued = await orders.run(
        [f"{_label()}.delegated.test"],
        _solver(tmp_path, _secret_key()),
        endpoint=route53_zone.endpoint_url,
    )
    assert issued.progress.state == "errored"
    [reason] = issued.reasons
    assert reason.startswith("route53: no hosted zone named delegated.test. "), reason


async def test_an_unreachable_api_is_retried_then_named(orders: Orders, tmp_path: Path) -> None:
    issued = await orders.run(
        [f"{_label()}.example.org"],
        _solver(tmp_path, _secret_key()),
        endpoint=f"http://127.0.0.1:{free_port()}",
        timeouts=OrderTimeouts(acme_call_s=4),
    )
    assert issued.progress.state == "errored"
    [reason] = issued.reasons
    # "gave up after": retried until the step's time ran out, not refused at once.
    assert "gave up after 4s: route53: " in reason, reason
    assert "API unreachable: Could not connect to the endpoint URL" in reason, reason


@pytest.fixture
def authenticating_moto(stack: StackInfo) -> Iterator[tuple[str, dict[str, str]]]:
    """A moto that checks every signature, and the key of the one IAM user it knows."""
    process, url = start_extra_moto(
        stack.state_dir, name=f"moto-auth-{uuid.uuid4().hex[:6]}", auth_after=2
    )
    try:
        # The first two calls go unchecked: they make the user and its key.
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="dns01")
        key = iam.create_access_key(UserName="dns01")["AccessKey"]
        yield url, {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        stop_pid_file(process.pid_path)


async def test_refused_credentials_give_the_reason_aws_gave(
    orders: Orders,
    tmp_path: Path,
    authenticating_moto: tuple[str, dict[str, str]],
) -> None:
    url, key = authenticating_moto
    unknown_key = _solver(tmp_path, _secret_key())
    wrong_secret = _solver(
        tmp_path,
        "wrong-" + key["secret"],
        access_key_id=key["id"],
        role="arn:aws:iam::123456789012:role/dns01",
    )
    reasons = []
    for solver in (unknown_key, wrong_secret):
        issued = await orders.run(
            [f"{_label()}.example.org"],
            solver,
            endpoint=url,
        )
        assert issued.progress.state == "errored"
        reasons += issued.reasons
    assert reasons[0].startswith(
        "route53: finding the hosted zone for example.org.: InvalidClientTokenId: "
    ), reasons[0]
    assert reasons[1].startswith(
        "route53: assuming role arn:aws:iam::123456789012:role/dns01: SignatureDoesNotMatch: "
    ), reasons[1]


# -- the publisher on its own, against the stack's moto ----------------------------------


def _spec(config: Route53, name: str = "www.example.org") -> ChallengeSpec:
    return ChallengeSpec(
        name="www-0",
        namespace="team-a",
        order_name="www",
        dns_name=name,
        wildcard=False,
        type=ChallengeType.DNS01,
        token="token",
        key="unused",
        url="https://ca.test/chall",
        authorization_url="https://ca.test/authz",
        solver=SolverConfig(route53=config),
    )


def _target(name: str, value: str) -> TxtTarget:
    return TxtTarget(fqdn=_record(name), zone=ZONE, value=value)


OWNER = CopyOwner(workflow_id="order/team-a/www", challenge="team-a/www-0")


def test_the_copy_removes_the_value_after_the_users_secret_is_gone(
    route53_zone: Route53Zone,
) -> None:
    key_id_ref = SecretRef(namespace="team-a", name="aws", key="access-key-id")
    secret_ref = SecretRef(namespace="team-a", name="aws", key="secret-access-key")
    cluster = ClusterSecrets({key_id_ref: b"AKIACOPIED0000000000", secret_ref: b"copied-secret"})
    copies = KeptCopies()
    publisher = Route53Publisher(
        SecretStore(kubernetes=cluster), copies, endpoint_url=route53_zone.endpoint_url
    )
    config = Route53(access_key_id_secret=key_id_ref, secret_access_key=secret_ref)
    name = f"{_label()}.example.org"
    env = ActivityEnvironment()
    env.run(publisher.add_txt, _spec(config, name), _target(name, "ours"), copy=OWNER)
    assert route53_zone.txt(_record(name)) == ["ours"]
    assert json.loads(copies.values[OWNER]) == {
        "accessKeyID": "AKIACOPIED0000000000",
        "secretAccessKey": "copied-secret",
    }
    assert copies.about[OWNER]["record"] == _record(name)
    cluster.values.clear()  # the namespace, and its Secret, are deleted
    env.run(publisher.delete_txt, _spec(config, name), _target(name, "ours"), copy=OWNER)
    assert route53_zone.txt(_record(name)) == []
    assert copies.values == {}
    # Retried after it worked: no Secret, no copy, nothing to remove and nothing raised.
    env.run(publisher.delete_txt, _spec(config, name), _target(name, "ours"), copy=OWNER)


def test_a_refused_add_discards_its_copy(route53_zone: Route53Zone) -> None:
    secret_ref = SecretRef(namespace="team-a", name="aws", key="secret-access-key")
    copies = KeptCopies()
    publisher = Route53Publisher(
        SecretStore(kubernetes=ClusterSecrets({secret_ref: b"s"})),
        copies,
        endpoint_url=route53_zone.endpoint_url,
    )
    config = Route53(access_key_id=ACCESS_KEY_ID, secret_access_key=secret_ref)
    target = TxtTarget(fqdn="_acme-challenge.x.nozone.test.", zone="nozone.test.", value="v")
    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(publisher.add_txt, _spec(config), target, copy=OWNER)
    assert refused.value.type == BAD_REQUEST
    assert "no hosted zone named nozone.test." in refused.value.message
    assert copies.values == {}


def test_ambient_credentials_only_where_the_issuer_allows_them(
    route53_zone: Route53Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENT000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    publisher = Route53Publisher(SecretStore(), endpoint_url=route53_zone.endpoint_url)
    name = f"{_label()}.example.org"
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as refused:
        env.run(publisher.add_txt, _spec(Route53(), name), _target(name, "v"), copy=OWNER)
    assert refused.value.non_retryable
    assert refused.value.message.startswith("route53: no credentials: set accessKeyID")
    assert route53_zone.txt(_record(name)) == []
    allowed = Route53(ambient=True)
    env.run(publisher.add_txt, _spec(allowed, name), _target(name, "v"), copy=OWNER)
    assert route53_zone.txt(_record(name)) == ["v"]
    env.run(publisher.delete_txt, _spec(allowed, name), _target(name, "v"), copy=OWNER)
    assert route53_zone.txt(_record(name)) == []


def test_values_written_at_once_to_one_name_are_all_kept(
    route53_zone: Route53Zone, tmp_path: Path
) -> None:
    solver = _solver(tmp_path, _secret_key())
    assert solver.route53 is not None
    publisher = Route53Publisher(SecretStore(), endpoint_url=route53_zone.endpoint_url)
    name = f"{_label()}.example.org"
    values = [f"value-{i}" for i in range(4)]
    failures: list[BaseException] = []

    def add(value: str) -> None:
        try:
            ActivityEnvironment().run(
                publisher.add_txt, _spec(solver.route53, name), _target(name, value), copy=OWNER
            )
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=add, args=(value,)) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert route53_zone.txt(_record(name)) == values


def test_a_hosted_zone_id_that_does_not_exist_is_named_with_awss_words(
    route53_zone: Route53Zone, tmp_path: Path
) -> None:
    solver = _solver(tmp_path, _secret_key(), hosted_zone_id="Z0DOESNOTEXIST")
    assert solver.route53 is not None
    publisher = Route53Publisher(SecretStore(), endpoint_url=route53_zone.endpoint_url)
    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(
            publisher.add_txt,
            _spec(solver.route53),
            _target("www.example.org", "v"),
            copy=OWNER,
        )
    assert refused.value.type == BAD_REQUEST
    assert refused.value.message == (
        "route53: adding TXT _acme-challenge.www.example.org. in hosted zone Z0DOESNOTEXIST: "
        "NoSuchHostedZone: No hosted zone found with ID: Z0DOESNOTEXIST"
    )


def test_an_unreachable_api_is_retryable(tmp_path: Path) -> None:
    solver = _solver(tmp_path, _secret_key())
    assert solver.route53 is not None
    publisher = Route53Publisher(SecretStore(), endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(
            publisher.add_txt, _spec(solver.route53), _target("www.example.org", "v"), copy=OWNER
        )
    assert failed.value.type == ROUTE53_UNAVAILABLE
    assert not failed.value.non_retryable


def test_writers_on_two_workers_keep_each_others_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Route53's own rules (a DELETE must match, a CREATE must be new), where moto's are lax:
    the swap loses no value even when writers without a shared lock race on one name."""
    route53 = StrictRoute53()
    monkeypatch.setattr(Route53Publisher, "_client", lambda *_: route53)
    solver = _solver(tmp_path, _secret_key(), hosted_zone_id="ZSTRICT")
    assert solver.route53 is not None
    workers = [Route53Publisher(SecretStore()), Route53Publisher(SecretStore())]
    name = "race.example.org"
    values = [f"value-{i}" for i in range(6)]
    failures: list[BaseException] = []

    def add(worker: Route53Publisher, value: str) -> None:
        for _ in range(20):  # as Temporal retries a retryable failure
            try:
                ActivityEnvironment().run(
                    worker.add_txt, _spec(solver.route53, name), _target(name, value), copy=OWNER
                )
                return
            except ApplicationError as error:
                if error.type != ROUTE53_UNAVAILABLE:
                    failures.append(error)
                    return
        failures.append(RuntimeError(f"{value}: still racing after 20 attempts"))

    threads = [
        threading.Thread(target=add, args=(workers[i % 2], value)) for i, value in enumerate(values)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert route53.refused > 0, "no write came between another's read and write"
    records = route53.sets[_record(name)]["ResourceRecords"]
    assert unquoted([record["Value"] for record in records]) == values


def test_the_hosted_zone_is_the_one_named_exactly_public_before_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    route53 = StrictRoute53(
        zones=(
            ("ZPRIVATE", "example.org.", True),
            ("ZPUBLIC", "example.org.", False),
            ("ZLATER", "other.test.", False),
            ("ZONE", "twice.test.", False),
            ("ZTWO", "twice.test.", False),
        )
    )
    monkeypatch.setattr(Route53Publisher, "_client", lambda *_: route53)
    solver = _solver(tmp_path, _secret_key())
    assert solver.route53 is not None
    publisher = Route53Publisher(SecretStore())
    env = ActivityEnvironment()

    def add(fqdn: str, zone: str) -> None:
        target = TxtTarget(fqdn=fqdn, zone=zone, value="v")
        env.run(publisher.add_txt, _spec(solver.route53), target, copy=OWNER)

    add("_acme-challenge.www.example.org.", "example.org.")
    assert route53.written_to == ["ZPUBLIC"]
    with pytest.raises(ApplicationError) as none:
        add("_acme-challenge.www.nozone.test.", "nozone.test.")  # AWS lists other.test. next
    assert none.value.message.startswith("route53: no hosted zone named nozone.test. ")
    with pytest.raises(ApplicationError) as two:
        add("_acme-challenge.www.twice.test.", "twice.test.")
    assert two.value.message == (
        "route53: 2 hosted zones are named twice.test. (ZONE, ZTWO); set hostedZoneID to choose one"
    )
    assert route53.written_to == ["ZPUBLIC"]


def test_a_change_not_yet_insync_is_waited_for_by_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    route53 = StrictRoute53()
    route53.pending_answers = 1
    monkeypatch.setattr(Route53Publisher, "_client", lambda *_: route53)
    monkeypatch.setattr(dns01_route53, "INSYNC_WAIT_S", 0.0)
    solver = _solver(tmp_path, _secret_key(), hosted_zone_id="ZWAIT")
    assert solver.route53 is not None
    publisher = Route53Publisher(SecretStore())
    env = ActivityEnvironment()
    target = _target("www.example.org", "v")
    with pytest.raises(ApplicationError) as waiting:
        env.run(publisher.add_txt, _spec(solver.route53), target, copy=OWNER)
    assert waiting.value.type == STILL_WAITING and not waiting.value.non_retryable
    assert "is PENDING, not INSYNC" in waiting.value.message
    # The retry finds the value written; it waits for the same change, and writes nothing.
    env.run(publisher.add_txt, _spec(solver.route53), target, copy=OWNER)
    assert route53.asked == [route53.changes[0]] * 2
    assert len(route53.changes) == 1
    env.run(publisher.add_txt, _spec(solver.route53), target, copy=OWNER)
    assert len(route53.asked) == 2, "a change seen INSYNC is not asked about again"
