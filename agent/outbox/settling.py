"""After storing: the ledger's answers, the backoff state, and retention pruning."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from agent.errors import OutboxError
from agent.outbox.core import OutboxCore
from agent.outbox.rows import uuid7_floor
from agent.outbox.settled import finish_settled
from agent.outbox.writer import Transaction


class Settling(OutboxCore):
    """What the syncer and the pruner write back once movements are stored."""

    async def settle(
        self, results: Iterable[tuple[int, str, str | None]], sink: str = "ledger"
    ) -> int:
        """Record the ledger's per-movement answers (seq, 'delivered'|'rejected', reason)."""
        rows = list(results)
        return await self._submit(lambda tx: self._settle_job(tx, rows, sink))

    def settle_blocking(
        self, results: Iterable[tuple[int, str, str | None]], sink: str = "ledger"
    ) -> int:
        rows = list(results)
        return self.submit_blocking(lambda tx: self._settle_job(tx, rows, sink))

    def _settle_job(
        self, tx: Transaction, rows: list[tuple[int, str, str | None]], sink: str
    ) -> int:
        """One sink's answers. Returns how many movements that sink settled now."""
        conn = tx.conn
        now = self._wall()
        if sink not in self.sinks:
            raise OutboxError(f"no sink {sink!r} in this outbox's config ({', '.join(self.sinks)})")
        for seq, state, _ in rows:
            if state not in ("delivered", "rejected"):
                raise OutboxError(f"cannot settle movement {seq} as {state!r}")
        pending_before = self.pending_count
        done_before = dict(self._done_pending)
        has_before = self._has_deliveries

        def undo() -> None:
            self.pending_count, self._done_pending = pending_before, done_before
            self._has_deliveries = has_before

        tx.on_rollback(undo)
        if len(self.sinks) == 1:
            # One sink: its answer is the movement's state, as before several sinks.
            before = conn.total_changes
            conn.executemany(
                "UPDATE movements SET state = ?, settled_at = ?, last_error = ?"
                " WHERE seq = ? AND state = 'pending'",
                [(state, now, reason, seq) for seq, state, reason in rows],
            )
            changed = conn.total_changes - before
            self.pending_count -= changed
        else:
            changed = self._settle_one_of_several(conn, rows, sink, now)
        conn.execute(
            "INSERT INTO sync_state(sink, attempts, next_attempt_at, last_success_at)"
            " VALUES (?, 0, NULL, ?) ON CONFLICT(sink) DO UPDATE SET attempts = 0,"
            " next_attempt_at = NULL, last_success_at = excluded.last_success_at",
            (sink, now),
        )
        return changed

    def _settle_one_of_several(
        self,
        conn: sqlite3.Connection,
        rows: list[tuple[int, str, str | None]],
        sink: str,
        now: float,
    ) -> int:
        """Record ``sink``'s answers; movements every sink now has get their summary."""
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO deliveries(seq, sink, state, reason, settled_at)"
            " SELECT seq, ?, ?, ?, ? FROM movements WHERE seq = ? AND state = 'pending'",
            [(sink, state, reason, now, seq) for seq, state, reason in rows],
        )
        changed = conn.total_changes - before
        if not changed:
            return 0
        self._has_deliveries = True
        self._done_pending[sink] += changed
        seqs = [seq for seq, _, _ in rows]
        marks = ",".join("?" * len(self.sinks))
        complete = [
            s
            for (s,) in conn.execute(
                f"SELECT seq FROM deliveries WHERE seq BETWEEN ? AND ? AND sink IN ({marks})"
                " GROUP BY seq HAVING count(*) = ?",
                (min(seqs), max(seqs), *self.sinks, len(self.sinks)),
            )
        ]
        finished = finish_settled(conn, complete, self.sinks, now)
        self.pending_count -= finished
        for name in self.sinks:
            self._done_pending[name] -= finished
        return changed

    async def record_failure(
        self,
        seqs: Sequence[int],
        error: str,
        attempts: int,
        next_attempt_at: float,
        sink: str = "ledger",
    ) -> None:
        """Keep the long-term backoff state on disk, so a restart does not reset it."""

        def job(tx: Transaction) -> None:
            now = self._wall()
            tx.conn.executemany(
                "UPDATE movements SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(error, s) for s in seqs],
            )
            tx.conn.execute(
                "INSERT INTO sync_state(sink, attempts, next_attempt_at, last_error, last_error_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(sink) DO UPDATE SET attempts = excluded.attempts,"
                " next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error,"
                " last_error_at = excluded.last_error_at",
                (sink, attempts, next_attempt_at, error, now),
            )

        await self._submit(job)

    async def prune(self, chunk: int = 5000) -> int:
        """Delete movements past retention that every configured sink has (their summary
        state is 'delivered' only then), and reads nothing refers to."""
        cutoff = self._wall() - self.retention_days * 86400
        total = 0
        while True:
            n = await self._submit(lambda tx: self._prune_job(tx.conn, cutoff, chunk))
            total += n
            if n < chunk:
                return total

    def _prune_job(self, conn: sqlite3.Connection, cutoff: float, chunk: int) -> int:
        # The newest movement always stays: next_seq is derived from it.
        n = 0
        for state in ("delivered", "cancelled"):
            if self._has_deliveries and state == "delivered":  # each sink's rows go with it
                conn.execute(
                    "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM movements"
                    " WHERE state = ? AND settled_at < ?"
                    " AND seq < (SELECT max(seq) FROM movements) LIMIT ?)",
                    (state, cutoff, chunk),
                )
            n += conn.execute(
                "DELETE FROM movements WHERE seq IN (SELECT seq FROM movements"
                " WHERE state = ? AND settled_at < ?"
                " AND seq < (SELECT max(seq) FROM movements) LIMIT ?)",
                (state, cutoff, chunk),
            ).rowcount
        # Read ids are UUIDv7, ordered by time, so the primary key finds the old ones;
        # a read's movements are the seq range stored with it, found by the movements' key.
        n += conn.execute(
            "DELETE FROM reads WHERE id IN (SELECT r.id FROM reads r WHERE r.id < ?"
            " AND (r.first_seq IS NULL OR NOT EXISTS (SELECT 1 FROM movements m"
            " WHERE m.seq BETWEEN r.first_seq AND r.last_seq)) LIMIT ?)",
            (uuid7_floor(cutoff), chunk),
        ).rowcount
        return int(n)
