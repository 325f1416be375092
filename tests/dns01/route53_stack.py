"""Route53 on the stack: moto's hosted zone ``example.org.`` and its mirror in BIND9.

moto answers Route53's API but resolves no name, while Pebble and the self-check resolve
through the stack's BIND9. So a session thread reads moto's TXT record sets, a few times
a second, and applies each difference to BIND9's ``example.org`` by TSIG-signed update
with the stack's key: what acmeflow writes to "Route53" becomes what the CA sees, a
moment later, as Route53's own servers would serve it after INSYNC.

The mirror also remembers every state it saw of each name, so a test can tell that two
values were in Route53 at the same time (a wildcard and its apex), not only one by one.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import dns.name
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest
from botocore.exceptions import ClientError

from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.bind import ROUTE53_MIRROR_ZONE
from acmeflow.devstack.stack import StackInfo
from acmeflow.plumbing.addresses import split_host_port

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client

__all__ = ["route53_mirror", "route53_zone"]

ZONE = f"{ROUTE53_MIRROR_ZONE}."
MOTO_KEY_ID = "AKIAMOTOMIRROR000000"
MOTO_SECRET = "the-stack-moto-accepts-any-secret-key"
"""The stack's moto checks no credentials; these only sign the test's own calls."""
POLL_S = 0.1


def route53_client(endpoint_url: str, *, key_id: str = MOTO_KEY_ID) -> Route53Client:
    return boto3.client(
        "route53",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=MOTO_SECRET,
    )


def hosted_zone_id(client: Route53Client, zone: str = ZONE) -> str:
    """The hosted zone named ``zone``, created when there is none."""
    for hosted in client.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]:
        if hosted["Name"] == zone:
            return hosted["Id"].removeprefix("/hostedzone/")
    created = client.create_hosted_zone(Name=zone, CallerReference=uuid.uuid4().hex)
    return created["HostedZone"]["Id"].removeprefix("/hostedzone/")


def txt_sets(client: Route53Client, zone_id: str) -> dict[str, tuple[str, ...]]:
    """Every TXT record set of the zone: name -> its values as Route53 holds them (quoted)."""
    found: dict[str, tuple[str, ...]] = {}
    paginator = client.get_paginator("list_resource_record_sets")
    for page in paginator.paginate(HostedZoneId=zone_id):
        for record_set in page["ResourceRecordSets"]:
            if record_set["Type"] == "TXT":
                values = tuple(r["Value"] for r in record_set.get("ResourceRecords", []))
                found[record_set["Name"].lower()] = values
    return found


def plant_txt(client: Route53Client, zone_id: str, name: str, values: list[str]) -> None:
    """Put a record set there as someone else would (UPSERT, values given unquoted)."""
    client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "TXT",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": f'"{v}"'} for v in values],
                    },
                }
            ]
        },
    )


def unquoted(values: tuple[str, ...] | list[str]) -> list[str]:
    return sorted(value.strip('"') for value in values)


@dataclass(frozen=True)
class Route53Zone:
    """The stack's moto and the hosted zone in it that BIND9 mirrors."""

    endpoint_url: str
    zone_id: str

    def client(self) -> Route53Client:
        return route53_client(self.endpoint_url)

    def txt(self, name: str) -> list[str]:
        """The values Route53 holds at ``name`` (absolute), unquoted and sorted."""
        return unquoted(txt_sets(self.client(), self.zone_id).get(name.lower(), ()))


@dataclass
class Route53Mirror:
    """Applies moto's TXT record sets to BIND9's ``example.org``; remembers what it saw."""

    zone: Route53Zone
    stack: StackInfo
    seen: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _applied: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def states(self, name: str) -> list[list[str]]:
        """Each distinct state of ``name`` the mirror saw in Route53, in order, unquoted."""
        with self._lock:
            return [unquoted(state) for state in self.seen.get(name.lower(), [])]

    def run(self) -> None:
        client = self.zone.client()
        while not self._stop.wait(POLL_S):
            try:
                self._sync(txt_sets(client, self.zone.zone_id))
            except Exception as error:  # noqa: BLE001 - the thread must outlive a bad poll
                self.errors.append(f"{type(error).__name__}: {error}")

    def stop(self) -> None:
        self._stop.set()

    def _sync(self, current: dict[str, tuple[str, ...]]) -> None:
        for name in sorted(set(current) | set(self._applied)):
            values = current.get(name, ())
            if values == self._applied.get(name, ()):
                continue
            self._update(name, values)
            self._applied[name] = values
            with self._lock:
                self.seen.setdefault(name, []).append(values)

    def _update(self, name: str, values: tuple[str, ...]) -> None:
        """Replace ``name``'s TXT values in BIND9 with ``values`` in one signed update."""
        keyring = dns.tsigkeyring.from_text(
            {self.stack.tsig_key_name: self.stack.tsig_secret_path.read_text().strip()}
        )
        update = dns.update.UpdateMessage(
            ZONE,
            keyring=keyring,
            keyname=dns.name.from_text(self.stack.tsig_key_name),
            keyalgorithm=self.stack.tsig_algorithm,
        )
        update.delete(name, "TXT")
        for value in values:
            update.add(name, 60, "TXT", value)
        host, port = split_host_port(self.stack.dns_address, 53)
        answer = dns.query.tcp(update, host, port=port, timeout=5)
        if answer.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"BIND9 refused the mirror's update of {name}: {answer.rcode()}")


@pytest.fixture(scope="session")
def route53_zone(stack: StackInfo) -> Route53Zone:
    if not stack.moto_url:
        pytest.fail("the stack runs no moto (StackInfo.moto_url is empty)", pytrace=False)
    return Route53Zone(stack.moto_url, hosted_zone_id(route53_client(stack.moto_url)))


@pytest.fixture(scope="session")
def route53_mirror(stack: StackInfo, route53_zone: Route53Zone) -> Iterator[Route53Mirror]:
    mirror = Route53Mirror(route53_zone, stack)
    thread = threading.Thread(target=mirror.run, name="route53-mirror", daemon=True)
    thread.start()
    yield mirror
    mirror.stop()
    thread.join(timeout=5)


@dataclass
class ClusterSecrets:
    """A user's namespace as the publisher sees it: Secrets that can be deleted."""

    values: dict[SecretRef, bytes] = field(default_factory=dict)

    def read(self, ref: SecretRef) -> bytes | None:
        return self.values.get(ref)

    def create(self, ref: SecretRef, value: bytes) -> bytes:
        return self.values.setdefault(ref, value)


@dataclass
class KeptCopies:
    """acmeflow's namespace: the clean-up copies, and what each was annotated with."""

    values: dict[CopyOwner, bytes] = field(default_factory=dict)
    about: dict[CopyOwner, dict[str, str]] = field(default_factory=dict)

    def keep(self, owner: CopyOwner, value: bytes, *, about: dict[str, str]) -> None:
        self.values[owner] = value
        self.about[owner] = about

    def read(self, owner: CopyOwner) -> bytes | None:
        return self.values.get(owner)

    def discard(self, owner: CopyOwner) -> None:
        self.values.pop(owner, None)


class StrictRoute53:
    """Route53's documented rules for one hosted zone, where moto is lax: a DELETE must name
    the set exactly as it is, a CREATE fails when the set exists, and a batch applies all
    or nothing. Each read pauses, so writers on other "workers" come between read and write.
    """

    def __init__(
        self, *, zones: tuple[tuple[str, str, bool], ...] = (), pause_s: float = 0.01
    ) -> None:
        self.zones = zones
        """The account's hosted zones: (id, name, private)."""
        self.sets: dict[str, dict[str, Any]] = {}
        self.written_to: list[str] = []
        self.changes: list[str] = []
        self.asked: list[str] = []
        self.pending_answers = 0
        self.refused = 0
        self._pause_s = pause_s
        self._lock = threading.Lock()

    def list_hosted_zones_by_name(self, **request: Any) -> dict[str, Any]:
        """As AWS lists them: ordered by reversed labels, from ``DNSName`` on (moto gives
        only the exact name)."""

        def order(name: str) -> list[str]:
            return list(reversed(name.rstrip(".").split(".")))

        start = order(request["DNSName"])
        listed = sorted((z for z in self.zones if order(z[1]) >= start), key=lambda z: order(z[1]))
        return {
            "HostedZones": [
                {"Id": f"/hostedzone/{zone_id}", "Name": name, "Config": {"PrivateZone": private}}
                for zone_id, name, private in listed
            ]
        }

    def list_resource_record_sets(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            found = self.sets.get(request["StartRecordName"])
            listed = [copy.deepcopy(found)] if found else []
        time.sleep(self._pause_s)
        return {"ResourceRecordSets": listed}

    def change_resource_record_sets(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            self.written_to.append(request["HostedZoneId"])
            staged = copy.deepcopy(self.sets)
            for change in request["ChangeBatch"]["Changes"]:
                record_set = change["ResourceRecordSet"]
                name, action = record_set["Name"], change["Action"]
                if action == "DELETE" and staged.get(name) != record_set:
                    self._refuse(
                        f"Tried to delete resource record set [name='{name}'] but the "
                        "values provided do not match the current values"
                    )
                if action == "CREATE" and name in staged:
                    self._refuse(
                        f"Tried to create resource record set [name='{name}'] but it already exists"
                    )
                if action == "DELETE":
                    del staged[name]
                else:
                    staged[name] = copy.deepcopy(record_set)
            self.sets = staged
            self.changes.append(f"/change/C{uuid.uuid4().hex[:12]}")
            return {"ChangeInfo": {"Id": self.changes[-1], "Status": "PENDING"}}

    def get_change(self, **request: Any) -> dict[str, Any]:
        """PENDING for the first ``pending_answers`` questions, then INSYNC."""
        self.asked.append(request["Id"])
        status = "PENDING" if len(self.asked) <= self.pending_answers else "INSYNC"
        return {"ChangeInfo": {"Id": request["Id"], "Status": status}}

    def _refuse(self, message: str) -> None:
        self.refused += 1
        error = {"Error": {"Code": "InvalidChangeBatch", "Message": message}}
        raise ClientError(error, "ChangeResourceRecordSets")  # type: ignore[arg-type]
