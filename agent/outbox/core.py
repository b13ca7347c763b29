"""What every outbox job shares: the state, the writer's queue and the reader.

``Outbox`` (in ``store``) is made of this core and one mixin per job:
``lifecycle`` (open, claim, close), ``storing`` (reads and their movements),
``cancel`` (CANCEL against the syncer), ``settling`` (the ledger's answers,
backoff, retention). Each job reads and writes the state set up here.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from agent.errors import OutboxError
from agent.outbox.lock import OutboxLock
from agent.outbox.writer import Transaction, Writer, map_sqlite_error

T = TypeVar("T")


class OutboxCore:
    """The outbox's state; only ``Outbox`` is made from it."""

    def __init__(
        self,
        path: Path,
        agent_id: str,
        max_bytes: int,
        retention_days: float = 30.0,
        group_max: int = 512,
        wall: Callable[[], float] = time.time,
        sinks: Sequence[str] = ("ledger",),
    ) -> None:
        if not sinks or len(set(sinks)) != len(sinks):
            raise OutboxError(f"outbox {path}: sinks must be one or more distinct names")
        self.path = path
        # The configured sinks, in config order. A movement is settled (and may be
        # pruned) once each of these has it; a sink no longer configured holds nothing.
        self.sinks = tuple(sinks)
        self.agent_id = agent_id
        self.max_bytes = max_bytes
        self.retention_days = retention_days
        self._wall = wall
        self._state = "unopened"
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._rlock = threading.Lock()
        self._lock = OutboxLock(self.path)
        self._writer: Writer | None = None
        self._group_max = group_max
        self._next_seq = 1
        self.pending_count = 0  # kept by the writer as it commits: the backlog, without a scan
        # Per sink, the pending movements it has settled already (it has a row in
        # ``deliveries``, another sink has not); its own backlog is pending_count
        # minus this. Kept by the writer, like pending_count.
        self._done_pending: dict[str, int] = dict.fromkeys(self.sinks, 0)
        self._has_deliveries = False  # no rows: the pending query needs no probe
        self._page_size = 4096
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        # CANCEL against the syncer (see _cancel): the highest seq ever handed to it,
        # and seqs cancelled by a transaction not yet committed, both under this lock.
        self._flight_lock = threading.Lock()
        self._handed_out = 0
        self._cancelling: set[int] = set()
        # CANCELs rolled back after pending() skipped their seq: a syncer that keeps
        # a resume point (several sinks) starts again from the beginning when it moves.
        self.cancel_rollbacks = 0

    # ---- writing ------------------------------------------------------------------

    def _submit(self, job: Callable[[Transaction], T]) -> asyncio.Future[T]:
        if self._state != "open" or self._writer is None:
            raise OutboxError(f"outbox {self.path} is {self._state}")
        return asyncio.wrap_future(self._writer.submit(job))

    def submit_blocking(self, job: Callable[[Transaction], T]) -> T:
        """Run a job on the writer and wait; for tools and benchmarks off the event loop."""
        if self._state != "open" or self._writer is None:
            raise OutboxError(f"outbox {self.path} is {self._state}")
        return self._writer.submit(job).result()

    def _rewind(self, seq: int, pending: int) -> None:
        """Undo a rolled-back transaction's seq numbers (seq stays gapless) and backlog."""
        self._next_seq = min(self._next_seq, seq)
        self.pending_count = pending

    def _used_bytes(self, conn: sqlite3.Connection) -> int:
        # One statement, not a PRAGMA each: every store job measures, and the writer
        # thread wins the GIL back from the event loop after each statement.
        (used,) = conn.execute(
            "SELECT page_count - freelist_count FROM pragma_page_count(), pragma_freelist_count()"
        ).fetchone()
        return int(used * self._page_size)

    async def flush(self) -> None:
        """Wait until every write queued before this call is committed."""
        await self._submit(lambda tx: None)

    def sink_pending(self, sink: str) -> int:
        """How many movements wait for ``sink``: no scan, like pending_count."""
        return self.pending_count - self._done_pending.get(sink, 0)

    # ---- change notification (loop side) ---------------------------------------------

    def _notify(self) -> None:
        for loop, event in list(self._waiters):
            loop.call_soon_threadsafe(event.set)

    def subscribe(self) -> asyncio.Event:
        """An event set (from the writer thread, safely) whenever movements are stored.

        Clear it before looking for pending work, then wait on it: nothing stored
        in between can be missed.
        """
        event = asyncio.Event()
        self._waiters.append((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._waiters = [(lp, ev) for lp, ev in self._waiters if ev is not event]

    # ---- reading (own connection; WAL readers never block the writer) ------------------

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._state != "open" or self._rconn is None:
            raise OutboxError(f"outbox {self.path} is {self._state}")
        with self._rlock:
            try:
                return fn(self._rconn)
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, str(self.path)) from exc
