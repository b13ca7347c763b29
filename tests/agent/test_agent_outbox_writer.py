"""agent/outbox/writer.py: the one writer commits queued jobs in groups, each job in its own
savepoint, and resolves futures only after COMMIT."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from agent.errors import OutboxError
from agent.outbox import connect
from agent.outbox.writer import Transaction, Writer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    conn = connect(path)
    conn.execute("CREATE TABLE t(x INTEGER NOT NULL)")
    conn.close()
    return path


@pytest.fixture
def writer(db: Path) -> Iterator[Writer]:
    conn = connect(db)
    w = Writer(conn, str(db))
    w.start()
    try:
        yield w
    finally:
        w.stop()
        conn.close()


def rows(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY rowid")]
    finally:
        conn.close()


def insert(x: int) -> Callable[[Transaction], int]:
    def job(tx: Transaction) -> int:
        tx.conn.execute("INSERT INTO t(x) VALUES (?)", (x,))
        return x

    return job


class Gate:
    """Holds the writer inside a job, so the jobs queued meanwhile form one group."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def job(self, tx: Transaction) -> None:
        self.entered.set()
        assert self.release.wait(30)


def hold(writer: Writer) -> tuple[Gate, Future[None]]:
    gate = Gate()
    held = writer.submit(gate.job)
    assert gate.entered.wait(30)
    return gate, held


def test_a_failing_job_does_not_affect_the_others_in_its_group(writer: Writer, db: Path) -> None:
    gate, held = hold(writer)
    undone: list[str] = []

    def failing(tx: Transaction) -> None:
        tx.on_rollback(lambda: undone.append("failing"))
        tx.conn.execute("INSERT INTO t(x) VALUES (99)")
        raise RuntimeError("boom")

    def keeps_undo(tx: Transaction) -> int:
        tx.on_rollback(lambda: undone.append("kept"))
        return insert(3)(tx)

    f1 = writer.submit(insert(1))
    f2 = writer.submit(failing)
    f3 = writer.submit(keeps_undo)
    assert writer.transactions == 0
    gate.release.set()
    held.result(30)
    assert f1.result(30) == 1
    with pytest.raises(RuntimeError, match="boom"):
        f2.result(30)
    assert f3.result(30) == 3
    assert writer.transactions == 2  # the held job's group, then f1..f3 together
    assert rows(db) == [1, 3]
    assert undone == ["failing"]  # only the failed job's in-memory state is undone


def test_a_job_with_an_sqlite_error_gets_our_error(writer: Writer, db: Path) -> None:
    gate, held = hold(writer)

    def bad_sql(tx: Transaction) -> None:
        tx.conn.execute("INSERT INTO nowhere VALUES (1)")

    def null(tx: Transaction) -> None:
        tx.conn.execute("INSERT INTO t(x) VALUES (NULL)")

    f1, f2, f3 = writer.submit(bad_sql), writer.submit(null), writer.submit(insert(7))
    gate.release.set()
    held.result(30)
    for future, text in ((f1, "no such table: nowhere"), (f2, "NOT NULL constraint failed")):
        with pytest.raises(OutboxError, match=text):
            future.result(30)
    assert f3.result(30) == 7
    assert rows(db) == [7]


def test_futures_resolve_after_commit_is_visible_to_another_connection(
    writer: Writer, db: Path
) -> None:
    for i in range(20):
        assert writer.submit(insert(i)).result(30) == i
        assert rows(db)[-1] == i  # a new connection sees it: it was committed


def test_lone_jobs_commit_one_transaction_each(writer: Writer) -> None:
    for i in range(5):
        writer.submit(insert(i)).result(30)
    assert writer.transactions == 5


def test_stop_finishes_what_is_queued_then_refuses(db: Path) -> None:
    conn = connect(db)
    w = Writer(conn, str(db), group_max=3)
    w.start()
    gate, held = hold(w)
    futures = [w.submit(insert(i)) for i in range(10)]
    gate.release.set()
    w.stop()
    assert [f.result(0) for f in futures] == list(range(10))
    assert held.done()
    with pytest.raises(OutboxError, match="closed"):
        w.submit(insert(11))
    w.stop()  # twice is fine
    conn.close()
    assert rows(db) == list(range(10))


def test_group_max_bounds_a_group(db: Path) -> None:
    conn = connect(db)
    w = Writer(conn, str(db), group_max=4)
    w.start()
    try:
        gate, held = hold(w)
        futures: list[Future[Any]] = [w.submit(insert(i)) for i in range(10)]
        gate.release.set()
        held.result(30)
        for f in futures:
            f.result(30)
        assert w.transactions == 1 + 3  # held alone, then 4 + 4 + 2
    finally:
        w.stop()
        conn.close()


def test_a_job_whose_caller_went_away_is_still_committed_and_the_writer_lives(
    writer: Writer, db: Path
) -> None:
    """A stopping daemon cancels the future of a commit it no longer waits for (the sync
    task's settle): the job still runs and commits, the writer resolves the others."""
    gate, held = hold(writer)
    gone = writer.submit(insert(1))
    assert gone.cancel()  # still queued: the caller goes away
    kept = writer.submit(insert(2))
    gate.release.set()
    held.result(30)
    assert kept.result(30) == 2
    assert writer.submit(insert(3)).result(30) == 3  # the thread is alive and serving
    assert writer.alive
    assert rows(db) == [1, 2, 3]
    assert gone.cancelled()


def test_a_lone_job_whose_caller_went_away_is_committed(writer: Writer, db: Path) -> None:
    gate, held = hold(writer)
    gone = writer.submit(insert(5))
    gone.cancel()
    gate.release.set()
    held.result(30)
    writer.submit(lambda tx: None).result(30)
    assert rows(db) == [5]
    assert writer.alive


def test_a_failing_job_whose_caller_went_away_rolls_back_cleanly(writer: Writer, db: Path) -> None:
    gate, held = hold(writer)

    def failing(tx: Transaction) -> None:
        tx.conn.execute("INSERT INTO t(x) VALUES (99)")
        raise RuntimeError("boom")

    gone = writer.submit(failing)
    gone.cancel()
    kept = writer.submit(insert(4))
    gate.release.set()
    held.result(30)
    assert kept.result(30) == 4
    assert rows(db) == [4]
    assert writer.alive
