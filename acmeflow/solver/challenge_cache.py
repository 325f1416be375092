"""Tokens from Challenge resources: the list-then-watch cache of ``acmeflow solver --kubernetes``.

The cache lists ``acmeflow.io/v1alpha1`` Challenges (in every namespace, or in one) and
then watches from the list's resourceVersion, keeping, for each ``type: HTTP-01``
Challenge, its token, key authorization and dnsName until the Challenge is DELETED.

- A watch that the API server ends (its ``timeoutSeconds``) resumes from the last
  resourceVersion seen, bookmarks included.
- A watch whose resourceVersion is gone (410 Gone / Expired) lists again at once.
- Any other failure (an error event, a dropped connection, a refused list) lists again
  after a back-off of 0.5 s doubling to 30 s.

A new list replaces the whole cache, so a Challenge deleted while the watch was down is
not served afterwards. While the API server is out of reach the cache keeps serving what
it knew. The solver is ``ready()`` once the first list has loaded.

RBAC the solver needs: ``list`` and ``watch`` on ``challenges.acmeflow.io``, cluster-wide
(a ClusterRole) or, with ``--namespace``, in that namespace.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from acmeflow.contracts.states import ChallengeType
from acmeflow.crds.models import GROUP, VERSION, Challenge
from acmeflow.solver.server import normalize_host

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S: Final = 300
"""How long one watch request lasts before the API server ends it and the cache resumes."""
CONNECT_TIMEOUT_S: Final = 10.0

Obj = dict[str, Any]
WatchEvent = tuple[str, Obj]
"""(``ADDED`` | ``MODIFIED`` | ``DELETED`` | ``BOOKMARK``, the object as JSON)."""
ObjectKey = tuple[str, str]
"""(namespace, name) of a Challenge."""


class WatchExpired(Exception):
    """The watch's resourceVersion is no longer available (410 Gone): list again."""


class ChallengeFeed(Protocol):
    """Where Challenges come from: the API server, or a scripted stream in unit tests."""

    def list(self) -> tuple[list[Obj], str]:
        """Every Challenge, and the resourceVersion of that listing."""

    def watch(self, resource_version: str) -> Iterator[WatchEvent]:
        """Changes after ``resource_version`` until the server ends the watch.

        Raises ``WatchExpired`` when the version is gone; other errors as they come.
        """

    def interrupt(self) -> None:
        """End a running ``watch`` from another thread."""


FEED_ERRORS: Final = (ApiException, HTTPError, OSError)


class KubernetesChallengeFeed:
    """Challenges from the API server, in all namespaces or in ``namespace``."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str = "",
        watch_timeout_s: int = WATCH_TIMEOUT_S,
    ) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._namespace = namespace
        self._watch_timeout_s = watch_timeout_s
        self._watch: watch.Watch | None = None

    def describe(self) -> str:
        scope = f"namespace {self._namespace}" if self._namespace else "all namespaces"
        return f"{Challenge.PLURAL}.{GROUP} in {scope}"

    def _call(self, **kwargs: Any) -> Any:
        if self._namespace:
            return self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self._namespace, Challenge.PLURAL, **kwargs
            )
        return self._custom.list_cluster_custom_object(GROUP, VERSION, Challenge.PLURAL, **kwargs)

    def list(self) -> tuple[list[Obj], str]:
        listing = self._call(_request_timeout=(CONNECT_TIMEOUT_S, 60.0))
        items: list[Obj] = list(listing.get("items") or [])
        return items, str(listing["metadata"]["resourceVersion"])

    def watch(self, resource_version: str) -> Iterator[WatchEvent]:
        stream = watch.Watch()
        self._watch = stream
        try:
            for event in stream.stream(
                self._call,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout_s,
                # The server ends the watch after timeout_seconds; a read that waits
                # longer than that means a connection that died silently.
                _request_timeout=(CONNECT_TIMEOUT_S, self._watch_timeout_s + 30.0),
            ):
                if isinstance(event, dict):
                    yield str(event["type"]), dict(event["raw_object"])
        except ApiException as error:
            if error.status == 410:
                raise WatchExpired(str(error.reason)) from error
            raise
        finally:
            self._watch = None

    def interrupt(self) -> None:
        stream = self._watch
        if stream is not None:
            stream.stop()


@dataclass(frozen=True)
class ServedChallenge:
    """What the solver needs of one HTTP-01 Challenge."""

    token: str
    key: str
    dns_name: str


def served_challenge(obj: Obj) -> ServedChallenge | None:
    """The HTTP-01 part of a Challenge as JSON; None for DNS-01 or an unusable object."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or spec.get("type") != ChallengeType.HTTP01:
        return None
    token, key, dns_name = spec.get("token"), spec.get("key"), spec.get("dnsName")
    if not (isinstance(token, str) and isinstance(key, str) and isinstance(dns_name, str)):
        return None
    if not (token and key and dns_name):
        return None
    return ServedChallenge(token=token, key=key, dns_name=normalize_host(dns_name))


def object_key(obj: Obj) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


class ChallengeCache:
    """A ``TokenSource`` over a ``ChallengeFeed``; ``start()`` runs it in a daemon thread."""

    def __init__(
        self,
        feed: ChallengeFeed,
        *,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        description: str = "Challenges",
    ) -> None:
        self._feed = feed
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._description = description
        self._lock = threading.Lock()
        self._challenges: dict[ObjectKey, ServedChallenge] = {}
        self._by_token: dict[str, dict[ObjectKey, ServedChallenge]] = {}
        self._listed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.lists = 0
        """How many times the cache listed (a re-list after an expired or failed watch adds one)."""

    # --- TokenSource -------------------------------------------------------------------------

    def key_for(self, token: str, host: str) -> str | None:
        host = normalize_host(host)
        with self._lock:
            candidates = list(self._by_token.get(token, {}).values())
        for challenge in candidates:
            if challenge.dns_name == host:
                return challenge.key
        return None

    def ready(self) -> bool:
        return self._listed.is_set()

    # --- Running -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="challenge-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        self._feed.interrupt()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wait_ready(self, timeout_s: float) -> bool:
        return self._listed.wait(timeout_s)

    def run(self) -> None:
        """List, then watch, until ``stop()``; never raises."""
        backoff = self._initial_backoff_s
        resource_version: str | None = None
        expired_in_a_row = 0
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist()
                    backoff = self._initial_backoff_s
                resource_version, progressed = self._follow(resource_version)
                if progressed:
                    expired_in_a_row = 0
                continue
            except WatchExpired as expired:
                resource_version = None
                expired_in_a_row += 1
                log.info("watch of %s expired (%s); listing again", self._description, expired)
                if expired_in_a_row == 1:
                    continue
            except FEED_ERRORS as error:
                resource_version = None
                if self._stopping.is_set():
                    break
                log.warning(
                    "list/watch of %s failed: %s; listing again in %.1fs",
                    self._description,
                    error,
                    backoff,
                )
            except Exception:
                resource_version = None
                log.exception(
                    "list/watch of %s broke; listing again in %.1fs", self._description, backoff
                )
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    def _relist(self) -> str:
        items, resource_version = self._feed.list()
        challenges = {
            object_key(obj): served
            for obj in items
            if (served := served_challenge(obj)) is not None
        }
        by_token: dict[str, dict[ObjectKey, ServedChallenge]] = {}
        for key, served in challenges.items():
            by_token.setdefault(served.token, {})[key] = served
        with self._lock:
            self._challenges, self._by_token = challenges, by_token
            self.lists += 1
        log.info(
            "%s %d HTTP-01 challenge(s) of %s",
            "listed again:" if self._listed.is_set() else "serving",
            len(challenges),
            self._description,
        )
        self._listed.set()
        return resource_version

    def _follow(self, resource_version: str) -> tuple[str, bool]:
        """Apply watch events until the watch ends; the last version seen, and whether any came."""
        progressed = False
        for event_type, obj in self._feed.watch(resource_version):
            if self._stopping.is_set():
                break
            if event_type == "ERROR":
                raise ApiException(status=obj.get("code"), reason=str(obj.get("message")))
            self.apply(event_type, obj)
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                resource_version = str(version)
            progressed = True
        return resource_version, progressed

    def apply(self, event_type: str, obj: Obj) -> None:
        """One watch event: ADDED/MODIFIED store the Challenge, DELETED drops it."""
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            return
        key = object_key(obj)
        served = None if event_type == "DELETED" else served_challenge(obj)
        with self._lock:
            previous = self._challenges.pop(key, None)
            if previous is not None:
                same_token = self._by_token.get(previous.token, {})
                same_token.pop(key, None)
                if not same_token:
                    self._by_token.pop(previous.token, None)
            if served is not None:
                self._challenges[key] = served
                self._by_token.setdefault(served.token, {})[key] = served
