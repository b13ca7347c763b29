"""agent/outbox on real SQLite files: gapless seqs, atomic commits, the cap, settling,
pruning, ownership, damage, migrations and PRAGMAs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.clock import Uuid7
from agent.errors import OutboxDamaged, OutboxError, OutboxFull
from agent.model import ClockStamp, Item, Movement, Read
from agent.outbox import Commit, Outbox, Stored
from agent.outbox.schema import MIGRATIONS
from agent.status import outbox_status

AGENT = "dock-3"
GTIN = "09506000134352"
T0 = 1_780_000_000.0
BIG = 64 * 2**20
_ids = Uuid7(lambda: T0)  # ids from the same wall time the outbox is given


class Wall:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_read(data: bytes = b"0109506000134352\x1d10LOT42", **fields: Any) -> Read:
    values: dict[str, Any] = {
        "id": _ids.new(),
        "device": "scanner-1",
        "kind": "barcode",
        "data": data,
        "observed_at": "2026-05-01T10:00:00.000000Z",
        "mono_ns": 1,
        "boot_id": "boot-1",
    }
    values.update(fields)
    return Read(**values)


def make_movement(**fields: Any) -> Movement:
    values: dict[str, Any] = {
        "id": _ids.new(),
        "agent": AGENT,
        "kind": "receive",
        "item": Item(gtin=GTIN, lot="LOT42"),
        "qty": 1,
        "station": "recv-1",
        "device": "scanner-1",
        "observed_at": "2026-05-01T10:00:00.000000Z",
        "clock": ClockStamp(synced=True, boot_id="boot-1", mono_ns=1),
        "to": "DOCK-3",
        "ref": {"po": "4500012345"},
    }
    values.update(fields)
    return Movement(**values)


def make_commit(n: int = 2, **fields: Any) -> Commit:
    return Commit(make_read(), tuple(make_movement() for _ in range(n)), **fields)


def seqs(results: list[Stored]) -> list[int]:
    out = []
    for r in results:
        assert r.error is None, r.error
        out.extend(m.seq for m in r.movements if m.seq is not None)
    return out


def pending_seqs(box: Outbox) -> list[int]:
    return [p.seq for p in box.pending(limit=10**9, max_bytes=10**12)]


def query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Look at the file through a connection of the test's own."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.db"


@pytest.fixture
async def box(path: Path) -> AsyncIterator[Outbox]:
    box = Outbox.open(path, AGENT, BIG)
    try:
        yield box
    finally:
        box.close()


# ---- storing and seq ------------------------------------------------------------------


async def test_seqs_are_gapless_across_close_and_reopen(path: Path) -> None:
    box = Outbox.open(path, AGENT, BIG)
    commits = [make_commit(2) for _ in range(3)]
    results = await box.store(commits)
    assert seqs(results) == [1, 2, 3, 4, 5, 6]
    numbers = iter(range(1, 7))
    for commit, result in zip(commits, results, strict=True):
        assert result.movements == tuple(m.with_seq(next(numbers)) for m in commit.movements)
    box.close()

    box = Outbox.open(path, AGENT, BIG)
    try:
        assert seqs(await box.store([make_commit(2)])) == [7, 8]
        assert pending_seqs(box) == list(range(1, 9))
        assert box.stats().next_seq == 9
    finally:
        box.close()


async def test_stored_payload_is_the_movement_json_with_its_seq(box: Outbox) -> None:
    commit = make_commit(2)
    (result,) = await box.store([commit])
    pending = box.pending()
    assert [Movement.from_json(p.payload) for p in pending] == [
        m.with_seq(i) for i, m in enumerate(commit.movements, start=1)
    ]
    assert [p.id for p in pending] == [m.id for m in commit.movements]
    assert list(result.movements) == [Movement.from_json(p.payload) for p in pending]


async def test_read_is_stored_with_its_raw_bytes(box: Outbox, path: Path) -> None:
    data = b"\x000109506000134352\x1d10LOT\xff"
    read = make_read(data, symbology="]C1", antenna=2, rssi=-55.5, seen_count=3)
    await box.store([Commit(read, (make_movement(),), outcome="good")])
    rows = query(
        path,
        "SELECT data, symbology, antenna, rssi, seen_count, outcome FROM reads WHERE id = ?",
        read.id,
    )
    assert rows == [(data, "]C1", 2, -55.5, 3, "good")]
    assert query(path, "SELECT read_id FROM movements") == [(read.id,)]


async def test_a_tag_read_keeps_the_readers_own_times(box: Outbox, path: Path) -> None:
    """Both paths: a read that moved nothing (stored in bulk) and one with a movement."""
    times = {
        "reader_first_seen_us": 1_790_000_000_000_001,
        "reader_last_seen_us": 1_790_000_000_250_000,
        "reader_offset_us": -1_234,
    }
    plain = make_read(b"\x30\x14" + bytes(10), antenna=3, **times)
    moved = make_read(b"\x30\x14" + bytes(9) + b"\x01", antenna=4, **times)
    await box.store([Commit(plain, (), outcome="good"), Commit(moved, (make_movement(),))])
    rows = query(
        path,
        "SELECT reader_first_seen_us, reader_last_seen_us, reader_offset_us FROM reads ORDER BY id",
    )
    assert rows == [tuple(times.values())] * 2


async def test_a_read_without_movements_and_movements_without_a_read(
    box: Outbox, path: Path
) -> None:
    results = await box.store(
        [Commit(make_read(b"hello"), (), outcome="bad: unknown"), Commit(None, (make_movement(),))]
    )
    assert [r.error for r in results] == [None, None]
    assert seqs(results) == [1]
    assert query(path, "SELECT count(*) FROM reads") == [(1,)]
    assert query(path, "SELECT read_id FROM movements") == [(None,)]


async def test_refused_commit_leaves_no_seq_gap(box: Outbox, path: Path) -> None:
    first = make_commit(2)
    await box.store([first])
    duplicate_read = Commit(first.read, (make_movement(), make_movement()))
    results = await box.store([make_commit(1), duplicate_read, make_commit(2)])
    assert results[0].movements[0].seq == 3
    assert isinstance(results[1].error, OutboxError)
    assert results[1].movements == ()
    assert [m.seq for m in results[2].movements] == [4, 5]
    assert seqs(await box.store([make_commit(1)])) == [6]
    assert pending_seqs(box) == [1, 2, 3, 4, 5, 6]
    assert query(path, "SELECT count(*) FROM reads") == [(4,)]


async def _store_allowing_refusal(box: Outbox, commits: list[Commit]) -> list[int]:
    """Store; a refusal may be reported per commit or raised. Return the seqs stored."""
    try:
        results = await box.store(commits)
    except (OutboxError, TypeError, ValueError):
        return []
    return [m.seq for r in results for m in r.movements if m.seq is not None]


async def test_movement_for_another_agent_leaves_no_seq_gap(box: Outbox) -> None:
    theirs = make_movement(agent="dock-9")
    stored = await _store_allowing_refusal(box, [Commit(make_read(), (make_movement(), theirs))])
    assert stored == []
    assert pending_seqs(box) == []
    assert seqs(await box.store([make_commit(1)])) == [1]


async def test_movement_that_is_not_json_leaves_no_seq_gap(box: Outbox) -> None:
    bad = make_movement(evidence={"raw": b"\x1d not JSON"})
    stored = await _store_allowing_refusal(box, [Commit(make_read(), (make_movement(), bad))])
    assert stored == []
    assert seqs(await box.store([make_commit(1)])) == [1]


async def test_state_that_is_not_json_leaves_no_seq_gap(box: Outbox) -> None:
    commit = make_commit(2, state={"recv-1": {"seen": {1, 2}}})
    stored = await _store_allowing_refusal(box, [commit])
    assert stored == []
    assert box.station_state() == {}
    assert seqs(await box.store([make_commit(1)])) == [1]


async def test_concurrent_stores_all_succeed_with_unique_gapless_seqs(box: Outbox) -> None:
    calls = [[make_commit(1 + (i % 3)) for _ in range(1 + i % 4)] for i in range(40)]
    results = await asyncio.gather(*(box.store(c) for c in calls))
    all_seqs = []
    for commits, stored in zip(calls, results, strict=True):
        got = seqs(stored)
        assert got == sorted(got)
        assert len(got) == sum(len(c.movements) for c in commits)
        all_seqs.extend(got)
    assert sorted(all_seqs) == list(range(1, len(all_seqs) + 1))
    assert pending_seqs(box) == list(range(1, len(all_seqs) + 1))
    by_id = {m.id: m.seq for stored in results for r in stored for m in r.movements}
    assert {p.id: p.seq for p in box.pending(limit=10**6, max_bytes=10**9)} == by_id


# ---- station state ------------------------------------------------------------------------


async def test_station_state_set_and_delete_persist_across_reopen(path: Path) -> None:
    box = Outbox.open(path, AGENT, BIG)
    await box.store(
        [
            make_commit(
                1,
                state={
                    "recv-1": {"po": "PO-1", "next_qty": 5, "session": {"open": True, "n": [1, 2]}},
                    "recv-2": {"po": "PO-2"},
                },
            )
        ]
    )
    await box.store([Commit(make_read(b"END"), (), state={"recv-1": {"next_qty": None}})])
    box.close()
    box = Outbox.open(path, AGENT, BIG)
    try:
        assert box.station_state() == {
            "recv-1": {"po": "PO-1", "session": {"open": True, "n": [1, 2]}},
            "recv-2": {"po": "PO-2"},
        }
        await box.store([Commit(None, (), state={"recv-2": {"po": None}})])
        assert box.station_state() == {
            "recv-1": {"po": "PO-1", "session": {"open": True, "n": [1, 2]}}
        }
    finally:
        box.close()


async def test_station_state_is_committed_atomically_with_the_movements(
    box: Outbox, path: Path
) -> None:
    taken = make_movement()
    await box.store([Commit(make_read(), (taken,), state={"recv-1": {"po": "PO-1"}})])
    clash = Commit(
        make_read(),
        (make_movement(), taken),  # the same movement id again: the whole commit is refused
        state={"recv-1": {"po": "PO-2", "next_qty": 3}},
    )
    (result,) = await box.store([clash])
    assert isinstance(result.error, OutboxError)
    assert box.station_state() == {"recv-1": {"po": "PO-1"}}
    assert pending_seqs(box) == [1]
    assert query(path, "SELECT count(*) FROM reads") == [(1,)]


# ---- the cap ----------------------------------------------------------------------------


async def test_at_the_cap_reads_are_refused_nothing_is_lost_and_pruning_frees_room(
    path: Path,
) -> None:
    wall = Wall()
    box = Outbox.open(path, AGENT, 256 * 1024, retention_days=0, wall=wall)
    try:
        stored: dict[int, Movement] = {}
        refused: Stored | None = None
        while refused is None:
            assert len(stored) < 10_000, "the cap never refused anything"
            for result in await box.store([make_commit(2) for _ in range(10)]):
                if result.error is not None:
                    refused = result
                    break
                stored.update({m.seq: m for m in result.movements if m.seq is not None})
        assert isinstance(refused.error, OutboxFull)
        assert "cap" in str(refused.error)
        assert refused.movements == ()
        last = max(stored)
        assert sorted(stored) == list(range(1, last + 1))

        # still refusing, and what is held is all there and pending
        (again,) = await box.store([make_commit(1)])
        assert isinstance(again.error, OutboxFull)
        pending = box.pending(limit=10**6, max_bytes=10**9)
        assert [p.seq for p in pending] == list(range(1, last + 1))
        assert {p.seq: Movement.from_json(p.payload) for p in pending} == stored
        stats = box.stats()
        assert (stats.pending, stats.delivered, stats.rejected) == (last, 0, 0)

        # the ledger takes most of the backlog; retention 0 lets it be pruned
        delivered = list(range(1, last - 9))
        assert await box.settle([(s, "delivered", None) for s in delivered]) == len(delivered)
        wall.now += 1
        assert await box.prune() >= len(delivered)
        assert box.used_bytes() < 256 * 1024

        # new reads are accepted again, with the next seq: the refusals left no gap
        assert seqs(await box.store([make_commit(2)])) == [last + 1, last + 2]
        assert pending_seqs(box) == [*range(last - 9, last + 1), last + 1, last + 2]
    finally:
        box.close()


async def test_a_commit_larger_than_the_headroom_is_refused_as_full_without_a_gap(
    path: Path,
) -> None:
    box = Outbox.open(path, AGENT, 256 * 1024)
    try:
        # ~1.3 MB in ten movements, each under the per-movement evidence cap
        huge = [make_movement(evidence={f"k{i}": "x" * 500 for i in range(250)}) for _ in range(10)]
        error: Exception | None
        try:
            (result,) = await box.store([Commit(make_read(), (make_movement(), *huge))])
            error = result.error
        except OutboxFull as exc:  # SQLite may roll back the whole group on SQLITE_FULL
            error = exc
        assert isinstance(error, OutboxFull)
        assert pending_seqs(box) == []
        assert seqs(await box.store([make_commit(1)])) == [1]
    finally:
        box.close()


# ---- settling, failures, pending, pruning --------------------------------------------------


async def test_settle_changes_states_and_records_last_success(path: Path) -> None:
    wall = Wall()
    box = Outbox.open(path, AGENT, BIG, wall=wall)
    try:
        await box.store([make_commit(2), make_commit(2)])
        wall.now = T0 + 5
        changed = await box.settle([(1, "delivered", None), (2, "rejected", "unknown GTIN")])
        assert changed == 2
        assert pending_seqs(box) == [3, 4]
        stats = box.stats()
        assert (stats.pending, stats.delivered, stats.rejected) == (2, 1, 1)
        assert box.sync_state().last_success_at == T0 + 5
        assert query(path, "SELECT seq, state, last_error, settled_at FROM movements ORDER BY seq")[
            :2
        ] == [(1, "delivered", None, T0 + 5), (2, "rejected", "unknown GTIN", T0 + 5)]
        # settled movements stay as they were
        assert await box.settle([(1, "rejected", "late"), (2, "delivered", None)]) == 0
        assert query(path, "SELECT state FROM movements WHERE seq <= 2 ORDER BY seq") == [
            ("delivered",),
            ("rejected",),
        ]
        with pytest.raises(OutboxError, match="cannot settle movement 3 as 'pending'"):
            await box.settle([(3, "pending", None)])
        assert pending_seqs(box) == [3, 4]
    finally:
        box.close()


async def test_record_failure_persists_backoff_and_settle_resets_it(path: Path) -> None:
    wall = Wall()
    box = Outbox.open(path, AGENT, BIG, wall=wall)
    await box.store([make_commit(2)])
    await box.record_failure([1, 2], "connection refused", attempts=3, next_attempt_at=T0 + 60)
    await box.record_failure([1], "timed out", attempts=4, next_attempt_at=T0 + 120)
    box.close()

    box = Outbox.open(path, AGENT, BIG, wall=wall)
    try:
        state = box.sync_state()
        assert (state.attempts, state.next_attempt_at) == (4, T0 + 120)
        assert (state.last_error, state.last_error_at) == ("timed out", T0)
        assert state.last_success_at is None
        assert query(path, "SELECT seq, attempts, last_error FROM movements ORDER BY seq") == [
            (1, 2, "timed out"),
            (2, 1, "connection refused"),
        ]
        assert pending_seqs(box) == [1, 2]
        wall.now = T0 + 200
        await box.settle([(1, "delivered", None)])
        state = box.sync_state()
        assert (state.attempts, state.next_attempt_at, state.last_success_at) == (0, None, T0 + 200)
        assert box.sync_state("epcis").attempts == 0  # another sink has its own state
    finally:
        box.close()


async def test_pending_respects_order_limit_bytes_and_skips_settled(box: Outbox) -> None:
    await box.store([make_commit(2) for _ in range(5)])  # seqs 1..10
    await box.settle([(2, "rejected", "bad"), (5, "delivered", None)])
    assert pending_seqs(box) == [1, 3, 4, 6, 7, 8, 9, 10]
    assert [p.seq for p in box.pending(limit=3)] == [1, 3, 4]
    assert [p.seq for p in box.pending(after_seq=4, limit=2)] == [6, 7]
    assert box.pending(after_seq=10) == []
    sizes = {p.seq: len(p.payload) for p in box.pending()}
    three = sizes[1] + sizes[3] + sizes[4]
    assert [p.seq for p in box.pending(max_bytes=three)] == [1, 3, 4]
    assert [p.seq for p in box.pending(max_bytes=three - 1)] == [1, 3]
    assert [p.seq for p in box.pending(after_seq=4, limit=2, max_bytes=10**6)] == [6, 7]
    # one movement bigger than max_bytes still comes out alone, or it would block the rest
    assert [p.seq for p in box.pending(max_bytes=1)] == [1]


async def test_pending_carries_created_at(path: Path) -> None:
    wall = Wall()
    box = Outbox.open(path, AGENT, BIG, wall=wall)
    try:
        await box.store([make_commit(1)])
        wall.now = T0 + 30
        await box.store([make_commit(1)])
        assert [p.created_at for p in box.pending()] == [T0, T0 + 30]
        assert box.stats().oldest_pending_created_at == T0
    finally:
        box.close()


async def test_prune_keeps_pending_rejected_and_recent_delivered(path: Path) -> None:
    wall = Wall()
    box = Outbox.open(path, AGENT, BIG, retention_days=1, wall=wall)
    try:
        await box.store([make_commit(1) for _ in range(4)])  # seqs 1..4
        await box.store([Commit(make_read(b"hello"), ())])  # a read with no movement
        await box.settle([(1, "delivered", None), (2, "rejected", "bad")])
        wall.now = T0 + 86400 - 1
        await box.settle([(3, "delivered", None)])
        assert await box.prune() == 0  # nothing is past a day yet
        wall.now = T0 + 86400 + 1
        assert await box.prune() == 3  # movement 1, its read, and the read with no movement
        assert query(box.path, "SELECT seq, state FROM movements ORDER BY seq") == [
            (2, "rejected"),
            (3, "delivered"),
            (4, "pending"),
        ]
        assert box.stats().reads == 3
    finally:
        box.close()


# ---- ownership, closing, damage ---------------------------------------------------------


async def test_outbox_of_another_agent_is_refused_naming_both(path: Path) -> None:
    box = Outbox.open(path, AGENT, BIG)
    await box.store([make_commit(1)])
    box.close()
    with pytest.raises(OutboxError) as info:
        Outbox.open(path, "dock-9", BIG)
    assert "'dock-3'" in str(info.value) and "'dock-9'" in str(info.value)
    assert str(path) in str(info.value)
    box = Outbox.open(path, AGENT, BIG)  # the owner still opens it
    try:
        assert pending_seqs(box) == [1]
    finally:
        box.close()


async def test_closed_outbox_refuses_work(path: Path) -> None:
    box = Outbox.open(path, AGENT, BIG)
    box.close()
    box.close()  # closing twice is fine
    with pytest.raises(OutboxError, match="closed"):
        await box.store([make_commit(1)])
    with pytest.raises(OutboxError, match="closed"):
        box.pending()


async def test_async_with_closes(path: Path) -> None:
    async with Outbox.open(path, AGENT, BIG) as box:
        await box.store([make_commit(1)])
    with pytest.raises(OutboxError, match="closed"):
        box.stats()


async def test_flush_waits_for_queued_writes(box: Outbox) -> None:
    task = asyncio.ensure_future(box.store([make_commit(3)]))
    await asyncio.sleep(0)  # let the task queue its write
    await box.flush()
    assert task.done()
    assert pending_seqs(box) == [1, 2, 3]


async def test_garbage_over_the_middle_of_the_file_is_damage(path: Path) -> None:
    box = Outbox.open(path, AGENT, BIG)
    for _ in range(10):
        await box.store([make_commit(2) for _ in range(20)])
    box.close()
    assert not path.with_name(path.name + "-wal").exists() or (
        path.with_name(path.name + "-wal").stat().st_size == 0
    )
    size = path.stat().st_size
    assert size > 40 * 4096
    with path.open("r+b") as f:
        f.seek((size // 2) // 4096 * 4096)
        f.write(b"\xde\xad\xbe\xef" * (8 * 4096 // 4))
    with pytest.raises(OutboxDamaged) as info:
        Outbox.open(path, AGENT, BIG)
    message = str(info.value)
    assert str(path) in message
    assert "damaged" in message
    assert "move the file aside" in message
    assert f"sqlite3 {path} .recover" in message


@pytest.mark.parametrize(
    "content",
    [b"this is not an SQLite database, just text\n" * 200, b"SQLite format 3\x00" + b"\xff" * 8192],
    ids=["text", "bad-header"],
)
def test_a_file_that_is_not_sqlite_is_damage(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(OutboxDamaged) as info:
        Outbox.open(path, AGENT, BIG)
    assert "move the file aside" in str(info.value)
    assert path.read_bytes() == content  # refused, not overwritten


# ---- schema and connection -------------------------------------------------------------


async def test_migrations_are_recorded_once(path: Path) -> None:
    Outbox.open(path, AGENT, BIG).close()
    Outbox.open(path, AGENT, BIG).close()
    names = [name for name, _ in MIGRATIONS]
    assert query(path, "SELECT name FROM migrations ORDER BY name") == [(n,) for n in names]
    assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert query(path, "SELECT value FROM meta WHERE key = 'agent'") == [(AGENT,)]


def test_outbox_from_a_newer_version_is_refused(path: Path) -> None:
    Outbox.open(path, AGENT, BIG).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO migrations(name, applied_at) VALUES ('9999_future', 0)")
    conn.close()
    with pytest.raises(OutboxError, match=r"'9999_future'.*newer version"):
        Outbox.open(path, AGENT, BIG)


def test_writer_connection_pragmas(box: Outbox) -> None:
    def pragmas(tx: Any) -> dict[str, Any]:
        conn = tx.conn
        return {
            name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }

    assert box.submit_blocking(pragmas) == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": 10000,
    }


async def test_status_reads_while_the_writer_holds_a_transaction(box: Outbox, path: Path) -> None:
    await box.store([make_commit(2)])
    entered, release = threading.Event(), threading.Event()

    def hold(tx: Any) -> None:
        entered.set()
        release.wait(30)

    # A daemon thread: should the writer ever die, the test fails instead of hanging.
    holder = threading.Thread(target=box.submit_blocking, args=(hold,), daemon=True)
    holder.start()
    assert await asyncio.to_thread(entered.wait, 30)
    queued = asyncio.ensure_future(box.store([make_commit(1)]))
    try:
        status = await asyncio.wait_for(asyncio.to_thread(outbox_status, path, BIG, T0), 5)
        assert status["outbox"]["pending"] == 2
        assert status["outbox"]["next_seq"] == 3
        assert status["outbox"]["reads"] == 1
        assert status["sync"]["last_success_at"] is None
    finally:
        release.set()
        await asyncio.wait_for(queued, 30)
        await asyncio.to_thread(holder.join, 30)
    status = outbox_status(path, BIG, T0)
    assert (status["outbox"]["pending"], status["outbox"]["next_seq"]) == (3, 4)


async def test_status_reads_a_closed_outbox(path: Path) -> None:
    wall = Wall()
    box = Outbox.open(path, AGENT, BIG, wall=wall)
    await box.store([make_commit(2)])
    await box.settle([(1, "delivered", None)])
    box.close()
    status = outbox_status(path, BIG, now=T0 + 10)
    assert status["outbox"]["pending"] == 1
    assert status["outbox"]["delivered"] == 1
    assert status["outbox"]["oldest_pending_age_s"] == 10.0
    assert status["sync"]["last_success_age_s"] == 10.0


def test_status_of_a_missing_outbox(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="no outbox at"):
        outbox_status(tmp_path / "missing.db", BIG)


async def test_status_reads_an_outbox_whose_path_has_uri_characters(tmp_path: Path) -> None:
    path = tmp_path / "dock #3" / "outbox.db"
    box = Outbox.open(path, AGENT, BIG)
    try:
        await box.store([make_commit(2)])
        assert outbox_status(path, BIG, T0)["outbox"]["pending"] == 2
    finally:
        box.close()


def test_one_process_at_a_time_per_outbox(path: Path) -> None:
    """A second agent on the same file would hand out the same seqs: it is refused."""
    import os
    import subprocess
    import sys

    first = Outbox.open(path, "dock-3", 1 << 20)
    try:
        with pytest.raises(OutboxError, match=rf"in another process \(pid {os.getpid()}\)"):
            Outbox.open(path, "dock-3", 1 << 20)
        code = (
            "import sys; from pathlib import Path; from agent.outbox import Outbox;"
            "from agent.errors import OutboxError\n"
            "try: Outbox.open(Path(sys.argv[1]), 'dock-3', 1 << 20)\n"
            "except OutboxError as e: print(e); sys.exit(3)\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
        )
        assert other.returncode == 3, other.stderr
        assert "one agent per outbox" in other.stdout
    finally:
        first.close()
    again = Outbox.open(path, "dock-3", 1 << 20)  # released on close
    again.close()


def test_a_killed_agent_leaves_no_stale_lock(path: Path) -> None:
    import signal
    import subprocess
    import sys

    code = (
        "import sys, time; from pathlib import Path; from agent.outbox import Outbox\n"
        "Outbox.open(Path(sys.argv[1]), 'dock-3', 1 << 20); print('open', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(OutboxError, match="in another process"):
            Outbox.open(path, "dock-3", 1 << 20)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    Outbox.open(path, "dock-3", 1 << 20).close()


def test_an_outbox_whose_folder_is_a_file_is_our_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("")
    with pytest.raises(OutboxError, match=f"cannot create its folder {blocker}"):
        Outbox.open(blocker / "outbox.db", AGENT, BIG)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        (
            {"evidence": {"raw": "x" * (256 * 1024)}},
            "movement.evidence: 262154 bytes as JSON, at most 262144",
        ),
        ({"ref": {"po": "y" * 500, **{f"k{i}": "z" * 500 for i in range(8)}}}, "movement.ref:"),
        ({"ref": {"k" * 65: "1"}}, "longer than 64 characters"),
    ],
)
async def test_a_movement_over_the_ledgers_caps_is_refused_at_the_dock(
    box: Outbox, fields: dict[str, Any], needle: str
) -> None:
    """Refused with a reason when stored, not retried for ever against the ledger (issue 18)."""
    [result] = await box.store([Commit(make_read(), (make_movement(**fields),))])
    assert isinstance(result.error, OutboxError) and needle in str(result.error)
    assert result.movements == () and pending_seqs(box) == []
    assert seqs(await box.store([make_commit(1)])) == [1]
