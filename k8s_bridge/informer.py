"""List, then watch, one resource type: a cache of objects and a callback per change.

Every ``resync_s`` the informer lists again, so each object is seen at least that often
(level-triggered: a missed event is repaired by the next list). A watch whose resource
version expired (410 Gone) also falls back to a fresh list. ``keep`` says what of each
object the cache holds and the callback sees (all of it, unless an informer needs less).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
OnChange = Callable[[str, Obj | None, Obj | None], None]
"""Called with (key, old, new); new is None when the object was deleted."""


def object_key(obj: Obj) -> str:
    metadata = obj["metadata"]
    namespace = metadata.get("namespace") or ""
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


class Informer:
    def __init__(
        self,
        name: str,
        list_fn: Callable[..., Any],
        on_change: OnChange,
        *,
        resync_s: float = 60.0,
        keep: Callable[[Obj], Obj] = lambda obj: obj,
    ) -> None:
        self.name = name
        self._list_fn = list_fn
        self._on_change = on_change
        self._resync_s = resync_s
        self._keep = keep
        self._lock = threading.Lock()
        self._cache: dict[str, Obj] = {}
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._cache.get(key)

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._cache.values())

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                version = self._relist()
                backoff = 0.5
                self._watch_from(version)
            except (ApiException, HTTPError, OSError) as error:
                log.warning("%s informer: %s; retrying in %.1fs", self.name, error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _relist(self) -> str:
        listing = self._list_fn()
        items = {object_key(o): self._keep(o) for o in listing.get("items", [])}
        with self._lock:
            previous, self._cache = self._cache, dict(items)
        for key, obj in items.items():
            self._on_change(key, previous.get(key), obj)
        for key, obj in previous.items():
            if key not in items:
                self._on_change(key, obj, None)
        self._synced.set()
        return str(listing["metadata"]["resourceVersion"])

    def _watch_from(self, version: str) -> None:
        deadline = time.monotonic() + self._resync_s
        self._watch = watch.Watch()
        timeout = max(1, int(self._resync_s))
        for event in self._watch.stream(
            self._list_fn,
            resource_version=version,
            timeout_seconds=timeout,
            allow_watch_bookmarks=True,
        ):
            if self._stop.is_set():
                return
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                code = obj.get("code") if isinstance(obj, dict) else None
                log.info("%s watch ended (%s); listing again", self.name, code)
                return
            if kind == "BOOKMARK":
                continue
            key, obj = object_key(obj), self._keep(obj)
            with self._lock:
                old = self._cache.get(key)
                if kind == "DELETED":
                    self._cache.pop(key, None)
                else:
                    self._cache[key] = obj
            self._on_change(key, old, None if kind == "DELETED" else obj)
            if time.monotonic() > deadline:
                return
