"""DNS-01 through AWS Route53 (or a Route53-compatible API), with boto3.

Credentials follow cert-manager's ``route53`` solver: an access key id (in the clear or
from a Secret) and a secret access key from a Secret, read at the moment of each call;
``role`` is assumed through STS with them; the worker's ambient credentials (IRSA, an
instance profile, ``AWS_*`` variables) only where the Issuer allows them
(``Route53.ambient``, a ClusterIssuer's privilege as in cert-manager).

A record set holds every value of one name, and the wildcard and apex challenges write
the same name at once. An UPSERT after a read would let the slower writer drop the other
value, so each write is a compare-and-swap: one change batch deletes the exact set that
was read and creates the new one; Route53 refuses the batch when the set changed in
between, and the write is done again from a fresh read. Within a worker the writers of
one name also take turns: moto, the emulator the tests use, accepts a stale CREATE
silently and refuses some fresh ones (see ``_write_once``).

Presenting keeps a copy of the keys before the record goes out when they come from a
Kubernetes Secret (``acmeflow.activities.credential_copies``), so the value can still be
removed after the user's namespace is gone; removing the value discards the copy.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from acmeflow.activities.credential_copies import CopyOwner, CredentialCopies
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.errors import bad_request, still_waiting
from acmeflow.activities.route53_failures import (
    MAYBE_A_RACE,
    ROUTE53_UNAVAILABLE,
    aws_call,
    error_code,
)
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.errors import BAD_REQUEST
from acmeflow.contracts.issuer import Route53
from acmeflow.contracts.secrets import SecretRef

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_route53.type_defs import ResourceRecordSetOutputTypeDef

TXT_TTL: Final = 60
DEFAULT_REGION: Final = "us-east-1"
"""STS needs a region; Route53 itself is global."""
INSYNC_WAIT_S: Final = 5.0
"""How long one attempt waits for INSYNC before it hands the wait to Temporal's retry."""
INSYNC_POLL_S: Final = 1.0
WRITE_TRIES: Final = 3
ROLE_SESSION_NAME: Final = "acmeflow-dns01"
_CLIENT_CONFIG: Final = Config(
    connect_timeout=2,
    read_timeout=4,
    retries={"total_max_attempts": 2, "mode": "standard"},
)
"""An attempt of a solver step has 10 s; Temporal, not boto, retries beyond that."""
_LOCK_STRIPES: Final = 64


@dataclass(frozen=True)
class AwsKeys:
    """An access key pair, in memory only; a clean-up copy stores it as one JSON document."""

    access_key_id: str
    secret_access_key: str

    def to_copy(self) -> bytes:
        return json.dumps(
            {"accessKeyID": self.access_key_id, "secretAccessKey": self.secret_access_key}
        ).encode()

    @classmethod
    def from_copy(cls, stored: bytes) -> AwsKeys:
        document = json.loads(stored)
        return cls(document["accessKeyID"], document["secretAccessKey"])

    def __repr__(self) -> str:
        return f"AwsKeys(access_key_id={self.access_key_id!r}, secret_access_key=<hidden>)"


def _quoted(value: str) -> str:
    """A TXT value as Route53 holds it: one quoted string (an ACME value is 43 characters)."""
    return f'"{value}"'


def _same_name(listed: str, fqdn: str) -> bool:
    return listed.lower().rstrip(".") == fqdn.lower().rstrip(".")


def _values(record_set: ResourceRecordSetOutputTypeDef | None) -> list[str]:
    if record_set is None:
        return []
    return [record["Value"] for record in record_set.get("ResourceRecords", [])]


class Route53Publisher:
    """A ``TxtPublisher`` on Route53; secrets are read per call and never kept.

    ``endpoint_url`` points boto3 (Route53 and STS) at a compatible API or an emulator.
    """

    def __init__(
        self,
        secrets: SecretStore,
        copies: CredentialCopies | None = None,
        *,
        endpoint_url: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._secrets = secrets
        self._copies = copies
        self._endpoint_url = endpoint_url or None
        self._sleep = sleep
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._pending_lock = threading.Lock()
        self._pending: dict[tuple[str, str, str, bool], str] = {}
        """Changes this worker made and saw not yet INSYNC, so a retry waits for the same one."""

    # -- the two calls of a TxtPublisher --------------------------------------------------

    def add_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        """Add the value beside any others, the keys kept as ``copy``'s first."""
        config = _config(spec)
        copies = self._copied(config)
        keys = self._keys(config)
        if copies is not None and keys is not None:
            copies.keep(copy, keys.to_copy(), about=self._about(config, target))
        try:
            self._write(config, keys, target, adding=True, challenge=copy.challenge)
        except ApplicationError as error:
            if copies is not None and error.type == BAD_REQUEST:
                # Refused: nothing was added, and the copy is of no use.
                copies.discard(copy)
            raise

    def delete_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        """Remove only this value, with the user's keys or else ``copy``'s, then discard
        the copy. Without keys and without a copy nothing of ours was ever added."""
        config = _config(spec)
        copies = self._copied(config)
        keys = self._stored_keys(config)
        if keys is None and copies is not None:
            stored = copies.read(copy)
            if stored is None:
                activity.logger.info(
                    "route53 credentials of %s are gone and no copy is kept: no record of it "
                    "to delete",
                    copy.challenge,
                )
                return
            keys = AwsKeys.from_copy(stored)
        elif keys is None:
            keys = self._keys(config)  # says which key is missing, or allows ambient ones
        self._write(config, keys, target, adding=False, challenge=copy.challenge)
        if copies is not None:
            copies.discard(copy)

    # -- credentials ------------------------------------------------------------------

    @staticmethod
    def _refs(config: Route53) -> list[SecretRef]:
        return [r for r in (config.access_key_id_secret, config.secret_access_key) if r]

    def _copied(self, config: Route53) -> CredentialCopies | None:
        """Only a key from a Kubernetes Secret can vanish with its namespace."""
        kubernetes = any(ref.in_kubernetes for ref in self._refs(config))
        return self._copies if kubernetes else None

    @staticmethod
    def _about(config: Route53, target: TxtTarget) -> dict[str, str]:
        sources = ", ".join(ref.describe() for ref in Route53Publisher._refs(config))
        return {"provider": "route53", "record": target.fqdn, "source": sources}

    def _keys(self, config: Route53) -> AwsKeys | None:
        """The Issuer's keys, None for ambient ones; a refusal when neither is allowed."""
        named_id = bool(config.access_key_id or config.access_key_id_secret)
        if config.secret_access_key is None:
            if named_id:
                raise bad_request(
                    "route53: an access key id is set but secretAccessKeySecretRef is not"
                )
            if not config.ambient:
                raise bad_request(
                    "route53: no credentials: set accessKeyID (or accessKeyIDSecretRef) and "
                    "secretAccessKeySecretRef; ambient credentials (IRSA, instance profile) "
                    "are allowed for ClusterIssuers only"
                )
            return None
        if not named_id:
            raise bad_request(
                "route53: secretAccessKeySecretRef is set but neither accessKeyID nor "
                "accessKeyIDSecretRef is"
            )
        key_id = config.access_key_id
        if config.access_key_id_secret is not None:
            key_id = self._text(
                self._secrets.require(config.access_key_id_secret, "route53 access key id")
            )
        secret = self._secrets.require(config.secret_access_key, "route53 secret access key")
        return AwsKeys(key_id, self._text(secret))

    def _stored_keys(self, config: Route53) -> AwsKeys | None:
        """The Issuer's keys if every Secret holding them still exists; else None."""
        if config.secret_access_key is None:
            return None
        secret = self._secrets.read(config.secret_access_key)
        key_id: bytes | None = config.access_key_id.encode()
        if config.access_key_id_secret is not None:
            key_id = self._secrets.read(config.access_key_id_secret)
        if secret is None or key_id is None:
            return None
        return AwsKeys(self._text(key_id), self._text(secret))

    @staticmethod
    def _text(value: bytes) -> str:
        return value.decode().strip()

    def _client(self, config: Route53, keys: AwsKeys | None) -> Route53Client:
        region = config.region or DEFAULT_REGION
        if keys is not None:
            session = boto3.Session(
                aws_access_key_id=keys.access_key_id,
                aws_secret_access_key=keys.secret_access_key,
                region_name=region,
            )
        else:
            session = boto3.Session(region_name=config.region or None)
            if session.get_credentials() is None:
                raise bad_request(
                    "route53: ambient credentials are allowed but the worker has none "
                    "(no IRSA token, instance profile or AWS_* environment)"
                )
            region = session.region_name or DEFAULT_REGION
        if config.role:
            with aws_call(f"assuming role {config.role}"):
                sts = session.client(
                    "sts",
                    region_name=region,
                    endpoint_url=self._endpoint_url,
                    config=_CLIENT_CONFIG,
                )
                assumed = sts.assume_role(RoleArn=config.role, RoleSessionName=ROLE_SESSION_NAME)
            credentials = assumed["Credentials"]
            session = boto3.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=region,
            )
        return session.client(
            "route53", region_name=region, endpoint_url=self._endpoint_url, config=_CLIENT_CONFIG
        )

    # -- zone, record set, change -------------------------------------------------------

    def _write(
        self,
        config: Route53,
        keys: AwsKeys | None,
        target: TxtTarget,
        *,
        adding: bool,
        challenge: str,
    ) -> None:
        client = self._client(config, keys)
        zone_id = self._zone_id(client, config, target.zone)
        key = (zone_id, target.fqdn.lower(), target.value, adding)
        action = "adding" if adding else "deleting"
        what = f"{action} TXT {target.fqdn} in hosted zone {zone_id}"
        with self._lock(zone_id, target.fqdn), aws_call(what):
            for _ in range(WRITE_TRIES):
                try:
                    change_id = self._write_once(
                        client, zone_id, target, adding=adding, comment=challenge
                    )
                except _Raced:
                    continue
                if change_id is not None:
                    with self._pending_lock:
                        self._pending[key] = change_id
                break
            else:
                raise ApplicationError(
                    f"route53: {what}: the record set changed under {WRITE_TRIES} writes in a row",
                    type=ROUTE53_UNAVAILABLE,
                )
        with aws_call(what):  # outside the lock: the other value of the name need not wait
            self._await_insync(client, key, what)

    def _lock(self, zone_id: str, fqdn: str) -> threading.Lock:
        return self._locks[zlib.crc32(f"{zone_id} {fqdn.lower()}".encode()) % _LOCK_STRIPES]

    def _zone_id(self, client: Route53Client, config: Route53, zone: str) -> str:
        """``hostedZoneID`` if given; else the one hosted zone named exactly ``zone``
        (public before private: the CA asks the public one)."""
        if config.hosted_zone_id:
            return config.hosted_zone_id.removeprefix("/hostedzone/")
        with aws_call(f"finding the hosted zone for {zone}"):
            listed = client.list_hosted_zones_by_name(DNSName=zone)
        named = [z for z in listed["HostedZones"] if _same_name(z["Name"], zone)]
        public = [z for z in named if not z.get("Config", {}).get("PrivateZone", False)]
        chosen = public if public else named
        if not chosen:
            raise bad_request(
                f"route53: no hosted zone named {zone} (the zone found by SOA) is visible to "
                "these credentials; set hostedZoneID or check the account"
            )
        if len(chosen) > 1:
            ids = ", ".join(z["Id"].removeprefix("/hostedzone/") for z in chosen)
            raise bad_request(
                f"route53: {len(chosen)} hosted zones are named {zone} ({ids}); "
                "set hostedZoneID to choose one"
            )
        return chosen[0]["Id"].removeprefix("/hostedzone/")

    @staticmethod
    def _txt_set(
        client: Route53Client, zone_id: str, fqdn: str
    ) -> ResourceRecordSetOutputTypeDef | None:
        page = client.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=fqdn, StartRecordType="TXT", MaxItems="1"
        )
        for record_set in page["ResourceRecordSets"]:
            simple = "SetIdentifier" not in record_set
            if _same_name(record_set["Name"], fqdn) and record_set["Type"] == "TXT" and simple:
                return record_set
        return None

    def _write_once(
        self, client: Route53Client, zone_id: str, target: TxtTarget, *, adding: bool, comment: str
    ) -> str | None:
        """Read the set, swap it for one with (or without) our value; the change's id, None
        when there was nothing to change. ``_Raced`` when another writer came between."""
        current = self._txt_set(client, zone_id, target.fqdn)
        values = _values(current)
        ours = _quoted(target.value)
        if adding:
            wanted = values if ours in values else [*values, ours]
        else:
            wanted = [v for v in values if v != ours]
        if wanted == values:
            return None
        ttl = current.get("TTL", TXT_TTL) if current is not None else TXT_TTL
        wanted_set = {
            "Name": target.fqdn,
            "Type": "TXT",
            "TTL": ttl,
            "ResourceRecords": [{"Value": value} for value in wanted],
        }
        swap: list[Any] = [{"Action": "DELETE", "ResourceRecordSet": current}] if current else []
        swap += [{"Action": "CREATE", "ResourceRecordSet": wanted_set}] if wanted else []
        try:
            return self._change(client, zone_id, swap, comment)
        except ClientError as error:
            if error_code(error) not in MAYBE_A_RACE:
                raise
            if current != self._txt_set(client, zone_id, target.fqdn):
                raise _Raced() from error
            if not (current and wanted):
                raise
            # Nothing changed, yet the swap was refused: moto refuses a CREATE that repeats
            # an earlier one even after a DELETE in the same batch. An UPSERT under this
            # worker's lock does what the swap would; AWS refuses it too if the swap was
            # refused for a reason of its own.
            upsert = [{"Action": "UPSERT", "ResourceRecordSet": wanted_set}]
            return self._change(client, zone_id, upsert, comment)

    @staticmethod
    def _change(client: Route53Client, zone_id: str, changes: list[Any], comment: str) -> str:
        answer = client.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={"Comment": f"acmeflow DNS-01 {comment}"[:256], "Changes": changes},
        )
        return answer["ChangeInfo"]["Id"]

    def _await_insync(
        self, client: Route53Client, key: tuple[str, str, str, bool], what: str
    ) -> None:
        """Wait briefly for this worker's change to reach every Route53 server; a longer
        wait is Temporal's retry (``StillWaiting``), which waits for the same change."""
        with self._pending_lock:
            change_id = self._pending.get(key)
        if change_id is None:
            return
        deadline = time.monotonic() + INSYNC_WAIT_S
        while True:
            status = client.get_change(Id=change_id)["ChangeInfo"]["Status"]
            if status == "INSYNC":
                with self._pending_lock:
                    self._pending.pop(key, None)
                return
            if time.monotonic() >= deadline:
                raise still_waiting(f"route53: {what}: change {change_id} is {status}, not INSYNC")
            self._sleep(INSYNC_POLL_S)


class _Raced(Exception):
    """The record set changed between our read and our write: read again."""


def _config(spec: ChallengeSpec) -> Route53:
    if spec.solver.route53 is None:
        raise bad_request(f"challenge {spec.name} has no route53 solver")
    return spec.solver.route53
