"""Opening (check, migrate, claim for one agent) and closing the outbox file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any, Self

from agent.errors import OutboxDamaged, OutboxError
from agent.outbox.core import OutboxCore
from agent.outbox.queries import connect, next_seq
from agent.outbox.schema import migrate
from agent.outbox.settled import finish_settled
from agent.outbox.writer import Writer, map_sqlite_error

_HEADROOM_MIN = 1 << 20  # bytes past the soft cap kept free for marking and pruning


class Lifecycle(OutboxCore):
    """Open with `open(...)`; close with `close()` (or use `async with`)."""

    @classmethod
    def open(cls, path: Path, agent_id: str, max_bytes: int, **kwargs: Any) -> Self:
        box = cls(Path(path), agent_id, max_bytes, **kwargs)
        box._open()
        return box

    def _open(self) -> None:
        if self._state != "unopened":
            raise OutboxError(f"outbox {self.path} was already {self._state}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission: say which folder
            raise OutboxError(
                f"outbox {self.path}: cannot create its folder {self.path.parent} ({exc.strerror})"
            ) from exc
        self._lock.acquire()
        try:
            self._open_locked()
        except BaseException:
            self._lock.release()
            raise

    def _open_locked(self) -> None:
        try:
            conn = connect(self.path)
            check = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise OutboxDamaged(self._damaged_message(str(exc))) from exc
        if [tuple(r) for r in check] != [("ok",)]:
            conn.close()
            raise OutboxDamaged(self._damaged_message("; ".join(str(r[0]) for r in check[:5])))
        try:
            migrate(conn, str(self.path))
            self._page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            headroom = max(self.max_bytes // 20, _HEADROOM_MIN)
            conn.execute(
                f"PRAGMA max_page_count = {(self.max_bytes + headroom) // self._page_size}"
            )
            self._claim_agent(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise map_sqlite_error(exc, str(self.path)) from exc
        except OutboxError:
            conn.close()
            raise
        self._wconn = conn
        self._rconn = connect(self.path)
        self._rconn.execute("PRAGMA query_only = ON")
        self._writer = Writer(conn, str(self.path), self._group_max)
        self._writer.start()
        self._state = "open"

    def _damaged_message(self, detail: str) -> str:
        return (
            f"outbox {self.path} is damaged ({detail}). Stop the agent, move the file aside "
            f"(keep it: `sqlite3 {self.path} .recover` can save what it holds), and start "
            "again with a new outbox"
        )

    def _claim_agent(self, conn: sqlite3.Connection) -> None:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        owner = rows.get("agent")
        if owner is not None and owner != self.agent_id:
            raise OutboxError(
                f"outbox {self.path} belongs to agent {owner!r}, but the config says "
                f"{self.agent_id!r}; an outbox keeps one agent's sequence: use another file"
            )
        if owner is None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO meta(key, value) VALUES ('agent', ?)", (self.agent_id,))
            conn.execute("COMMIT")
        self._next_seq = next_seq(conn)
        # A previous run may have sent anything it held (a lost answer, a kill -9):
        # all of it counts as handed out, so a CANCEL reverses it rather than
        # cancelling what the ledger may have applied.
        self._handed_out = self._next_seq - 1
        self._reconcile(conn)
        self.pending_count = conn.execute(
            "SELECT count(*) FROM movements WHERE state = 'pending'"
        ).fetchone()[0]

    def _reconcile(self, conn: sqlite3.Connection) -> None:
        """Settle what every configured sink has (a sink was taken out of the config
        while others had delivered), and count per sink what it has of the rest."""
        self._has_deliveries = (
            conn.execute("SELECT 1 FROM deliveries LIMIT 1").fetchone() is not None
        )
        if not self._has_deliveries:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            marks = ",".join("?" * len(self.sinks))
            done = conn.execute(
                f"SELECT d.seq FROM movements m JOIN deliveries d ON d.seq = m.seq"
                f" WHERE m.state = 'pending' AND d.sink IN ({marks})"
                f" GROUP BY d.seq HAVING count(*) = ?",
                (*self.sinks, len(self.sinks)),
            ).fetchall()
            finish_settled(conn, [s for (s,) in done], self.sinks, self._wall())
            for sink, n in conn.execute(
                "SELECT d.sink, count(*) FROM movements m JOIN deliveries d ON d.seq = m.seq"
                " WHERE m.state = 'pending' GROUP BY d.sink"
            ):
                if sink in self._done_pending:
                    self._done_pending[sink] = n
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Finish queued writes, checkpoint the WAL and close. A closed outbox stays closed."""
        if self._state != "open":
            self._state = "closed"
            return
        assert self._writer is not None and self._wconn is not None and self._rconn is not None
        self._writer.stop()
        # A read still running in a worker thread (a sync loop's pending(), its awaiting
        # task cancelled at shutdown) finishes first: a connection closed under a running
        # statement crashes the process (SIGSEGV, seen twice in a full-suite run).
        with self._rlock:
            self._rconn.close()
        # A checkpoint is an optimisation; the WAL is replayed on the next open anyway.
        with contextlib.suppress(sqlite3.Error):
            self._wconn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._wconn.close()
        self._lock.release()
        self._state = "closed"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)
