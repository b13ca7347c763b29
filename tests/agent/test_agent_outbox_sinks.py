"""agent/outbox with several sinks (migration 0004_sinks) on real SQLite files: each sink
takes its own movements, the summary state follows the slowest, pruning waits for every
sink, a sink taken out of the config holds nothing back, retry goes to who refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.migrations import migrate
from agent.outbox import Outbox
from agent.outbox.schema import MIGRATIONS
from agent.outbox.tools import list_movements, retry_rejected, table_lines
from tests.agent.test_agent_outbox import AGENT, BIG, T0, Wall, make_commit

TWO = ("ledger", "mqtt")


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def seqs_for(box: Outbox, sink: str) -> list[int]:
    return [p.seq for p in box.pending(limit=10**6, max_bytes=10**9, sink=sink)]


def states(path: Path) -> list[tuple[object, ...]]:
    return query(path, "SELECT seq, state, last_error FROM movements ORDER BY seq")


async def test_each_sink_takes_its_own_and_the_summary_waits_for_both(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox.open(path, AGENT, BIG, sinks=TWO)
    try:
        await box.store([make_commit(2), make_commit(2)])
        assert seqs_for(box, "ledger") == seqs_for(box, "mqtt") == [1, 2, 3, 4]
        # the ledger is ahead: mqtt (down) still has all four, the ledger none of 1..3
        assert await box.settle([(s, "delivered", None) for s in (1, 2, 3)], sink="ledger") == 3
        assert seqs_for(box, "ledger") == [4]
        assert seqs_for(box, "mqtt") == [1, 2, 3, 4]
        assert (box.sink_pending("ledger"), box.sink_pending("mqtt"), box.pending_count) == (
            1,
            4,
            4,
        )
        assert [s for s, *_ in states(path) if _[0] == "pending"] == [1, 2, 3, 4]
        # mqtt catches up, refusing 2: the summary of 2 names who refused and why
        await box.settle(
            [(1, "delivered", None), (2, "rejected", "too big"), (3, "delivered", None)],
            sink="mqtt",
        )
        assert states(path) == [
            (1, "delivered", None),
            (2, "rejected", "mqtt: too big"),
            (3, "delivered", None),
            (4, "pending", None),
        ]
        assert (box.sink_pending("ledger"), box.sink_pending("mqtt"), box.pending_count) == (
            1,
            1,
            1,
        )
        # an answer for what a sink already settled changes nothing
        assert await box.settle([(1, "rejected", "late")], sink="mqtt") == 0
        rows = list_movements(path, sinks=TWO)
        assert [(r["seq"], r["sinks"]) for r in rows] == [
            (1, {"ledger": "delivered", "mqtt": "delivered"}),
            (2, {"ledger": "delivered", "mqtt": "rejected"}),
            (3, {"ledger": "delivered", "mqtt": "delivered"}),
            (4, {"ledger": "pending", "mqtt": "pending"}),
        ]
        header = table_lines(rows)[0].split()
        assert header[-2:] == ["ledger", "mqtt"]
    finally:
        box.close()


async def test_pruning_keeps_a_movement_until_every_sink_has_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    wall = Wall()
    box = Outbox.open(path, AGENT, BIG, retention_days=0, wall=wall, sinks=TWO)
    try:
        await box.store([make_commit(3)])
        await box.settle([(1, "delivered", None), (2, "delivered", None)], sink="ledger")
        wall.now += 10
        await box.prune()
        assert [s for s, *_ in states(path)] == [1, 2, 3]  # mqtt has none of them yet
        await box.settle([(1, "delivered", None)], sink="mqtt")
        wall.now += 10
        await box.prune()
        assert [s for s, *_ in states(path)] == [2, 3]
        assert query(path, "SELECT seq, sink FROM deliveries ORDER BY seq, sink") == [(2, "ledger")]
    finally:
        box.close()


async def test_a_sink_taken_out_of_the_config_holds_nothing_back(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox.open(path, AGENT, BIG, sinks=TWO)
    await box.store([make_commit(2)])
    await box.settle([(1, "delivered", None), (2, "delivered", None)], sink="ledger")
    box.close()
    box = Outbox.open(path, AGENT, BIG, sinks=("ledger",))
    try:
        assert box.pending_count == 0
        assert [st for _, st, _ in states(path)] == ["delivered", "delivered"]
    finally:
        box.close()


async def test_a_sink_added_later_takes_what_is_still_pending(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox.open(path, AGENT, BIG)
    await box.store([make_commit(3)])
    await box.settle([(1, "delivered", None)])
    box.close()
    box = Outbox.open(path, AGENT, BIG, sinks=("ledger", "tryton"))
    try:
        assert seqs_for(box, "ledger") == [2, 3]
        assert seqs_for(box, "tryton") == [2, 3]  # not 1: every sink had it, it is history
    finally:
        box.close()


async def test_retry_goes_again_only_to_the_sink_that_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox.open(path, AGENT, BIG, sinks=TWO)
    await box.store([make_commit(2)])
    await box.settle([(1, "rejected", "unknown GTIN"), (2, "delivered", None)], sink="ledger")
    await box.settle([(1, "delivered", None), (2, "delivered", None)], sink="mqtt")
    assert states(path)[0] == (1, "rejected", "ledger: unknown GTIN")
    assert retry_rejected(box, None) == 1
    box.close()
    box = Outbox.open(path, AGENT, BIG, sinks=TWO)
    try:
        assert seqs_for(box, "ledger") == [1]
        assert seqs_for(box, "mqtt") == []
        assert (box.sink_pending("ledger"), box.sink_pending("mqtt")) == (1, 0)
        await box.settle([(1, "delivered", None)], sink="ledger")
        assert states(path)[0] == (1, "delivered", None)
    finally:
        box.close()


async def test_migration_keeps_the_single_sink_outbox_as_the_ledger_sinks(tmp_path: Path) -> None:
    """An outbox written before several sinks: pending stays pending for `ledger`,
    delivered stays delivered, rejected stays rejected with its reason."""
    path = tmp_path / "outbox.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:3], "old outbox", RuntimeError)
    conn.execute("INSERT INTO meta(key, value) VALUES ('agent', ?)", (AGENT,))
    for seq, state, error in [
        (1, "delivered", None),
        (2, "rejected", "no such item"),
        (3, "pending", "timed out"),
        (4, "pending", None),
    ]:
        conn.execute(
            "INSERT INTO movements(seq, id, kind, payload, state, last_error, created_at, settled_at)"
            " VALUES (?, ?, 'receive', '{}', ?, ?, ?, ?)",
            (seq, f"m{seq}", state, error, T0, None if state == "pending" else T0),
        )
    conn.execute(
        "INSERT INTO sync_state(sink, attempts, next_attempt_at) VALUES ('ledger', 7, ?)",
        (T0 + 60,),
    )
    conn.close()
    box = Outbox.open(path, AGENT, BIG)
    try:
        assert [n for (n,) in query(path, "SELECT name FROM migrations ORDER BY name")][
            -1
        ] == "0004_sinks"
        assert seqs_for(box, "ledger") == [3, 4]
        assert box.sync_state("ledger").attempts == 7
        assert [r["sinks"] for r in list_movements(path)] == [
            {"ledger": "delivered"},
            {"ledger": "rejected"},
            {"ledger": "pending"},
            {"ledger": "pending"},
        ]
    finally:
        box.close()
