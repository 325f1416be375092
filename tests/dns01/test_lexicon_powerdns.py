"""DNS-01 through dns-lexicon's ``powerdns`` provider, into the stack's real PowerDNS.

Orders run on the real stack: Pebble resolves ``example.net`` through BIND9, which
forwards it to PowerDNS, and the self-check asks PowerDNS's own port. What a test
promises about records it checks in PowerDNS itself, through its API and its DNS port.

The rules about the clean-up copy and how failures are classified are checked first,
without servers, against a stand-in for lexicon's Client that journals every call.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from lexicon.config import ConfigResolver
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from acmeflow.activities.challenge_values import dns01_record_name
from acmeflow.activities.credential_copies import (
    COPY_LABEL,
    CopyOwner,
    KubernetesCredentialCopies,
)
from acmeflow.activities.dns01 import Dns01Activities
from acmeflow.activities.dns01_lexicon import (
    LEXICON_UNAVAILABLE,
    LexiconPublisher,
    ResolvedOptions,
    provider_failure,
    provider_options,
    speaker,
)
from acmeflow.activities.dns01_publishers import TxtPublisher, TxtTarget
from acmeflow.activities.kubernetes_secrets import KubernetesSecrets
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.errors import BAD_REQUEST
from acmeflow.contracts.issuer import Lexicon, SolverConfig
from acmeflow.contracts.progress import OrderProgress
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import ChallengeType
from acmeflow.devstack.processes import free_port
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from acmeflow.worker.build import build_worker, dns01_publishers, self_check_settings
from acmeflow.worker.config import WorkerConfig
from acmeflow.workflows.order import OrderResult, OrderTimeouts, OrderWorkflow
from tests.dns01.powerdns_stack import PowerDns, lexicon_powerdns_solver
from tests.dns01.provider_cases import secret_manifest
from tests.k8s.kube_helpers import Kubectl, temporary_namespace
from tests.orders.history_search import HistoryText, text_secret
from tests.orders.order_harness import (
    PreparedOrder,
    assert_certificate,
    issuer,
    prepare,
    start,
    txt_values,
    worker_config,
)

# -- the rules, against a journaling stand-in for lexicon's Client ----------------------

CREDENTIALS = SecretRef(namespace="team-a", name="dns-credentials")
OWNER = CopyOwner(workflow_id="order/team-a/www", challenge="team-a/www-0")
TARGET = TxtTarget(fqdn="_acme-challenge.www.corp.internal.", zone="corp.internal.", value="v1")


@dataclass
class Journal:
    entries: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    """TXT values the stand-in provider holds at TARGET."""
    refuse: Exception | None = None


class StandInOperations:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def list_records(
        self, rtype: str | None = None, name: str | None = None, content: str | None = None
    ) -> list[dict[str, Any]]:
        return [{"content": value} for value in self.journal.held]

    def create_record(self, rtype: str, name: str, content: str) -> bool:
        self.journal.entries.append(f"create {name} {content}")
        self.journal.held.append(content)
        return True

    def delete_record(
        self,
        identifier: str | None = None,
        rtype: str | None = None,
        name: str | None = None,
        content: str | None = None,
    ) -> bool:
        self.journal.entries.append(f"delete {name} {content}")
        self.journal.held.remove(str(content))
        return True


class StandInClient:
    """What ``LexiconPublisher`` uses of lexicon's Client: config, and a ``with`` block."""

    def __init__(self, journal: Journal, config: ConfigResolver) -> None:
        self.journal = journal
        self.config = config

    def __enter__(self) -> StandInOperations:
        domain = self.config.resolve("lexicon:domain")
        token = self.config.resolve("lexicon:cloudflare:auth_token")
        self.journal.entries.append(f"open {domain} with {token}")
        if self.journal.refuse is not None:
            raise self.journal.refuse
        return StandInOperations(self.journal)

    def __exit__(self, *_: object) -> None:
        return None


class WholeSecrets:
    """The user's namespace: one Secret that can vanish."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] | None = {"auth_token": b"the-users-token\n"}

    def read_all(self, ref: SecretRef) -> dict[str, bytes] | None:
        return self.data


class Copies:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.values: dict[CopyOwner, bytes] = {}

    def keep(self, owner: CopyOwner, value: bytes, *, about: dict[str, str]) -> None:
        assert b"the-users-token" not in json.dumps(about).encode()
        self.journal.entries.append(f"keep {json.loads(value)['auth_token']}")
        self.values[owner] = value

    def read(self, owner: CopyOwner) -> bytes | None:
        return self.values.get(owner)

    def discard(self, owner: CopyOwner) -> None:
        self.journal.entries.append("discard")
        self.values.pop(owner, None)


def _spec(config: Lexicon) -> ChallengeSpec:
    return ChallengeSpec(
        name="www-0",
        namespace="team-a",
        order_name="www",
        dns_name="www.corp.internal",
        wildcard=False,
        type=ChallengeType.DNS01,
        token="token",
        key=TARGET.value,
        url="https://ca.example/chall/1",
        authorization_url="https://ca.example/authz/1",
        solver=SolverConfig(lexicon=config),
    )


CLOUDFLARE = Lexicon(provider="cloudflare", options_secret=CREDENTIALS, shown_as="cloudflare")


def _publisher(journal: Journal) -> tuple[LexiconPublisher, WholeSecrets, Copies]:
    whole, copies = WholeSecrets(), Copies(journal)
    publisher = LexiconPublisher(
        SecretStore(),
        whole_secrets=whole,
        copies=copies,
        client=lambda config: StandInClient(journal, config),  # type: ignore[arg-type,return-value]
    )
    return publisher, whole, copies


def test_the_copy_is_kept_before_the_value_goes_out_and_discarded_after_it_is_gone() -> None:
    journal = Journal()
    publisher, _, copies = _publisher(journal)
    publisher.add_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)
    publisher.add_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)  # a retried step adds nothing
    publisher.delete_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)
    publisher.delete_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)  # nor does a retried delete
    token = "the-users-token"
    open_zone = f"open corp.internal with {token}"
    record = "_acme-challenge.www.corp.internal"
    assert journal.entries == [
        f"keep {token}",
        open_zone,
        f"create {record} v1",
        f"keep {token}",
        open_zone,
        open_zone,
        f"delete {record} v1",
        "discard",
        open_zone,
        "discard",
    ]
    assert copies.values == {}


def test_clean_up_after_the_users_secret_is_gone_uses_the_copy() -> None:
    journal = Journal(held=["someone-elses"])
    publisher, whole, copies = _publisher(journal)
    publisher.add_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)
    whole.data = None  # the namespace went, and its Secret with it
    publisher.delete_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)
    assert journal.entries[-3:] == [
        "open corp.internal with the-users-token",
        "delete _acme-challenge.www.corp.internal v1",
        "discard",
    ]
    assert journal.held == ["someone-elses"]
    assert copies.values == {}


def test_clean_up_with_neither_the_secret_nor_a_copy_sends_nothing() -> None:
    journal = Journal()
    publisher, whole, _ = _publisher(journal)
    whole.data = None
    publisher.delete_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)
    assert journal.entries == []


def test_a_refused_present_discards_its_copy_and_names_the_provider() -> None:
    journal = Journal(refuse=_http_error(403, "Forbidden", '{"errors":[{"code":9109}]}'))
    publisher, _, copies = _publisher(journal)
    with pytest.raises(ApplicationError) as raised:
        publisher.add_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)
    assert raised.value.non_retryable
    assert raised.value.message.startswith("lexicon cloudflare: opening zone corp.internal.: ")
    assert "403 Forbidden" in raised.value.message and "9109" in raised.value.message
    assert journal.entries[-1] == "discard" and copies.values == {}


def test_a_reason_names_the_block_the_issuer_wrote_and_the_lexicon_provider() -> None:
    assert speaker(Lexicon(provider="powerdns")) == "lexicon powerdns"
    assert speaker(Lexicon(provider="azure", shown_as="azureDNS")) == "azureDNS (lexicon azure)"


def test_a_missing_secret_is_named_and_nothing_is_sent() -> None:
    journal = Journal()
    publisher, whole, _ = _publisher(journal)
    whole.data = None
    with pytest.raises(ApplicationError) as raised:
        publisher.add_txt(_spec(CLOUDFLARE), TARGET, copy=OWNER)
    assert raised.value.type == BAD_REQUEST
    assert "Secret team-a/dns-credentials does not exist" in raised.value.message
    assert journal.entries == []


def test_a_whole_secret_mounted_as_files_gives_one_option_per_file(tmp_path: Path) -> None:
    (tmp_path / "auth_token").write_text("the-mounted-token\n")
    (tmp_path / "..data").mkdir()  # what a Kubernetes Secret volume holds beside its keys
    journal = Journal()
    publisher, _, _ = _publisher(journal)
    mounted = Lexicon(provider="cloudflare", options_secret=SecretRef(path=str(tmp_path)))
    publisher.add_txt(_spec(mounted), TARGET, copy=OWNER)
    assert journal.entries == [
        "open corp.internal with the-mounted-token",
        "create _acme-challenge.www.corp.internal v1",
    ]


def _http_error(status: int, reason: str, body: str) -> requests.HTTPError:
    response = requests.Response()
    response.status_code, response.reason, response._content = status, reason, body.encode()
    return requests.HTTPError(f"{status} {reason}", response=response)


@pytest.mark.parametrize(
    ("error", "retried", "words"),
    [
        (_http_error(401, "Unauthorized", "Unauthorized"), False, "refused the credentials"),
        (_http_error(404, "Not Found", "Not Found"), False, "zone corp.internal. not found"),
        (_http_error(422, "Unprocessable Entity", "bad name"), False, "bad name"),
        (_http_error(503, "Service Unavailable", ""), True, "503 Service Unavailable"),
        (_http_error(429, "Too Many Requests", ""), True, "429"),
        (requests.ConnectionError("[Errno 111] Connection refused"), True, "unreachable"),
        (requests.Timeout("read timed out"), True, "unreachable"),
        (ValueError("No domain found"), False, "ValueError: No domain found"),
    ],
)
def test_failures_keep_the_providers_words_and_only_outages_are_retried(
    error: Exception, retried: bool, words: str
) -> None:
    failure = provider_failure(
        error,
        who="lexicon powerdns",
        step="opening zone corp.internal.",
        zone="corp.internal",
        options=ResolvedOptions(clear={}, secret={}),
    )
    assert failure.non_retryable is not retried
    assert failure.type == (LEXICON_UNAVAILABLE if retried else BAD_REQUEST)
    assert failure.message.startswith("lexicon powerdns: ")
    assert words in failure.message


def test_a_secret_value_the_provider_echoes_is_blanked_from_the_reason() -> None:
    token = "tok/en+with=chars"
    error = requests.ConnectionError(f"GET https://api.example/?key={token} and key=tok%2Fen%2B")
    failure = provider_failure(
        error,
        who="lexicon x",
        step="s",
        zone="z",
        options=ResolvedOptions(clear={"user": "me"}, secret={"auth_token": token}),
    )
    assert token not in failure.message and "***" in failure.message
    assert "me" not in ResolvedOptions(clear={}, secret={"a": "me-me"}).blanked("me-me says")


def test_a_service_account_key_from_a_secret_is_passed_inline_never_as_a_path() -> None:
    key_json = '{"type": "service_account", "project_id": "p"}'
    passed = provider_options("googleclouddns", {"auth_service_account_info": key_json})
    encoded = passed["auth_service_account_info"]
    assert encoded.startswith("base64::")
    assert base64.b64decode(encoded.removeprefix("base64::")).decode() == key_json


@pytest.mark.parametrize(
    ("provider", "options", "words"),
    [
        ("googleclouddns", {"auth_service_account_info": "file::/var/run/key.json"}, "path"),
        ("transip", {"auth_username": "u", "auth_api_key": "/etc/worker.pem"}, "path"),
        ("powerdns", {"pdns_server": "/var/run/docker.sock", "auth_token": "t"}, "URL"),
        ("route53", {"zone_id": "Z1"}, "the worker's own credentials"),
        ("oci", {"auth_tenancy": "t"}, "files on the worker"),
        ("localzone", {"filename": "/etc/hosts"}, "zone files on the worker"),
    ],
)
def test_options_that_would_reach_the_workers_own_files_or_credentials_are_refused(
    provider: str, options: dict[str, str], words: str
) -> None:
    with pytest.raises(ApplicationError) as raised:
        provider_options(provider, options)
    assert raised.value.type == BAD_REQUEST
    assert raised.value.message.startswith(f"lexicon {provider}")
    assert words in raised.value.message


# -- the real stack ----------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What PowerDNS held at a name right after one value was added there."""

    added: str
    in_api: list[str]
    served: list[str]


class WatchedPublisher:
    """The worker's lexicon publisher, with PowerDNS asked what it holds after each add."""

    def __init__(self, inner: TxtPublisher, powerdns: PowerDns) -> None:
        self.inner = inner
        self.powerdns = powerdns
        self.after_adds: list[Held] = []

    def add_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        self.inner.add_txt(spec, target, copy=copy)
        record = target.fqdn
        held = Held(target.value, self.powerdns.api_txt(record), self.powerdns.served_txt(record))
        self.after_adds.append(held)

    def delete_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        self.inner.delete_txt(spec, target, copy=copy)


def _label() -> str:
    return f"lx-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def lexicon_publisher() -> TxtPublisher:
    """The lexicon publisher exactly as the worker builds it."""
    publishers = dns01_publishers(WorkerConfig(), SecretStore(), None)
    assert isinstance(publishers.lexicon, LexiconPublisher), "build.py wires no lexicon publisher"
    return publishers.lexicon


@pytest.fixture
def watched(lexicon_publisher: TxtPublisher, powerdns: PowerDns) -> WatchedPublisher:
    return WatchedPublisher(lexicon_publisher, powerdns)


async def _run(
    client: Client,
    stack: StackInfo,
    task_queue: str,
    prepared: PreparedOrder,
    publisher: TxtPublisher | None = None,
) -> tuple[WorkflowHandle[OrderWorkflow, OrderResult], OrderProgress, str]:
    """Run the order to its end; its handle, final progress, and failure text (if any)."""
    config = worker_config(stack, task_queue)
    publishers = dns01_publishers(config, SecretStore(), None)
    if publisher is not None:
        publishers = replace(publishers, lexicon=publisher)
    dns01 = Dns01Activities(publishers, self_check_settings(config))
    failure = ""
    async with build_worker(client, config, dns01=dns01):
        handle = await start(client, prepared, task_queue)
        try:
            await handle.result()
        except WorkflowFailureError as error:
            failure = str(error.cause)
        progress = await handle.query(OrderWorkflow.progress)
    return handle, progress, failure


def _order(
    stack: StackInfo,
    powerdns: PowerDns,
    secrets_dir: Path,
    names: list[str],
    *,
    api_url: str = "",
    key: str = "",
    timeouts: OrderTimeouts | None = None,
) -> PreparedOrder:
    """An order for ``names`` through lexicon's powerdns provider (the stack's, by default)."""
    solver = lexicon_powerdns_solver(
        api_url or powerdns.api_url, key or powerdns.api_key, secrets_dir
    )
    return prepare(names, issuer(stack, secrets_dir, solvers=[solver]), timeouts=timeouts)


@pytest.mark.stack
async def test_a_wildcard_and_its_apex_issue_through_lexicon_into_powerdns(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    powerdns: PowerDns,
    watched: WatchedPublisher,
) -> None:
    base = f"{_label()}.{powerdns.zone}"
    names = [f"*.{base}", base]
    record = dns01_record_name(base)
    prepared = _order(stack, powerdns, tmp_path, names)
    handle, progress, failure = await _run(temporal_client, stack, task_queue, prepared, watched)

    assert progress.state == "valid", failure or progress.reason
    assert_certificate(progress.certificate, prepared.key, names, stack.pebble_roots)
    values = sorted(c.spec.key for c in progress.challenges)
    assert len(set(values)) == 2
    # After the second add PowerDNS held and served both values of the one name at once.
    assert [(held.in_api, held.served) for held in watched.after_adds][-1] == (values, values)
    assert (powerdns.api_txt(record), powerdns.served_txt(record)) == ([], [])
    # The key that wrote the records is nowhere in the order's history, which the search
    # does read: the (public) TXT values are there.
    history = HistoryText(await handle.fetch_history())
    assert history.found([text_secret("PowerDNS API key", powerdns.api_key)]) == []
    assert history.found([text_secret(f"TXT {value}", value) for value in values]) == [
        f"TXT {value}" for value in values
    ]


@pytest.mark.stack
async def test_a_foreign_txt_value_beside_ours_survives(
    stack: StackInfo,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    powerdns: PowerDns,
    watched: WatchedPublisher,
) -> None:
    name = f"{_label()}.{powerdns.zone}"
    record = dns01_record_name(name)
    foreign = f"someone-elses-{uuid.uuid4().hex[:6]}"
    powerdns.put_txt(record, [foreign])
    try:
        prepared = _order(stack, powerdns, tmp_path, [name])
        _, progress, failure = await _run(temporal_client, stack, task_queue, prepared, watched)
        assert progress.state == "valid", failure or progress.reason
        [ours] = [c.spec.key for c in progress.challenges]
        [held] = watched.after_adds
        assert (held.in_api, held.served) == (sorted([foreign, ours]), sorted([foreign, ours]))
        assert (powerdns.api_txt(record), powerdns.served_txt(record)) == ([foreign], [foreign])
    finally:
        powerdns.put_txt(record, [])


def _challenge_reasons(progress: OrderProgress) -> list[str]:
    return [c.reason for c in progress.challenges]


@pytest.mark.stack
async def test_a_wrong_api_key_is_reported_in_powerdns_words(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, powerdns: PowerDns
) -> None:
    name = f"{_label()}.{powerdns.zone}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    prepared = _order(stack, powerdns, tmp_path, [name], key=wrong)
    handle, progress, failure = await _run(temporal_client, stack, task_queue, prepared)

    assert progress.state == "errored", failure
    [reason] = _challenge_reasons(progress)
    assert reason.startswith("lexicon powerdns: "), reason
    assert "401 Unauthorized" in reason and "refused the credentials" in reason
    assert reason in progress.reason
    assert "PresentError" in [e.reason for e in progress.events]
    assert powerdns.api_txt(dns01_record_name(name)) == []
    history = HistoryText(await handle.fetch_history())
    assert history.found([text_secret("wrong key", wrong)]) == []


@pytest.mark.stack
async def test_a_zone_powerdns_does_not_hold_is_reported(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, powerdns: PowerDns
) -> None:
    # BIND9 serves example.com, so that is the zone found by SOA; PowerDNS has none of it.
    name = f"{_label()}.{stack.dns_zone}"
    prepared = _order(stack, powerdns, tmp_path, [name])
    _, progress, failure = await _run(temporal_client, stack, task_queue, prepared)

    assert progress.state == "errored", failure
    [reason] = _challenge_reasons(progress)
    assert reason.startswith("lexicon powerdns: "), reason
    assert f"zone {stack.dns_zone}. not found (404 Not Found)" in reason
    assert txt_values(stack, dns01_record_name(name)) == []


@pytest.mark.stack
async def test_an_unreachable_api_is_retried_then_reported(
    stack: StackInfo, temporal_client: Client, task_queue: str, tmp_path: Path, powerdns: PowerDns
) -> None:
    name = f"{_label()}.{powerdns.zone}"
    nowhere = f"http://127.0.0.1:{free_port()}"
    prepared = _order(
        stack, powerdns, tmp_path, [name], api_url=nowhere, timeouts=OrderTimeouts(acme_call_s=4)
    )
    handle, progress, failure = await _run(temporal_client, stack, task_queue, prepared)

    assert progress.state == "errored", failure
    [reason] = _challenge_reasons(progress)
    assert "gave up after 4s" in reason, reason
    assert "lexicon powerdns: " in reason and "provider API unreachable" in reason
    assert "Connection refused" in reason
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(attempts) > 1, "the provider's API was not retried before giving up"


@pytest.mark.stack
def test_the_zone_found_by_soa_is_used_even_under_a_private_tld(
    powerdns: PowerDns, lexicon_publisher: TxtPublisher, tmp_path: Path
) -> None:
    """lexicon's own guess would take ``internal.`` for the zone (no public suffix there)."""
    zone = f"{_label()}.internal."
    powerdns.create_zone(zone)
    try:
        target = TxtTarget(fqdn=f"_acme-challenge.www.{zone}", zone=zone, value="private-tld")
        solver = lexicon_powerdns_solver(powerdns.api_url, powerdns.api_key, tmp_path)
        spec = replace(_spec(CLOUDFLARE), dns_name=f"www.{zone}".rstrip("."), solver=solver)
        owner = CopyOwner("order/t/x", "t/x-0")
        lexicon_publisher.add_txt(spec, target, copy=owner)
        assert powerdns.api_txt(target.fqdn, zone=zone) == ["private-tld"]
        lexicon_publisher.delete_txt(spec, target, copy=owner)
        assert powerdns.api_txt(target.fqdn, zone=zone) == []
    finally:
        powerdns.delete_zone(zone)


@pytest.mark.stack
def test_a_whole_secret_presents_and_its_copy_cleans_up_after_the_namespace_is_gone(
    stack: StackInfo, powerdns: PowerDns
) -> None:
    """Every key of the user's Secret is an option; the copy in acmeflow's own namespace
    removes the value once the user's namespace (and the Secret) is gone."""
    kubectl = Kubectl(stack)
    api_client = kubernetes_api_client(stack.kubeconfig)
    secrets = KubernetesSecrets(api_client)
    with (
        temporary_namespace(kubectl, "lexicon-own") as own,
        temporary_namespace(kubectl, "lexicon-user") as user,
    ):
        kubectl.create(
            secret_manifest(
                user,
                "pdns-credentials",
                {"auth_token": powerdns.api_key, "pdns_server": powerdns.api_url},
            )
        )
        publisher = LexiconPublisher(
            SecretStore(kubernetes=secrets),
            whole_secrets=secrets,
            copies=KubernetesCredentialCopies(api_client, namespace=own),
        )
        config = Lexicon(
            provider="powerdns", options_secret=SecretRef(namespace=user, name="pdns-credentials")
        )
        name = f"{_label()}.{powerdns.zone}"
        target = TxtTarget(fqdn=dns01_record_name(name), zone=f"{powerdns.zone}.", value="ours")
        spec = replace(_spec(config), namespace=user, dns_name=name)
        owner = CopyOwner(f"order/{user}/x", f"{user}/x-0")

        publisher.add_txt(spec, target, copy=owner)
        assert powerdns.api_txt(target.fqdn) == ["ours"]
        kept = kubectl("get", "secrets", "-n", own, "-l", f"{COPY_LABEL}=true", "-o", "name")
        assert kept.stdout.split() == [f"secret/{owner.name}"]

        kubectl("delete", "secret", "pdns-credentials", "-n", user)
        publisher.delete_txt(spec, target, copy=owner)
        assert powerdns.api_txt(target.fqdn) == []
        left = kubectl("get", "secrets", "-n", own, "-l", f"{COPY_LABEL}=true", "-o", "name")
        assert left.stdout.split() == []
