"""Plain reads go in a report at a time: the same rows, values and types as one by one."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent.clock import Uuid7
from agent.errors import OutboxFull
from agent.model import Read
from agent.outbox import Commit, Outbox
from agent.outbox.plainrows import insert_plain
from agent.outbox.schema import MIGRATIONS
from agent.outbox.storing import _INSERT_READ, _read_row

T0 = 1_780_000_000.0
_ids = Uuid7(lambda: T0)


def schema(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for _, sql in MIGRATIONS:
        conn.executescript(sql)
    return conn


def rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every column with its SQLite type: a REAL stored as an INTEGER would show."""
    cols = [r[1] for r in conn.execute("PRAGMA table_info(reads)")]
    return conn.execute(
        f"SELECT {', '.join(f'{c}, typeof({c})' for c in cols)} FROM reads ORDER BY id"
    ).fetchall()


def report(n: int, device: str = "portal-1", at: str = "2026-05-01T10:00:00.000000Z") -> list:
    """``n`` tag reads of one report (they share device, time, boot and offset)."""
    return [
        (
            Read(
                id=_ids.new(),
                device=device,
                kind="tag",
                data=bytes([0x30, i % 256]) + bytes(10),
                observed_at=at,
                mono_ns=5,
                boot_id="boot-1",
                antenna=i % 4 + 1 if i % 7 else None,
                rssi=-50.5 - i if i % 5 else None,
                seen_count=i if i % 3 else None,
                reader_first_seen_us=1_790_000_000_000_000 + i if i % 2 else None,
                reader_last_seen_us=1_790_000_000_000_100 + i,
                reader_offset_us=-1_234,
            ),
            "tracked" if i % 4 else None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("sizes", [[1], [63], [64], [65], [100, 100], [127, 3, 130]])
def test_runs_of_every_length_store_what_one_by_one_stores(
    tmp_path: Path, sizes: list[int]
) -> None:
    reads = []
    for k, n in enumerate(sizes):  # each report has its own time: a run per report
        reads += report(n, device=f"portal-{k % 2}", at=f"2026-05-01T10:00:0{k}.000000Z")
    one, bulk = schema(tmp_path / "one.db"), schema(tmp_path / "bulk.db")
    one.executemany(_INSERT_READ, [_read_row(r, o, None, None, T0) for r, o in reads])
    insert_plain(bulk, [Commit(r, (), outcome=o) for r, o in reads], T0)
    assert len(rows(bulk)) == sum(sizes)
    assert rows(bulk) == rows(one)


def test_a_run_ends_where_a_shared_value_changes(tmp_path: Path) -> None:
    """Reads of one job from two reports interleaved: every row keeps its own report's values."""
    a, b = report(3, "portal-1"), report(3, "portal-2", at="2026-05-01T10:00:09.000000Z")
    reads = [a[0], b[0], a[1], b[1], b[2], a[2]]
    conn = schema(tmp_path / "bulk.db")
    insert_plain(conn, [Commit(r, (), outcome=o) for r, o in reads], T0)
    got = dict(conn.execute("SELECT id, device || ' ' || observed_at FROM reads").fetchall())
    assert got == {r.id: f"{r.device} {r.observed_at}" for r, _ in reads}


async def test_a_duplicate_id_in_a_run_refuses_that_read_only(tmp_path: Path) -> None:
    """The bulk statement fails as a whole; the careful pass keeps every other read."""
    box = Outbox.open(tmp_path / "outbox.db", "dock-3", 64 * 2**20)
    try:
        first = report(70)
        await box.store([Commit(r, (), outcome=o) for r, o in first[:1]])
        again = [Commit(r, (), outcome=o) for r, o in first]  # the first is stored already
        results = await box.store(again)
        assert [type(r.error).__name__ for r in results[:2]] == ["OutboxError", "NoneType"]
        assert all(r.error is None for r in results[1:])
    finally:
        box.close()
    conn = sqlite3.connect(tmp_path / "outbox.db")
    assert conn.execute("SELECT count(*) FROM reads").fetchone() == (70,)
    conn.close()


async def test_at_the_cap_a_plain_report_stores_what_fits_and_refuses_the_rest(
    tmp_path: Path,
) -> None:
    """A report that does not fit under the cap is not stored or refused as a whole: the
    reads before the cap are stored, those after are refused as full, none is lost."""
    path = tmp_path / "outbox.db"
    box = Outbox.open(path, "dock-3", 256 * 1024)
    kept: list[str] = []
    refused: list[str] = []
    try:
        while not refused:
            assert len(kept) < 100_000, "the cap never refused anything"
            commits = [Commit(r, (), outcome=o) for r, o in report(100)]
            for commit, result in zip(commits, await box.store(commits), strict=True):
                assert commit.read is not None
                if result.error is None:
                    assert not refused, "a read stored after one was refused"
                    kept.append(commit.read.id)
                else:
                    assert isinstance(result.error, OutboxFull), result.error
                    refused.append(commit.read.id)
    finally:
        box.close()
    conn = sqlite3.connect(path)
    ids = {row[0] for row in conn.execute("SELECT id FROM reads")}
    conn.close()
    assert ids == set(kept)
    assert len(kept) % 100, "the cap fell between reports: the last report was not split"
