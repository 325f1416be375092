"""The Challenge watch cache as a unit: a scripted feed instead of the API server.

What the real API server does is in ``tests/k8s/test_solver_kubernetes.py``; here every
path of the list/watch loop is driven on purpose, including those a shared test cluster
cannot be made to take on demand (a watch that expires right after a list, a list that
fails).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from acmeflow.solver.challenge_cache import ChallengeCache, Obj, WatchEvent, WatchExpired
from acmeflow.solver.server import normalize_host

Step = WatchEvent | BaseException


def challenge(
    name: str,
    token: str,
    dns_name: str = "a.example.com",
    *,
    kind: str = "HTTP-01",
    version: str = "1",
    namespace: str = "team-a",
) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
        "spec": {"type": kind, "token": token, "key": f"{token}.thumb", "dnsName": dns_name},
    }


class ScriptedFeed:
    """Answers ``list`` and ``watch`` from scripts; a watch with no script waits to be stopped."""

    def __init__(
        self,
        lists: list[tuple[list[Obj], str] | BaseException],
        watches: list[list[Step]],
    ) -> None:
        self._lists = lists
        self._watches = watches
        self.watched_from: list[str] = []
        self._interrupted = threading.Event()

    def list(self) -> tuple[list[Obj], str]:
        answer = self._lists.pop(0) if len(self._lists) > 1 else self._lists[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def watch(self, resource_version: str) -> Iterator[WatchEvent]:
        self.watched_from.append(resource_version)
        if not self._watches:
            self._interrupted.wait()
            return
        for step in self._watches.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield step

    def interrupt(self) -> None:
        self._interrupted.set()


@pytest.fixture
def running() -> Iterator[Callable[..., ChallengeCache]]:
    caches: list[ChallengeCache] = []

    def start(feed: ScriptedFeed, initial_backoff_s: float = 0.01) -> ChallengeCache:
        cache = ChallengeCache(
            feed, initial_backoff_s=initial_backoff_s, max_backoff_s=initial_backoff_s * 5
        )
        cache.start()
        caches.append(cache)
        return cache

    yield start
    for cache in caches:
        cache.stop()


def eventually(condition: Callable[[], Any], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_410_gone_lists_again_and_drops_what_was_deleted_meanwhile(
    running: Callable[..., ChallengeCache],
) -> None:
    feed = ScriptedFeed(
        lists=[
            ([challenge("a", "tok-a")], "10"),
            ([challenge("b", "tok-b"), challenge("c", "tok-c")], "20"),
        ],
        watches=[[("ADDED", challenge("b", "tok-b", version="11")), WatchExpired("too old")]],
    )
    cache = running(feed)
    eventually(lambda: cache.lists == 2 and len(feed.watched_from) == 2)
    assert feed.watched_from == ["10", "20"]
    assert cache.key_for("tok-a", "a.example.com") is None  # deleted while the watch was gone
    assert cache.key_for("tok-b", "a.example.com") == "tok-b.thumb"
    assert cache.key_for("tok-c", "a.example.com") == "tok-c.thumb"


def test_a_watch_the_server_ends_resumes_from_the_last_version_without_listing(
    running: Callable[..., ChallengeCache],
) -> None:
    feed = ScriptedFeed(
        lists=[([], "10")],
        watches=[
            [("ADDED", challenge("a", "tok-a", version="11"))],
            [("BOOKMARK", {"metadata": {"resourceVersion": "15"}})],
        ],
    )
    cache = running(feed)
    eventually(lambda: len(feed.watched_from) == 3)
    assert feed.watched_from == ["10", "11", "15"]
    assert cache.lists == 1
    assert cache.key_for("tok-a", "a.example.com") == "tok-a.thumb"


@pytest.mark.parametrize(
    "failure",
    [
        ProtocolError("Connection broken: connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        ApiException(status=500, reason="Internal Server Error"),
    ],
    ids=["dropped-connection", "refused-connection", "error-event"],
)
def test_a_failed_watch_backs_off_then_lists_again(
    running: Callable[..., ChallengeCache], failure: BaseException
) -> None:
    feed = ScriptedFeed(
        lists=[([challenge("a", "tok-a")], "10"), ([challenge("b", "tok-b")], "30")],
        watches=[[("ADDED", challenge("c", "tok-c", version="11")), failure]],
    )
    cache = running(feed)
    eventually(lambda: feed.watched_from == ["10", "30"])
    assert cache.lists == 2
    assert cache.key_for("tok-a", "a.example.com") is None
    assert cache.key_for("tok-c", "a.example.com") is None
    assert cache.key_for("tok-b", "a.example.com") == "tok-b.thumb"


def test_not_ready_until_a_list_succeeds(running: Callable[..., ChallengeCache]) -> None:
    unavailable = ApiException(status=503, reason="Service Unavailable")
    feed = ScriptedFeed(
        lists=[unavailable, unavailable, ([challenge("a", "tok-a")], "5")], watches=[]
    )
    cache = running(feed, initial_backoff_s=0.3)  # fails at once, again at 0.3 s, lists at 0.9 s
    time.sleep(0.1)
    assert not cache.ready()
    assert cache.key_for("tok-a", "a.example.com") is None
    assert cache.wait_ready(5.0)
    assert cache.lists == 1
    assert cache.key_for("tok-a", "a.example.com") == "tok-a.thumb"


def test_expiring_again_right_after_a_list_backs_off_instead_of_spinning(
    running: Callable[..., ChallengeCache],
) -> None:
    feed = ScriptedFeed(lists=[([], "1")], watches=[[WatchExpired("gone")] for _ in range(4)])
    cache = running(feed)
    eventually(lambda: len(feed.watched_from) == 5)
    assert cache.lists == 5


def test_events_add_change_and_drop_challenges() -> None:
    cache = ChallengeCache(ScriptedFeed(lists=[([], "1")], watches=[]))
    cache.apply("ADDED", challenge("a", "tok-a", "a.example.com"))
    cache.apply("ADDED", challenge("dns", "tok-dns", "a.example.com", kind="DNS-01"))
    cache.apply("ADDED", {"metadata": {"name": "broken", "namespace": "x"}, "spec": {}})
    assert cache.key_for("tok-a", "a.example.com") == "tok-a.thumb"
    assert cache.key_for("tok-dns", "a.example.com") is None

    cache.apply("MODIFIED", challenge("a", "tok-a2", "a.example.com"))
    assert cache.key_for("tok-a", "a.example.com") is None
    assert cache.key_for("tok-a2", "a.example.com") == "tok-a2.thumb"

    cache.apply("DELETED", challenge("a", "tok-a2", "a.example.com"))
    assert cache.key_for("tok-a2", "a.example.com") is None


def test_the_key_is_served_only_for_the_challenges_own_host() -> None:
    cache = ChallengeCache(ScriptedFeed(lists=[([], "1")], watches=[]))
    cache.apply("ADDED", challenge("a", "shared", "a.example.com"))
    cache.apply("ADDED", challenge("b", "shared", "b.example.com", namespace="team-b"))
    for host in ("a.example.com", "A.Example.COM", "a.example.com:80", "a.example.com."):
        assert cache.key_for("shared", host) == "shared.thumb", host
    assert cache.key_for("shared", "c.example.com") is None
    assert cache.key_for("shared", "") is None
    cache.apply("DELETED", challenge("a", "shared", "a.example.com"))
    assert cache.key_for("shared", "a.example.com") is None
    assert cache.key_for("shared", "b.example.com") == "shared.thumb"


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8089", "example.com"),
        ("example.com.", "example.com"),
        ("[2001:db8::1]:80", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("192.0.2.1:80", "192.0.2.1"),
    ],
)
def test_host_normalization(header: str, host: str) -> None:
    assert normalize_host(header) == host
