"""CANCEL against a real outbox: cancel what the syncer never took, reverse the rest.

The race that matters: the syncer may hold a movement in a batch in flight
when CANCEL arrives; cancelling it then would let the ledger apply a movement
the agent thinks cancelled. These tests hand batches out through the same
``pending()`` the syncer uses.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from rules_desk import AGENT, Desk, gtin14, open_outbox, sgtin, station

from agent.migrations import migrate
from agent.outbox import Outbox
from agent.outbox.schema import MIGRATIONS

G1 = gtin14(1)


def rows(box: Outbox) -> dict[str, tuple[str, str | None]]:
    conn = sqlite3.connect(box.path)
    try:
        return {
            mid: (state, by)
            for mid, state, by in conn.execute("SELECT id, state, cancelled_by FROM movements")
        }
    finally:
        conn.close()


def test_cancel_before_delivery_keeps_the_record(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    try:
        desk = Desk([station("dock", "receiving")], outbox=box)
        (m,) = desk.moves(G1)
        assert box.pending_count == 1
        desk.scan("CANCEL")
        result = desk.stored[-1]
        assert result.cancel is not None and result.cancel.cancelled == (m.id,)
        assert result.movements == ()  # no reversal: the ledger never saw it
        assert result.cancel.describe() == "cancelled before delivery (1)"
        assert rows(box) == {m.id: ("cancelled", desk_read_id(box, "CANCEL"))}
        assert box.pending_count == 0 and box.pending() == []
    finally:
        box.close()


def desk_read_id(box: Outbox, data: str) -> str:
    conn = sqlite3.connect(box.path)
    try:
        (rid,) = conn.execute("SELECT id FROM reads WHERE data = ?", (data.encode(),)).fetchone()
        return str(rid)
    finally:
        conn.close()


def test_cancel_with_the_batch_in_flight_reverses(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    try:
        desk = Desk([station("dock", "receiving", location="DOCK-1")], outbox=box)
        (m,) = desk.moves(G1)
        batch = box.pending()  # the syncer took it; its request is on the wire
        assert [p.id for p in batch] == [m.id]
        desk.scan("CANCEL")
        result = desk.stored[-1]
        assert result.cancel is not None and result.cancel.reversed == (m.id,)
        (reversal,) = result.movements
        assert (reversal.kind, reversal.from_, reversal.qty) == ("ship", "DOCK-1", 1)
        assert reversal.ref["reverses"] == m.id and reversal.seq == batch[0].seq + 1
        assert rows(box)[m.id] == ("pending", None)  # the batch in flight is untouched
        box.settle_blocking([(p.seq, "delivered", None) for p in batch])
        assert [p.id for p in box.pending()] == [reversal.id]
    finally:
        box.close()


def test_cancel_after_delivery_reverses_and_a_count_is_refused(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    try:
        desk = Desk(
            [station("dock", "receiving"), station("cc", "count", devices=("d2",))], outbox=box
        )
        (m,) = desk.moves(G1)
        box.settle_blocking([(p.seq, "delivered", None) for p in box.pending()])
        desk.scan("CANCEL")
        assert desk.stored[-1].cancel.reversed == (m.id,)  # type: ignore[union-attr]
        desk.moves("LOC:A-01", G1, "END", device="d2")
        box.settle_blocking([(p.seq, "delivered", None) for p in box.pending()])
        desk.scan("CANCEL", device="d2")
        result = desk.stored[-1]
        assert result.cancel is not None and result.movements == ()
        assert (
            result.cancel.refused
            == (  # the count and the count_close after it
                "a delivered count cannot be reversed: count the location again",
            )
            * 2
        )
    finally:
        box.close()


def test_after_a_restart_everything_held_counts_as_sent(tmp_path: Path) -> None:
    """A lost answer or a kill -9 mid-request: the ledger may have it, so reverse."""
    box = open_outbox(tmp_path)
    desk = Desk([station("dock", "receiving")], outbox=box)
    (m,) = desk.moves(sgtin(1, "S1"))
    box.close()
    box = open_outbox(tmp_path)
    try:
        desk.outbox = box
        desk.restart()
        desk.scan("CANCEL")
        assert desk.stored[-1].cancel.reversed == (m.id,)  # type: ignore[union-attr]
        assert desk.moves(sgtin(1, "S1"))  # the serial may be received again
    finally:
        box.close()


def test_cancel_is_atomic_with_the_syncer_taking_batches(tmp_path: Path) -> None:
    """A syncer thread takes batches while scans and CANCELs are stored: nothing it
    was handed is ever cancelled, and everything is either cancelled or reversed."""
    box = open_outbox(tmp_path)
    handed: set[str] = set()
    stop = threading.Event()

    def syncer() -> None:
        while not stop.is_set():
            batch = box.pending(limit=5)
            handed.update(p.id for p in batch)
            box.settle_blocking([(p.seq, "delivered", None) for p in batch])

    thread = threading.Thread(target=syncer)
    thread.start()
    try:
        desk = Desk([station("dock", "receiving")], outbox=box)
        outcomes = []
        for i in range(300):
            (m,) = desk.moves(gtin14(i % 7 + 1))
            desk.scan("CANCEL")
            outcomes.append((m.id, desk.stored[-1].cancel))
    finally:
        stop.set()
        thread.join()
    try:
        states = rows(box)
        cancelled = {mid for mid, (state, _) in states.items() if state == "cancelled"}
        assert not cancelled & handed
        for mid, result in outcomes:
            assert result is not None
            assert (mid in result.cancelled) != (mid in result.reversed)
            assert (mid in cancelled) == (mid in result.cancelled)
    finally:
        box.close()


def test_migration_keeps_movements_and_allows_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:1], "old outbox", RuntimeError)
    conn.execute("INSERT INTO meta(key, value) VALUES ('agent', ?)", (AGENT,))
    conn.execute(
        "INSERT INTO movements(seq, id, kind, payload, state, created_at)"
        " VALUES (1, 'x', 'receive', '{}', 'delivered', 1.0)"
    )
    conn.close()
    box = Outbox.open(path, AGENT, 64 << 20)
    try:
        assert rows(box) == {"x": ("delivered", None)}
        assert box.stats().next_seq == 2
    finally:
        box.close()
