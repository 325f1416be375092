"""DNS-01 through dns-lexicon: one publisher for the ~100 DNS providers lexicon drives.

A ``Lexicon`` solver names a lexicon provider and its options: clear ones in the spec
(``options``), one Secret key per option (``secret_options``), or a whole Secret whose
every key is an option (``options_secret``). They are read at the moment of each call and
handed to ``lexicon.client.Client`` through a ``ConfigResolver`` built from a dict only,
so nothing of the worker's environment (``LEXICON_*`` variables) reaches a user's solver.
Options that would make a provider read the worker's own files, sockets or credentials are
refused, and keys lexicon would read from a file are passed inline (``provider_options``).

The zone is the one found by SOA (or ``Lexicon.zone``), pinned over the Client's own guess:
lexicon guesses from the public suffix list, which gets names under private TLDs wrong.
A wildcard and its apex write one name with two values, and several providers (PowerDNS
among them) replace the whole record set from what they read, so writers of one name take
turns within a worker, and each call lists the name first: adding a value that is there,
or deleting one that is gone, sends nothing.

When a value comes from a Kubernetes Secret, presenting keeps a copy of the secret
options (one JSON document) before the record goes out, and clean-up falls back to it
once the user's Secret is gone (``acmeflow.activities.credential_copies``).

Failures are told in the provider's words, ``lexicon <provider>: <what it said>``, with
every secret value blanked out: refused credentials, a zone the provider does not hold
and any other refusal are final; an API out of reach, throttling and 5xx are retried.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import requests
from lexicon.client import Client
from lexicon.config import ConfigResolver, DictConfigSource
from lexicon.exceptions import AuthenticationError, LexiconError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from acmeflow.activities.credential_copies import CopyOwner, CredentialCopies
from acmeflow.activities.dns01_publishers import TxtTarget
from acmeflow.activities.errors import bad_request
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.errors import BAD_REQUEST
from acmeflow.contracts.issuer import Lexicon
from acmeflow.contracts.secrets import SecretRef

LEXICON_UNAVAILABLE: Final = "DnsProviderUnavailable"
"""Retryable: the provider's API was out of reach, throttled us or failed (5xx)."""
TXT_TTL: Final = 60
RETRIED_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
SAID_CHARS: Final = 300
"""How much of a provider's answer a reason quotes."""
_TURNS: Final = tuple(threading.Lock() for _ in range(64))
"""Writers of one name take turns; a fixed set of locks, so the set never grows."""


class RecordOperations(Protocol):
    """What ``Client`` hands out inside its ``with`` block (lexicon's provider calls)."""

    def list_records(
        self, rtype: str | None = None, name: str | None = None, content: str | None = None
    ) -> list[dict[str, Any]]: ...

    def create_record(self, rtype: str, name: str, content: str) -> bool: ...

    def delete_record(
        self,
        identifier: str | None = None,
        rtype: str | None = None,
        name: str | None = None,
        content: str | None = None,
    ) -> bool: ...


class WholeSecrets(Protocol):
    def read_all(self, ref: SecretRef) -> dict[str, bytes] | None:
        """Every key of the Secret ``ref`` names, or None when the Secret does not exist."""


@dataclass(frozen=True)
class ResolvedOptions:
    """A solver's lexicon options with their values, the secret ones kept apart."""

    clear: Mapping[str, str]
    secret: Mapping[str, str]

    @property
    def merged(self) -> dict[str, str]:
        return {**self.clear, **self.secret}

    def blanked(self, text: str) -> str:
        """``text`` with every secret value (and its URL-encoded form) blanked out."""
        for value in sorted(self.secret.values(), key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, "***").replace(urllib.parse.quote(value), "***")
        return text


_INLINE_KEYS: Final = {
    ("googleclouddns", "auth_service_account_info"): "{",
    ("transip", "auth_api_key"): "-----BEGIN",
}
"""Options lexicon reads as a path on the worker unless ``base64::``-prefixed: the key itself
(a service account's JSON, a PEM key, as cert-manager's Secrets hold them) is passed inline."""
_URL_OPTIONS: Final = {("powerdns", "pdns_server")}
"""Options lexicon also takes as a local socket path; only a URL is accepted."""
_OWN_CREDENTIALS: Final = {
    "route53": (("auth_access_key", "auth_username"), ("auth_access_secret", "auth_token")),
    "valuedomain": (("auth_token",),),
}
"""Providers that fall back on the worker's own credentials (its AWS chain, its environment)
when these options are missing: one option of each group must be given."""
_REFUSED: Final = {
    "oci": "it reads its credentials from files on the worker (~/.oci/config)",
    "localzone": "it edits zone files on the worker",
}


def provider_options(provider: str, options: Mapping[str, str]) -> dict[str, str]:
    """``options`` as lexicon gets them: nothing may make the provider read the worker's own
    files, sockets or credentials, since the options come from a user's Secret."""
    if provider in _REFUSED:
        raise bad_request(f"lexicon {provider} is not available here: {_REFUSED[provider]}")
    for group in _OWN_CREDENTIALS.get(provider, ()):
        if not any(options.get(option) for option in group):
            raise bad_request(
                f"lexicon {provider}: set {' or '.join(group)}; without it the provider "
                "would use the worker's own credentials"
            )
    passed = dict(options)
    for option, value in options.items():
        marker = _INLINE_KEYS.get((provider, option))
        if marker is not None and not value.startswith("base64::"):
            if not value.lstrip().startswith(marker):
                raise bad_request(
                    f"lexicon {provider}: option {option} must hold the key itself, "
                    "not a path on the worker"
                )
            passed[option] = "base64::" + base64.b64encode(value.encode()).decode()
        if (provider, option) in _URL_OPTIONS and not value.startswith(("http://", "https://")):
            raise bad_request(f"lexicon {provider}: option {option} must be an http(s) URL")
    return passed


def speaker(config: Lexicon) -> str:
    """How reasons name the provider: ``lexicon powerdns``, ``cloudflare (lexicon cloudflare)``."""
    own = f"lexicon {config.provider}"
    shown = config.shown_as
    return own if shown in ("", "lexicon", config.provider) else f"{shown} ({own})"


def lexicon_domain(config: Lexicon, target: TxtTarget) -> str:
    """The zone lexicon works in (no trailing dot): the solver's, else the one found by SOA."""
    zone = (config.zone or target.zone).rstrip(".").lower()
    name = target.fqdn.rstrip(".").lower()
    if name != zone and not name.endswith(f".{zone}"):
        raise bad_request(f"{speaker(config)}: {target.fqdn} is not in zone {zone}.")
    return zone


def txt_values(records: list[dict[str, Any]]) -> list[str]:
    """The TXT contents a provider listed, without the quotes some providers keep."""
    return [str(record.get("content", "")).strip('"') for record in records]


def provider_failure(
    error: Exception, *, who: str, step: str, zone: str, options: ResolvedOptions
) -> ApplicationError:
    """What lexicon (or the provider code under it) raised, in the taxonomy."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        response = error.response
        said = f"{response.status_code} {response.reason}"
        body = " ".join(response.text.split())[:SAID_CHARS]
        if body and body != response.reason:
            said += f": {body}"
        said = options.blanked(said)
        if response.status_code in RETRIED_STATUSES:
            return ApplicationError(f"{who}: {step}: {said}", type=LEXICON_UNAVAILABLE)
        if response.status_code in (401, 403):
            return bad_request(f"{who}: {step}: the provider refused the credentials ({said})")
        if response.status_code == 404:
            return bad_request(f"{who}: {step}: zone {zone}. not found ({said})")
        return bad_request(f"{who}: {step}: {said}")
    said = options.blanked(" ".join(str(error).split()))[:SAID_CHARS] or type(error).__name__
    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return ApplicationError(
            f"{who}: {step}: provider API unreachable: {said}", type=LEXICON_UNAVAILABLE
        )
    if isinstance(error, (requests.RequestException, OSError)):
        return ApplicationError(f"{who}: {step}: {said}", type=LEXICON_UNAVAILABLE)
    if isinstance(error, AuthenticationError):
        return bad_request(f"{who}: {step}: authentication failed: {said}")
    if isinstance(error, LexiconError):
        return bad_request(f"{who}: {said}")
    return bad_request(f"{who}: {step}: {type(error).__name__}: {said}")


def _text(value: bytes) -> str:
    """A Secret's value as an option: text, without the newline a file often ends with."""
    return value.decode().strip()


def _directory_options(path: str) -> dict[str, bytes] | None:
    """A whole Secret mounted as files (one per key, as Kubernetes mounts it), or None."""
    directory = Path(path)
    if not directory.is_dir():
        return None
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(directory.iterdir())
        if not entry.name.startswith(".") and entry.is_file()
    }


class LexiconPublisher:
    """A ``TxtPublisher`` over dns-lexicon; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        secrets: SecretStore,
        *,
        whole_secrets: WholeSecrets | None = None,
        copies: CredentialCopies | None = None,
        client: Callable[[ConfigResolver], Client] = Client,
    ) -> None:
        self._secrets = secrets
        self._whole_secrets = whole_secrets
        self._copies = copies
        self._client = client

    def add_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        config = _config(spec)
        options = self._options(config)
        if options is None:
            raise bad_request(f"{speaker(config)}: {self._missing(config)}")
        copies = self._copied(config)
        if copies is not None:
            copies.keep(copy, json.dumps(dict(options.secret)).encode(), about=_about(config))
        try:
            with self._operations(config, target, options, "adding") as operations:
                name = target.fqdn.rstrip(".")
                if target.value not in txt_values(operations.list_records("TXT", name)):
                    operations.create_record("TXT", name, target.value)
        except ApplicationError as error:
            if copies is not None and error.type == BAD_REQUEST:
                copies.discard(copy)  # refused: nothing went out, the copy is of no use
            raise

    def delete_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None:
        config = _config(spec)
        copies = self._copied(config)
        options = self._options(config)
        if options is None and copies is not None:
            options = self._stored_options(config, copies.read(copy))
            if options is None:
                activity.logger.info(
                    "%s: %s is gone and no copy is kept for %s: no record of it to delete",
                    speaker(config),
                    self._missing(config),
                    copy.challenge,
                )
                return
        if options is None:
            raise bad_request(f"{speaker(config)}: {self._missing(config)}")
        with self._operations(config, target, options, "deleting") as operations:
            name = target.fqdn.rstrip(".")
            if target.value in txt_values(operations.list_records("TXT", name)):
                operations.delete_record(None, "TXT", name, target.value)
        if copies is not None:
            copies.discard(copy)

    @contextmanager
    def _operations(
        self, config: Lexicon, target: TxtTarget, options: ResolvedOptions, doing: str
    ) -> Iterator[RecordOperations]:
        """The provider, authenticated for the zone, while this worker's turn on the name lasts."""
        zone = lexicon_domain(config, target)
        who = speaker(config)
        step = f"opening zone {zone}."
        # A dict is the only source: nothing of the worker's environment reaches the provider.
        resolver = ConfigResolver().with_dict(  # type: ignore[no-untyped-call]
            {
                "provider_name": config.provider,
                "domain": zone,
                "ttl": TXT_TTL,
                config.provider: provider_options(config.provider, options.merged),
            }
        )
        turn = _TURNS[zlib.crc32(f"{config.provider} {target.fqdn}".encode()) % len(_TURNS)]
        try:
            with turn:
                client = self._client(resolver)
                client.config.add_config_source(DictConfigSource({"domain": zone}), 0)
                with client as operations:
                    step = f"{doing} TXT {target.fqdn}"
                    yield operations
        except ApplicationError:
            raise
        except Exception as error:  # providers raise anything: classified here, once
            raise provider_failure(error, who=who, step=step, zone=zone, options=options) from error

    def _options(self, config: Lexicon) -> ResolvedOptions | None:
        """The options with their secret values read now; None when a secret is missing."""
        secret: dict[str, str] = {}
        if config.options_secret is not None:
            whole = self._read_whole(config.options_secret)
            if whole is None:
                return None
            secret |= {key: _text(value) for key, value in whole.items()}
        for option, ref in config.secret_options.items():
            value = self._secrets.read(ref)
            if value is None:
                return None
            secret[option] = _text(value)
        return ResolvedOptions(clear=dict(config.options), secret=secret)

    def _stored_options(self, config: Lexicon, stored: bytes | None) -> ResolvedOptions | None:
        if stored is None:
            return None
        return ResolvedOptions(clear=dict(config.options), secret=json.loads(stored))

    def _read_whole(self, ref: SecretRef) -> dict[str, bytes] | None:
        if not ref.in_kubernetes:
            return _directory_options(ref.path)
        if self._whole_secrets is None:
            raise bad_request(f"{ref.describe()}: this worker has no Kubernetes access configured")
        return self._whole_secrets.read_all(ref)

    def _missing(self, config: Lexicon) -> str:
        """Which of the solver's secrets is gone, as the reason says it."""
        whole = config.options_secret
        if whole is not None and self._read_whole(whole) is None:
            return f"{_whole_described(whole)} does not exist"
        for option, ref in config.secret_options.items():
            if self._secrets.read(ref) is None:
                return f"option {option}: {ref.describe()} does not exist"
        return "a secret it names does not exist"

    def _copied(self, config: Lexicon) -> CredentialCopies | None:
        """Where copies go: only values from Kubernetes Secrets can vanish with a namespace."""
        refs = [*config.secret_options.values(), *filter(None, [config.options_secret])]
        return self._copies if any(ref.in_kubernetes for ref in refs) else None


def _whole_described(ref: SecretRef) -> str:
    return f"Secret {ref.namespace}/{ref.name}" if ref.in_kubernetes else f"directory {ref.path}"


def _about(config: Lexicon) -> dict[str, str]:
    """What a copy is for, in its annotations: where the values came from, never them."""
    sources = [f"{option}: {ref.describe()}" for option, ref in config.secret_options.items()]
    if config.options_secret is not None:
        sources.append(_whole_described(config.options_secret))
    return {"provider": speaker(config), "source": "; ".join(sources)}


def _config(spec: ChallengeSpec) -> Lexicon:
    if spec.solver.lexicon is None:
        raise bad_request(f"challenge {spec.name} has no lexicon solver")
    return spec.solver.lexicon
