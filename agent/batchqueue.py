"""A bounded FIFO that moves items by the batch: an RFID report's reads go in together.

``asyncio.Queue`` moves one item per call, about a microsecond each way; a
read crossed two of them (driver -> pump -> rules), which at tens of thousands
of tag reads a second was a tenth of the agent's work per read. Here a report
goes in with one call and the rules take everything waiting (up to their group
size) with one call.

The bound counts items, not batches: a batch is let in while the queue holds
fewer than ``maxsize`` items (so it may end up over by one batch); once it is
full, ``put`` waits until a ``get`` makes room, and the producer (a driver)
stops reading its socket meanwhile. ``close`` ends it: ``get`` gives what is
left, then empty lists.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchQueue(Generic[T]):
    """Items put and taken by the batch, in order, bounded by the count of items."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self.maxsize = maxsize
        self._batches: deque[list[T]] = deque()
        self._size = 0
        self._closed = False
        self._ready = asyncio.Event()  # something to get, or closed
        self._room = asyncio.Event()  # not full
        self._room.set()

    def qsize(self) -> int:
        return self._size

    def empty(self) -> bool:
        return not self._size

    def full(self) -> bool:
        return self._size >= self.maxsize

    @property
    def closed(self) -> bool:
        return self._closed

    def put_nowait(self, items: list[T]) -> bool:
        """Add a batch whatever the bound (the caller checked ``full``); False, and nothing
        added, once the queue is closed. The list is the queue's from now on."""
        if self._closed:
            return False
        if items:
            self._batches.append(items)
            self._size += len(items)
            self._ready.set()
            if self._size >= self.maxsize:
                self._room.clear()
        return True

    async def put(self, items: list[T]) -> bool:
        """Add a batch once the queue is not full; False if it was closed meanwhile."""
        while self._size >= self.maxsize and not self._closed:
            await self._room.wait()
        return self.put_nowait(items)

    def get_nowait(self, limit: int = 0) -> list[T]:
        """Up to ``limit`` items (0: all) of what is waiting, oldest first; [] if none."""
        batches = self._batches
        if not batches:
            return []
        if limit <= 0:
            limit = self._size
        out = batches.popleft()
        if len(out) > limit:
            batches.appendleft(out[limit:])
            out = out[:limit]
        elif batches and len(out) < limit:
            out = list(out)  # a copy to extend: the first batch may be a caller's list
            while batches and len(out) < limit:
                head = batches[0]
                room = limit - len(out)
                if len(head) <= room:
                    out.extend(batches.popleft())
                else:
                    out.extend(head[:room])
                    batches[0] = head[room:]
        self._size -= len(out)
        if not batches and not self._closed:
            self._ready.clear()
        if self._size < self.maxsize:
            self._room.set()
        return out

    async def get(self, limit: int = 0) -> list[T]:
        """Wait for items and take up to ``limit`` (0: all); [] once closed and drained."""
        while not self._batches:
            if self._closed:
                return []
            await self._ready.wait()
        return self.get_nowait(limit)

    def close(self) -> None:
        """No more puts; ``get`` drains what is left, then answers [] without waiting."""
        self._closed = True
        self._ready.set()
        self._room.set()
