"""The outbox: the only writer of the agent's SQLite file.

A read and the movements it produced are stored in one transaction before the
operator hears the good-read beep. Movements get the agent's next gapless
``seq`` in that same transaction. At the size cap new reads are refused
(``OutboxFull``); what is held is never dropped or overwritten.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agent.errors import OutboxError
from agent.outbox.lifecycle import Lifecycle
from agent.outbox.queries import read_stats, read_sync_state
from agent.outbox.rows import OutboxStats, Pending, SyncState
from agent.outbox.settling import Settling
from agent.outbox.storing import Storing


class Outbox(Lifecycle, Storing, Settling):
    """Open with `Outbox.open(...)`; close with `close()` (or use `async with`).

    Each job lives in its own module (see ``agent.outbox.core``); the reads are here.
    """

    # ---- reading (own connection; WAL readers never block the writer) ------------------

    def pending(
        self,
        after_seq: int = 0,
        limit: int = 500,
        max_bytes: int = 1 << 20,
        sink: str = "ledger",
    ) -> list[Pending]:
        """The next movements pending for ``sink`` in seq order, at most ``limit`` and
        about ``max_bytes``."""
        if sink not in self.sinks:
            raise OutboxError(f"no sink {sink!r} in this outbox's config ({', '.join(self.sinks)})")
        if self._has_deliveries:  # some sink is ahead of another: skip what this one has
            sql = (
                "SELECT seq, id, payload, created_at, kind FROM movements m"
                " WHERE state = 'pending' AND seq > ? AND NOT EXISTS (SELECT 1 FROM"
                " deliveries d WHERE d.seq = m.seq AND d.sink = ?) ORDER BY seq LIMIT ?"
            )
            args: tuple[object, ...] = (after_seq, sink, limit)
        else:
            sql = (
                "SELECT seq, id, payload, created_at, kind FROM movements"
                " WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?"
            )
            args = (after_seq, limit)

        def q(conn: sqlite3.Connection) -> list[Pending]:
            out: list[Pending] = []
            size = 0
            for seq, mid, payload, created_at, kind in conn.execute(sql, args):
                if seq in self._cancelling:  # cancelled by a transaction committing now
                    continue
                if out and size + len(payload) > max_bytes:
                    break
                out.append(Pending(seq, mid, payload, created_at, kind))
                size += len(payload)
            if out:
                self._handed_out = max(self._handed_out, out[-1].seq)
            return out

        # The flight lock spans the query and the mark, so a CANCEL decided in the
        # writer sees either "not handed out" before this or the new mark after it.
        with self._flight_lock:
            return self._read(q)

    def station_state(self) -> dict[str, dict[str, Any]]:
        def q(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for station, key, value in conn.execute(
                "SELECT station, key, value FROM station_state"
            ):
                out.setdefault(station, {})[key] = json.loads(value)
            return out

        return self._read(q)

    def sync_state(self, sink: str = "ledger") -> SyncState:
        return self._read(lambda conn: read_sync_state(conn, sink))

    def sink_states(self) -> dict[str, SyncState]:
        """Each configured sink's backoff and last answer, in config order."""

        def q(conn: sqlite3.Connection) -> dict[str, SyncState]:
            return {s: read_sync_state(conn, s) for s in self.sinks}

        return self._read(q)

    def stats(self) -> OutboxStats:
        return self._read(lambda conn: read_stats(conn, self.max_bytes))

    def used_bytes(self) -> int:
        return self._read(self._used_bytes)
