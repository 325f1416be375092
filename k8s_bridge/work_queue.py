"""A de-duplicating work queue: a key waiting once is not queued twice."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item", bound=Hashable)


class WorkQueue(Generic[Item]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._waiting: set[Item] = set()

    def add(self, item: Item) -> None:
        if item not in self._waiting:
            self._waiting.add(item)
            self._queue.put_nowait(item)

    def add_later(self, item: Item, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, item)

    async def get(self) -> Item:
        item = await self._queue.get()
        self._waiting.discard(item)
        return item

    def __len__(self) -> int:
        return self._queue.qsize()
