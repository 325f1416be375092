"""The bridge's work queue, with the semantics of client-go's ``util/workqueue``.

- A key waiting in the queue is not queued twice (the *dirty* set).
- A key being processed is handed to no other reconciler; added meanwhile, it is queued
  again once its reconciler calls ``done`` (the *processing* set). So one key is reconciled
  by one reconciler at a time, and a change seen during a reconcile is never lost.
- ``add_after`` holds a key back until its time; the earliest pending time wins.
- ``add_rate_limited`` holds a key back by its own exponential back-off (client-go's
  ``ItemExponentialFailureRateLimiter``: base, 2·base, 4·base … up to a cap); ``forget``
  resets it once the key was reconciled without error.

``KeyQueue`` is the bookkeeping: pure, clocked from outside, so tests drive it with a fake
clock. ``WorkQueue`` lets asyncio reconcilers wait on it, and ``reconcile_forever`` is one
reconciler's loop (client-go's ``processNextWorkItem``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
Item = TypeVar("Item", bound=Hashable)
Clock = Callable[[], float]
"""Seconds on a monotonic clock."""

FIRST_RETRY_S = 0.005
"""client-go's default: the first retry of a failed key comes after 5 ms."""
MAX_RETRY_S = 300.0
"""Retries of a key that keeps failing settle at one every five minutes."""
_MAX_DOUBLINGS = 64


class ExponentialBackoff(Generic[Item]):
    """Per-key delays: ``first_s`` after the first failure, doubling with each one, capped."""

    def __init__(self, *, first_s: float = FIRST_RETRY_S, max_s: float = MAX_RETRY_S) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._failures: dict[Item, int] = {}

    def when(self, item: Item) -> float:
        """Count one more failure of ``item``; the delay before it is tried again."""
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        if failures >= _MAX_DOUBLINGS:
            return self._max_s
        return min(self._first_s * 2.0**failures, self._max_s)

    def forget(self, item: Item) -> None:
        """``item`` succeeded: its next failure starts from ``first_s`` again."""
        self._failures.pop(item, None)

    def failures(self, item: Item) -> int:
        return self._failures.get(item, 0)


class KeyQueue(Generic[Item]):
    """Ready, dirty, processing and held-back keys; no waiting, no threads."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._ready: deque[Item] = deque()
        self._dirty: set[Item] = set()
        self._processing: set[Item] = set()
        self._held: list[tuple[float, int, Item]] = []
        self._due: dict[Item, float] = {}
        self._order = itertools.count()

    def add(self, item: Item) -> None:
        if item in self._dirty:
            return
        self._dirty.add(item)
        if item not in self._processing:
            self._ready.append(item)

    def add_after(self, item: Item, delay_s: float) -> None:
        if delay_s <= 0:
            self.add(item)
            return
        due = self._clock() + delay_s
        if self._due.get(item, due) < due:
            return
        self._due[item] = due
        heapq.heappush(self._held, (due, next(self._order), item))

    def take(self) -> Item | None:
        """The next ready key, now marked as processing; None when none is ready."""
        self._release_due()
        if not self._ready:
            return None
        item = self._ready.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: Item) -> None:
        """The reconciler of ``item`` finished; queue it again if it was added meanwhile."""
        self._processing.discard(item)
        if item in self._dirty:
            self._ready.append(item)

    def seconds_to_next(self) -> float | None:
        """How long until the earliest held-back key is due; None when none is held."""
        self._drop_superseded()
        if not self._held:
            return None
        return max(0.0, self._held[0][0] - self._clock())

    def __len__(self) -> int:
        """Keys ready to be taken."""
        return len(self._ready)

    def _release_due(self) -> None:
        now = self._clock()
        self._drop_superseded()
        while self._held and self._held[0][0] <= now:
            _, _, item = heapq.heappop(self._held)
            del self._due[item]
            self.add(item)
            self._drop_superseded()

    def _drop_superseded(self) -> None:
        """Pop entries of keys that were since held back to an earlier time (or released)."""
        while self._held and self._due.get(self._held[0][2]) != self._held[0][0]:
            heapq.heappop(self._held)


class WorkQueue(Generic[Item]):
    """A ``KeyQueue`` that asyncio reconcilers wait on, with per-key retry back-off.

    Use from one event loop only (other threads hand keys over with
    ``loop.call_soon_threadsafe``). Each key ``get`` returns must be passed to ``done``.
    """

    def __init__(
        self, backoff: ExponentialBackoff[Item] | None = None, clock: Clock = time.monotonic
    ) -> None:
        self._keys: KeyQueue[Item] = KeyQueue(clock)
        self._backoff: ExponentialBackoff[Item] = backoff or ExponentialBackoff()
        self._changed = asyncio.Event()

    def add(self, item: Item) -> None:
        self._keys.add(item)
        self._changed.set()

    def add_after(self, item: Item, delay_s: float) -> None:
        self._keys.add_after(item, delay_s)
        self._changed.set()

    def add_rate_limited(self, item: Item) -> float:
        """Retry ``item`` after its back-off; returns that delay."""
        delay_s = self._backoff.when(item)
        self.add_after(item, delay_s)
        return delay_s

    def forget(self, item: Item) -> None:
        self._backoff.forget(item)

    def done(self, item: Item) -> None:
        self._keys.done(item)
        self._changed.set()

    async def get(self) -> Item:
        """Wait for a ready key and mark it as processing."""
        while True:
            item = self._keys.take()
            if item is not None:
                return item
            self._changed.clear()
            try:
                async with asyncio.timeout(self._keys.seconds_to_next()):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def __len__(self) -> int:
        return len(self._keys)


async def reconcile_forever(
    queue: WorkQueue[Item], reconcile: Callable[[Item], Awaitable[float | None]]
) -> None:
    """Take a key, reconcile it, and mark it done, until cancelled.

    ``reconcile`` returns seconds after which to look at the key again, or None. When it
    raises, the key is retried after its back-off; when it returns, the back-off resets.
    """
    while True:
        item = await queue.get()
        try:
            again_s = await reconcile(item)
        except Exception:
            retry_s = queue.add_rate_limited(item)
            log.exception("reconciling %s failed; retrying in %.3fs", item, retry_s)
        else:
            queue.forget(item)
            if again_s is not None:
                queue.add_after(item, again_s)
        finally:
            queue.done(item)
