"""The outbox: the only writer of the agent's SQLite file.

A read and the movements it produced are stored in one transaction before the
operator hears the good-read beep. Movements get the agent's next gapless
``seq`` in that same transaction. At the size cap new reads are refused
(``OutboxFull``); what is held is never dropped or overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import OutboxDamaged, OutboxError, OutboxFull
from agent.model import Movement, Read, dumps
from agent.outbox.lock import OutboxLock
from agent.outbox.queries import connect, next_seq, read_stats, read_sync_state
from agent.outbox.rows import (
    ROW_OVERHEAD,
    CancelResult,
    Careful,
    Commit,
    Done,
    OutboxStats,
    Pending,
    Stored,
    SyncState,
    render,
    reversals,
    stored_results,
    uuid7_floor,
)
from agent.outbox.schema import migrate
from agent.outbox.writer import Transaction, Writer, map_sqlite_error

T = TypeVar("T")
_HEADROOM_MIN = 1 << 20  # bytes past the soft cap kept free for marking and pruning
_INSERT_READ = (
    "INSERT INTO reads(id, device, kind, data, symbology, antenna, rssi, seen_count,"
    " observed_at, mono_ns, boot_id, outcome, first_seq, last_seq, created_at,"
    " reader_first_seen_us, reader_last_seen_us, reader_offset_us)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A read that moved nothing and changed no state (most RFID re-reads): stored in one
# executemany with the others of its job, and answered with these shared records.
_PLAIN_DONE = Done(range(0), ())
_PLAIN_STORED = Stored()


def _plain(commit: Commit) -> bool:
    return (
        commit.read is not None and not commit.movements and not commit.state and not commit.cancel
    )


def _render(commits: Sequence[Commit]) -> list[list[str] | OutboxError]:
    """``render``, without its work for the commits that carry no movement."""
    if all(map(_plain, commits)):
        return [[] for _ in commits]
    return render(commits)


def _results(commits: Sequence[Commit], done: list[Done | Exception]) -> list[Stored]:
    if all(d is _PLAIN_DONE for d in done):
        return [_PLAIN_STORED] * len(done)
    return stored_results(commits, done)


def _read_row(
    read: Read, outcome: str | None, first: int | None, last: int | None, now: float
) -> tuple[Any, ...]:
    return (
        read.id,
        read.device,
        read.kind,
        read.data,
        read.symbology,
        read.antenna,
        read.rssi,
        read.seen_count,
        read.observed_at,
        read.mono_ns,
        read.boot_id,
        outcome,
        first,
        last,
        now,
        read.reader_first_seen_us,
        read.reader_last_seen_us,
        read.reader_offset_us,
    )


class Outbox:
    """Open with `Outbox.open(...)`; close with `close()` (or use `async with`)."""

    def __init__(
        self,
        path: Path,
        agent_id: str,
        max_bytes: int,
        retention_days: float = 30.0,
        group_max: int = 512,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
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
        self._page_size = 4096
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        # CANCEL against the syncer (see _cancel): the highest seq ever handed to it,
        # and seqs cancelled by a transaction not yet committed, both under this lock.
        self._flight_lock = threading.Lock()
        self._handed_out = 0
        self._cancelling: set[int] = set()

    # ---- lifecycle -----------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, agent_id: str, max_bytes: int, **kwargs: Any) -> Outbox:
        box = cls(Path(path), agent_id, max_bytes, **kwargs)
        box._open()
        return box

    def _open(self) -> None:
        if self._state != "unopened":
            raise OutboxError(f"outbox {self.path} was already {self._state}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        self.pending_count = conn.execute(
            "SELECT count(*) FROM movements WHERE state = 'pending'"
        ).fetchone()[0]

    def close(self) -> None:
        """Finish queued writes, checkpoint the WAL and close. A closed outbox stays closed."""
        if self._state != "open":
            self._state = "closed"
            return
        assert self._writer is not None and self._wconn is not None and self._rconn is not None
        self._writer.stop()
        self._rconn.close()
        # A checkpoint is an optimisation; the WAL is replayed on the next open anyway.
        with contextlib.suppress(sqlite3.Error):
            self._wconn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._wconn.close()
        self._lock.release()
        self._state = "closed"

    async def __aenter__(self) -> Outbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

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

    async def store(self, commits: Sequence[Commit]) -> list[Stored]:
        """Store each read with its movements atomically; refused ones carry the reason."""
        rendered = _render(commits)
        try:
            seqs = await self._submit(lambda tx: self._store_job(tx, commits, rendered, False))
        except Careful:
            seqs = await self._submit(lambda tx: self._store_job(tx, commits, rendered, True))
        results = _results(commits, seqs)
        if any(r.movements for r in results):
            self._notify()
        return results

    def store_blocking(self, commits: Sequence[Commit]) -> list[Stored]:
        rendered = _render(commits)
        try:
            seqs = self.submit_blocking(lambda tx: self._store_job(tx, commits, rendered, False))
        except Careful:
            seqs = self.submit_blocking(lambda tx: self._store_job(tx, commits, rendered, True))
        return _results(commits, seqs)

    def _store_job(
        self,
        tx: Transaction,
        commits: Sequence[Commit],
        rendered: list[list[str] | OutboxError],
        careful: bool,
    ) -> list[Done | Exception]:
        """Store commits in order; each gets its seq range, or the reason it was refused.

        The fast path opens no savepoint per commit (SQLite would copy every
        touched page to a sub-journal). If a statement fails, the job raises
        Careful, the writer rolls it all back, and ``store`` runs it again
        with a savepoint per commit so only the failing one is refused.
        """
        conn = tx.conn
        out: list[Done | Exception] = []
        now = self._wall()
        used = self._used_bytes(conn)
        added = 0
        plain: list[tuple[Any, ...]] = []  # read rows of plain commits, inserted together

        def insert_plain() -> None:
            try:
                conn.executemany(_INSERT_READ, plain)
            except sqlite3.Error as exc:
                raise Careful() from exc
            plain.clear()

        tx.on_rollback(functools.partial(self._rewind, self._next_seq, self.pending_count))
        for commit, payloads in zip(commits, rendered, strict=True):
            if isinstance(payloads, OutboxError):
                out.append(payloads)
                continue
            if used + added >= self.max_bytes:
                if plain:
                    insert_plain()
                used, added = self._used_bytes(conn), 0  # the estimate said full: measure
                if used >= self.max_bytes:
                    out.append(
                        OutboxFull(
                            f"outbox {self.path} is at its cap of {self.max_bytes} bytes; "
                            "new reads are refused until the ledger takes the backlog"
                        )
                    )
                    continue
            read = commit.read
            if not careful and read is not None and _plain(commit):
                plain.append(_read_row(read, commit.outcome, None, None, now))
                out.append(_PLAIN_DONE)
                added += ROW_OVERHEAD + len(read.data)
                continue
            first = self._next_seq
            pending_before = self.pending_count
            if not careful:
                try:
                    done = self._store_one(tx, commit, payloads, now)
                except sqlite3.Error as exc:
                    raise Careful() from exc
            else:
                conn.execute("SAVEPOINT one")
                try:
                    done = self._store_one(tx, commit, payloads, now)
                except sqlite3.Error as exc:
                    if not conn.in_transaction:
                        raise
                    conn.execute("ROLLBACK TO one")
                    conn.execute("RELEASE one")
                    self._next_seq = first
                    self.pending_count = pending_before
                    out.append(map_sqlite_error(exc, str(self.path)))
                    continue
                conn.execute("RELEASE one")
            out.append(done)
            self.pending_count += self._next_seq - first
            added += (
                ROW_OVERHEAD
                + sum(map(len, payloads))
                + (len(commit.read.data) if commit.read else 0)
            )
        if plain:
            insert_plain()
        return out

    def _store_one(self, tx: Transaction, commit: Commit, payloads: list[str], now: float) -> Done:
        conn = tx.conn
        movements = list(commit.movements)
        bodies = payloads[: len(movements)]
        outcome = commit.outcome
        cancel: CancelResult | None = None
        marked: list[int] = []
        if commit.cancel:
            cancel, chosen, marked = self._cancel(tx, commit, now)
            reversal_bodies = payloads[len(movements) :]
            for reversal, body in zip(reversals(commit), reversal_bodies, strict=True):
                if reversal.id in chosen:
                    movements.append(reversal)
                    bodies.append(body)
            outcome = f"{outcome}: {cancel.describe()}" if outcome else cancel.describe()
        try:
            return self._insert(conn, commit, movements, bodies, outcome, cancel, now)
        except sqlite3.Error:
            for seq in marked:  # this commit is rolled back: its cancels never happened
                self._uncancel(seq)
            raise

    def _insert(
        self,
        conn: sqlite3.Connection,
        commit: Commit,
        movements: list[Movement],
        bodies: list[str],
        outcome: str | None,
        cancel: CancelResult | None,
        now: float,
    ) -> Done:
        read = commit.read
        first = self._next_seq
        n = len(movements)
        if read is not None:
            conn.execute(
                _INSERT_READ,
                _read_row(read, outcome, first if n else None, first + n - 1 if n else None, now),
            )
        read_id = read.id if read else None
        for movement, body in zip(movements, bodies, strict=True):
            if movement.agent != self.agent_id:
                raise OutboxError(f"movement {movement.id} is for agent {movement.agent!r}")
            seq = self._next_seq
            conn.execute(
                "INSERT INTO movements(seq, id, read_id, kind, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (seq, movement.id, read_id, movement.kind, f'{{"seq":{seq},{body[1:]}', now),
            )
            self._next_seq = seq + 1
        for station, changes in commit.state.items():
            for key, value in changes.items():
                if value is None:
                    conn.execute(
                        "DELETE FROM station_state WHERE station = ? AND key = ?", (station, key)
                    )
                else:
                    conn.execute(
                        "INSERT INTO station_state(station, key, value, updated_at)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT(station, key)"
                        " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        (station, key, dumps(value), now),
                    )
        return Done(range(first, self._next_seq), tuple(movements), cancel)

    def _cancel(
        self, tx: Transaction, commit: Commit, now: float
    ) -> tuple[CancelResult, set[str], list[int]]:
        """Cancel what the syncer was never given; reverse the rest. Returns reversal ids to store.

        The syncer takes movements in seq order through ``pending()``, which
        records the highest seq it handed out and skips seqs in
        ``_cancelling``, all under ``_flight_lock``. Deciding here under the
        same lock makes "cancel if never handed out, else reverse" atomic with
        respect to a batch being taken: a movement in a batch in flight (or
        sent before a restart, whose answer may be lost) is reversed, never
        cancelled behind the ledger's back. Nothing is deleted: a cancelled
        movement stays, in state ``cancelled`` with the cancelling read's id.
        """
        conn = tx.conn
        read_id = commit.read.id if commit.read else None
        cancelled: list[str] = []
        reversed_: list[str] = []
        refused: list[str] = []
        chosen: set[str] = set()
        marked: list[int] = []
        with self._flight_lock:
            for target in commit.cancel:
                row = conn.execute(
                    "SELECT seq, state FROM movements WHERE id = ?", (target.movement_id,)
                ).fetchone()
                if row is None:
                    refused.append(f"{target.movement_id} is no longer in the outbox")
                    continue
                seq, state = row
                if state == "pending" and seq > self._handed_out:
                    conn.execute(
                        "UPDATE movements SET state = 'cancelled', settled_at = ?,"
                        " cancelled_by = ? WHERE seq = ?",
                        (now, read_id, seq),
                    )
                    self._cancelling.add(seq)
                    marked.append(seq)
                    tx.on_rollback(functools.partial(self._uncancel, seq))
                    tx.on_commit(functools.partial(self._uncancel, seq))
                    self.pending_count -= 1
                    cancelled.append(target.movement_id)
                elif state in ("pending", "delivered"):
                    if target.reversal is None:
                        refused.append(target.why_not or f"{target.movement_id} cannot be reversed")
                    else:
                        chosen.add(target.reversal.id)
                        reversed_.append(target.movement_id)
                else:  # rejected or cancelled: it never changed the ledger
                    refused.append(f"{target.movement_id} was {state}: nothing to undo")
        return CancelResult(tuple(cancelled), tuple(reversed_), tuple(refused)), chosen, marked

    def _uncancel(self, seq: int) -> None:
        with self._flight_lock:
            self._cancelling.discard(seq)

    def _rewind(self, seq: int, pending: int) -> None:
        """Undo a rolled-back transaction's seq numbers (seq stays gapless) and backlog."""
        self._next_seq = min(self._next_seq, seq)
        self.pending_count = pending

    def _used_bytes(self, conn: sqlite3.Connection) -> int:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._page_size)

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
        conn = tx.conn
        now = self._wall()
        for seq, state, _ in rows:
            if state not in ("delivered", "rejected"):
                raise OutboxError(f"cannot settle movement {seq} as {state!r}")
        before = conn.total_changes
        conn.executemany(
            "UPDATE movements SET state = ?, settled_at = ?, last_error = ?"
            " WHERE seq = ? AND state = 'pending'",
            [(state, now, reason, seq) for seq, state, reason in rows],
        )
        changed = conn.total_changes - before
        pending_before = self.pending_count
        self.pending_count -= changed
        tx.on_rollback(lambda: setattr(self, "pending_count", pending_before))
        conn.execute(
            "INSERT INTO sync_state(sink, attempts, next_attempt_at, last_success_at)"
            " VALUES (?, 0, NULL, ?) ON CONFLICT(sink) DO UPDATE SET attempts = 0,"
            " next_attempt_at = NULL, last_success_at = excluded.last_success_at",
            (sink, now),
        )
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
        """Delete delivered movements past retention, and reads nothing refers to."""
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

    async def flush(self) -> None:
        """Wait until every write queued before this call is committed."""
        await self._submit(lambda tx: None)

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

    def pending(
        self, after_seq: int = 0, limit: int = 500, max_bytes: int = 1 << 20
    ) -> list[Pending]:
        """The next pending movements in seq order, at most ``limit`` and about ``max_bytes``."""

        def q(conn: sqlite3.Connection) -> list[Pending]:
            out: list[Pending] = []
            size = 0
            for seq, mid, payload, created_at, kind in conn.execute(
                "SELECT seq, id, payload, created_at, kind FROM movements WHERE state = 'pending' AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ):
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

    def stats(self) -> OutboxStats:
        return self._read(lambda conn: read_stats(conn, self.max_bytes))

    def used_bytes(self) -> int:
        return self._read(self._used_bytes)
