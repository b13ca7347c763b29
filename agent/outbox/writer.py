"""The one writer: a thread that owns the write connection and commits in groups.

Work arrives on a queue (as in datasette's write thread). The thread takes
what is waiting, up to ``group_max`` jobs, and runs them in one
``BEGIN IMMEDIATE`` transaction, each job inside its own SAVEPOINT so that one
failing job does not take the others down. Futures are resolved only after
COMMIT has returned: what a caller was told is stored, is on disk.

A lone job commits at once; under a burst the queue fills while a commit is
in flight, so the next transaction carries many jobs for one fsync. A job
that fails alone rolls back the whole transaction (no savepoint is opened for
it); jobs that share a transaction each get a SAVEPOINT.

A job whose caller went away (its future cancelled while queued, as a
stopping daemon cancels the sync task's settle) still runs and commits or
rolls back like any other; only its answer is dropped. The future is marked
running when its group is taken (``set_running_or_notify_cancel``), so it can
no longer be cancelled under the writer and resolving it cannot fail.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agent.errors import OutboxError, OutboxFull

T = TypeVar("T")


class Transaction:
    """Hooks a job can use: ``on_rollback`` undoes in-memory state on failure,
    ``on_commit`` runs once COMMIT has returned (only for jobs that were kept)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._undo: list[Callable[[], None]] = []
        self._done: list[Callable[[], None]] = []

    def on_rollback(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def on_commit(self, fn: Callable[[], None]) -> None:
        self._done.append(fn)


Job = Callable[[Transaction], T]


@dataclass
class _Item(Generic[T]):
    job: Job[T]
    future: Future[T]
    waited: bool = True  # False: cancelled before the writer took it; nobody hears

    def take(self) -> None:
        self.waited = self.future.set_running_or_notify_cancel()

    def answer(self, ok: bool, value: Any) -> None:
        if not self.waited:
            return
        if ok:
            self.future.set_result(value)
        else:
            self.future.set_exception(value)


_STOP = object()


def map_sqlite_error(exc: sqlite3.Error, path: str) -> OutboxError:
    """Our error for SQLite's: a full disk or cap is OutboxFull, the rest OutboxError."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "full" in str(exc).lower():
        return OutboxFull(f"outbox {path}: the database or disk is full ({exc})")
    return OutboxError(f"outbox {path}: {exc}")


class Writer:
    """Owns the write connection and its thread; started and stopped by the Outbox."""

    def __init__(self, conn: sqlite3.Connection, path: str, group_max: int = 512) -> None:
        self._conn = conn
        self._path = path
        self._group_max = group_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="edgetally-outbox-writer")
        self._closed = False
        self.transactions = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job[T]) -> Future[T]:
        if self._closed:
            raise OutboxError(f"outbox {self._path} is closed")
        future: Future[T] = Future()
        self._queue.put(_Item(job, future))
        return future

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    @property
    def alive(self) -> bool:
        """Whether the writer thread is running (status and the tests look)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            group = [first]
            while len(group) < self._group_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
            for item in group:
                item.take()
            self._commit_group(group)

    def _commit_group(self, group: list[_Item[Any]]) -> None:
        conn = self._conn
        tx = Transaction(conn)
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_all(group, map_sqlite_error(exc, self._path), tx)
            return
        # A savepoint per job only when jobs share the transaction: an open
        # savepoint makes SQLite copy every page it touches to a sub-journal.
        shared = len(group) > 1
        for item in group:
            undo_mark = len(tx._undo)
            done_mark = len(tx._done)
            if shared:
                conn.execute("SAVEPOINT job")
            try:
                result = item.job(tx)
            except BaseException as exc:  # the job's error goes to its caller
                err = map_sqlite_error(exc, self._path) if isinstance(exc, sqlite3.Error) else exc
                if not shared or not conn.in_transaction:  # alone, or SQLite rolled back all
                    self._fail_all(group, err, tx)
                    return
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                for undo in reversed(tx._undo[undo_mark:]):
                    undo()
                del tx._undo[undo_mark:]
                del tx._done[done_mark:]
                outcomes.append((False, err))
            else:
                if shared:
                    conn.execute("RELEASE job")
                outcomes.append((True, result))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._fail_all(group, map_sqlite_error(exc, self._path), tx)
            return
        self.transactions += 1
        for fn in tx._done:
            fn()
        for item, (ok, value) in zip(group, outcomes, strict=True):
            item.answer(ok, value)

    def _fail_all(self, group: list[_Item[Any]], exc: BaseException, tx: Transaction) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        for undo in reversed(tx._undo):
            undo()
        for item in group:
            item.answer(False, exc)
