"""Storing reads with their movements, each in order with its gapless seqs.

A read and the movements it produced are stored in one transaction before the
operator hears the good-read beep. At the size cap new reads are refused
(``OutboxFull``); what is held is never dropped or overwritten.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from agent.errors import OutboxError, OutboxFull
from agent.model import Movement, Read, dumps
from agent.outbox.cancel import Cancelling
from agent.outbox.plainrows import insert_plain as insert_plain_rows
from agent.outbox.rows import (
    ROW_OVERHEAD,
    CancelResult,
    Careful,
    Commit,
    Done,
    Stored,
    render,
    reversals,
    stored_results,
)
from agent.outbox.writer import Transaction, map_sqlite_error

_INSERT_READ = (
    "INSERT INTO reads(id, device, kind, data, symbology, antenna, rssi, seen_count,"
    " observed_at, mono_ns, boot_id, outcome, first_seq, last_seq, created_at,"
    " reader_first_seen_us, reader_last_seen_us, reader_offset_us)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A read that moved nothing and changed no state (most RFID reads): stored with the
# others of its job by ``plainrows``, and answered with these shared records.
_PLAIN_DONE = Done(range(0), ())
_NO_BODIES: list[str] = []
_PLAIN_STORED = Stored()


def _plain(commit: Commit) -> bool:
    return (
        commit.read is not None and not commit.movements and not commit.state and not commit.cancel
    )


def _render(commits: Sequence[Commit]) -> list[list[str] | OutboxError] | None:
    """``render``, without its work for the commits that carry no movement: None
    when every commit is plain (an RFID report that moved nothing)."""
    if all(map(_plain, commits)):
        return None
    return render(commits)


def _results(commits: Sequence[Commit], done: list[Done | Exception]) -> list[Stored]:
    if all(d is _PLAIN_DONE for d in done):
        return [_PLAIN_STORED] * len(done)
    return stored_results(commits, done)


def _moved(results: list[Stored]) -> bool:
    """Whether a result holds movements; the shared plain records (all or none) hold none."""
    if results and results[0] is _PLAIN_STORED:
        return False
    return any(r.movements for r in results)


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


class Storing(Cancelling):
    """The store job: a fast path for plain reads, a careful one when a statement fails."""

    async def store(self, commits: Sequence[Commit]) -> list[Stored]:
        """Store each read with its movements atomically; refused ones carry the reason."""
        rendered = _render(commits)
        try:
            seqs = await self._submit(lambda tx: self._store_job(tx, commits, rendered, False))
        except Careful:
            seqs = await self._submit(lambda tx: self._store_job(tx, commits, rendered, True))
        results = _results(commits, seqs)
        if _moved(results):
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
        rendered: list[list[str] | OutboxError] | None,
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
        plain: list[Commit] = []  # plain commits, their reads inserted together

        def insert_plain() -> None:
            try:
                insert_plain_rows(conn, plain, now)
            except sqlite3.Error as exc:
                raise Careful() from exc
            plain.clear()

        tx.on_rollback(functools.partial(self._rewind, self._next_seq, self.pending_count))
        if rendered is None and not careful:  # all plain: in bulk, if the cap allows them all
            size = len(commits) * ROW_OVERHEAD + sum(
                len(c.read.data) if c.read else 0 for c in commits
            )
            if used + size < self.max_bytes:
                plain.extend(commits)
                insert_plain()
                return [_PLAIN_DONE] * len(commits)
        if rendered is None:
            rendered = [_NO_BODIES] * len(commits)
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
            if not careful and read is not None and (payloads is _NO_BODIES or _plain(commit)):
                plain.append(commit)
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
