"""The order in which DNS-01 steps keep, use and discard the copy of their TSIG secret.

The nameserver is a stand-in that records each update it is sent (the real one is in
tests/k8s/test_namespace_deleted.py); the user's Secrets and the copies are dicts. What
matters here is the order: the copy exists before any record is sent, clean-up signs
with the copy only when the user's Secret is gone, and the copy goes only once a delete
was accepted.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import dns.rcode
import dns.update
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from acmeflow.activities import dns01
from acmeflow.activities.acme_client import Account
from acmeflow.activities.acme_order import AcmeOrderActivities
from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.activities.dns01 import DNS_UNAVAILABLE, Rfc2136Publisher
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.errors import BAD_REQUEST
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.acme import AcmeResource
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import AccountRef, Rfc2136, SolverConfig
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import ChallengeType

TSIG = SecretRef(namespace="team-a", name="tsig", key="secret")
USERS_SECRET = base64.b64encode(b"the user's key").decode()
ROTATED = base64.b64encode(b"a rotated key").decode()
CONFIG = Rfc2136(nameserver="192.0.2.53:53", tsig_key_name="acmeflow.", tsig_secret=TSIG)
TARGET = TxtTarget(fqdn="_acme-challenge.www.example.com.", zone="example.com.", value="value")
OWNER = CopyOwner(workflow_id="order/team-a/www", challenge="team-a/www-0")


@dataclass
class Journal:
    """What happened, in order, across the nameserver and the copies."""

    entries: list[str] = field(default_factory=list)
    answer: int = dns.rcode.NOERROR
    unreachable: bool = False


@dataclass
class Answer:
    code: int

    def rcode(self) -> int:
        return self.code


class UserSecrets:
    """The user's namespace: Secrets that can vanish."""

    def __init__(self, values: dict[SecretRef, bytes]) -> None:
        self.values = values

    def read(self, ref: SecretRef) -> bytes | None:
        return self.values.get(ref)

    def create(self, ref: SecretRef, value: bytes) -> bytes:
        return self.values.setdefault(ref, value)


class Copies:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.values: dict[CopyOwner, bytes] = {}

    def keep(self, owner: CopyOwner, value: bytes, *, about: dict[str, str]) -> None:
        self.journal.entries.append(f"keep {value.decode()}")
        self.values[owner] = value

    def read(self, owner: CopyOwner) -> bytes | None:
        return self.values.get(owner)

    def discard(self, owner: CopyOwner) -> None:
        self.journal.entries.append("discard")
        self.values.pop(owner, None)


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> Journal:
    journal = Journal()

    def send(update: dns.update.UpdateMessage, *_: object, **__: object) -> Answer:
        if journal.unreachable:
            raise OSError("connection refused")
        verb = "delete" if " NONE TXT " in update.to_text() else "add"
        assert update.keyring is not None
        secret = base64.b64encode(update.keyring.secret).decode()
        journal.entries.append(f"{verb} signed with {secret}")
        return Answer(journal.answer)

    monkeypatch.setattr(dns01.dns.query, "tcp", send)
    return journal


def updater(journal: Journal, user: UserSecrets) -> tuple[Rfc2136Publisher, Copies]:
    copies = Copies(journal)
    return Rfc2136Publisher(SecretStore(kubernetes=user), copies), copies


def challenge(config: Rfc2136 = CONFIG) -> ChallengeSpec:
    return ChallengeSpec(
        name="www-0",
        namespace="team-a",
        order_name="www",
        dns_name="www.example.com",
        wildcard=False,
        type=ChallengeType.DNS01,
        token="token",
        key="value",
        url="https://ca.test/chall/1",
        authorization_url="https://ca.test/authz/1",
        solver=SolverConfig(dns01=config),
    )


def test_the_copy_is_kept_before_the_record_is_sent(journal: Journal) -> None:
    user = UserSecrets({TSIG: USERS_SECRET.encode()})
    steps, copies = updater(journal, user)
    journal.unreachable = True  # the worker could die right here
    with pytest.raises(ApplicationError) as caught:
        steps.add_txt(challenge(), TARGET, copy=OWNER)
    assert caught.value.type == DNS_UNAVAILABLE
    assert journal.entries == [f"keep {USERS_SECRET}"]
    assert copies.values == {OWNER: USERS_SECRET.encode()}


def test_a_present_the_nameserver_refuses_leaves_no_copy(journal: Journal) -> None:
    # Nothing was added, and the copy would hold a key the nameserver refuses: a
    # misconfigured issuer must not leave one Secret behind per attempt.
    steps, copies = updater(journal, UserSecrets({TSIG: USERS_SECRET.encode()}))
    journal.answer = dns.rcode.REFUSED
    with pytest.raises(ApplicationError) as caught:
        steps.add_txt(challenge(), TARGET, copy=OWNER)
    assert caught.value.type == BAD_REQUEST
    assert journal.entries == [
        f"keep {USERS_SECRET}",
        f"add signed with {USERS_SECRET}",
        "discard",
    ]
    assert copies.values == {}


def test_clean_up_after_the_namespace_is_gone_signs_with_the_copy_then_discards_it(
    journal: Journal,
) -> None:
    user = UserSecrets({TSIG: USERS_SECRET.encode()})
    steps, copies = updater(journal, user)
    steps.add_txt(challenge(), TARGET, copy=OWNER)
    user.values.clear()
    steps.delete_txt(challenge(), TARGET, copy=OWNER)
    assert journal.entries == [
        f"keep {USERS_SECRET}",
        f"add signed with {USERS_SECRET}",
        f"delete signed with {USERS_SECRET}",
        "discard",
    ]
    assert copies.values == {}


def test_clean_up_prefers_the_users_secret_while_it_exists(journal: Journal) -> None:
    user = UserSecrets({TSIG: USERS_SECRET.encode()})
    steps, copies = updater(journal, user)
    steps.add_txt(challenge(), TARGET, copy=OWNER)
    user.values[TSIG] = ROTATED.encode()
    steps.delete_txt(challenge(), TARGET, copy=OWNER)
    assert journal.entries[-2:] == [f"delete signed with {ROTATED}", "discard"]
    assert copies.values == {}


@pytest.mark.parametrize("failure", ["refused", "unreachable"])
def test_a_delete_that_did_not_happen_keeps_the_copy(journal: Journal, failure: str) -> None:
    user = UserSecrets({TSIG: USERS_SECRET.encode()})
    steps, copies = updater(journal, user)
    steps.add_txt(challenge(), TARGET, copy=OWNER)
    user.values.clear()
    journal.answer = dns.rcode.REFUSED
    journal.unreachable = failure == "unreachable"
    with pytest.raises(ApplicationError):
        steps.delete_txt(challenge(), TARGET, copy=OWNER)
    assert "discard" not in journal.entries
    assert copies.values == {OWNER: USERS_SECRET.encode()}


def test_a_clean_up_retried_after_it_succeeded_finds_nothing_left_to_do(
    journal: Journal,
) -> None:
    # No copy means no record: presenting keeps the copy before it sends anything, and
    # clean-up discards it only after the delete went through.
    user = UserSecrets({TSIG: USERS_SECRET.encode()})
    steps, _ = updater(journal, user)
    steps.add_txt(challenge(), TARGET, copy=OWNER)
    user.values.clear()
    steps.delete_txt(challenge(), TARGET, copy=OWNER)
    steps.delete_txt(challenge(), TARGET, copy=OWNER)  # the worker died before reporting
    assert journal.entries == [
        f"keep {USERS_SECRET}",
        f"add signed with {USERS_SECRET}",
        f"delete signed with {USERS_SECRET}",
        "discard",
    ]


def test_a_present_that_never_found_its_secret_leaves_nothing_to_clean_up(
    journal: Journal,
) -> None:
    steps, _ = updater(journal, UserSecrets({}))
    with pytest.raises(ApplicationError) as caught:
        steps.add_txt(challenge(), TARGET, copy=OWNER)
    assert caught.value.message == 'TSIG secret: key "secret" of Secret team-a/tsig does not exist'
    steps.delete_txt(challenge(), TARGET, copy=OWNER)
    assert journal.entries == []


def test_a_worker_that_keeps_no_copies_says_the_secret_is_missing(journal: Journal) -> None:
    steps = Rfc2136Publisher(SecretStore(kubernetes=UserSecrets({})))
    with pytest.raises(ApplicationError) as caught:
        steps.delete_txt(challenge(), TARGET, copy=OWNER)
    assert caught.value.type == BAD_REQUEST
    assert caught.value.message == 'TSIG secret: key "secret" of Secret team-a/tsig does not exist'
    assert journal.entries == []


def test_a_secret_kept_in_a_file_on_the_worker_is_not_copied(
    journal: Journal, tmp_path: Path
) -> None:
    path = tmp_path / "tsig"
    path.write_text(USERS_SECRET)
    config = Rfc2136(
        nameserver=CONFIG.nameserver,
        tsig_key_name=CONFIG.tsig_key_name,
        tsig_secret=SecretRef(path=str(path)),
    )
    steps, copies = updater(journal, UserSecrets({}))
    steps.add_txt(challenge(config), TARGET, copy=OWNER)
    steps.delete_txt(challenge(config), TARGET, copy=OWNER)
    assert journal.entries == [
        f"add signed with {USERS_SECRET}",
        f"delete signed with {USERS_SECRET}",
    ]
    assert copies.values == {}


def test_each_challenge_of_each_workflow_has_its_own_copy() -> None:
    apex = CopyOwner("order/team-a/www", "team-a/www-0")
    wildcard = CopyOwner("order/team-a/www", "team-a/www-1")
    elsewhere = CopyOwner("order/team-b/www", "team-a/www-0")
    names = {apex.name, wildcard.name, elsewhere.name}
    assert len(names) == 3
    assert apex.name == CopyOwner("order/team-a/www", "team-a/www-0").name
    assert all(len(name) <= 63 and name.startswith("acmeflow-clean-up-") for name in names)


class NoAccountExpected:
    """Stands in for ``AcmeClients``; any ACME call would be a failing one."""

    def account(self, ref: AccountRef) -> Account:
        raise AssertionError(f"no ACME call expected, but one was made for {ref.account_uri}")


def test_an_authorization_whose_account_key_is_gone_is_left_to_expire() -> None:
    account = AccountRef(
        server="https://ca.test/dir",
        account_key=SecretRef(namespace="team-a", name="pebble-account", key="tls.key"),
        account_uri="https://ca.test/acct/1",
    )
    steps = AcmeOrderActivities(NoAccountExpected(), SecretStore(kubernetes=UserSecrets({})))  # type: ignore[arg-type]
    resource = AcmeResource(account=account, url="https://ca.test/authz/1")
    assert ActivityEnvironment().run(steps.deactivate_authorization, resource) is None


def test_a_secret_that_is_not_base64_leaves_no_copy(journal: Journal) -> None:
    steps, copies = updater(journal, UserSecrets({TSIG: b"not base64!"}))
    with pytest.raises(ApplicationError) as caught:
        steps.add_txt(challenge(), TARGET, copy=OWNER)
    assert caught.value.type == BAD_REQUEST
    assert "is not base64" in caught.value.message
    assert journal.entries == ["keep not base64!", "discard"]
    assert copies.values == {}
