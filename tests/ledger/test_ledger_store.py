"""The store on both backends (a real SQLite file, a real PostgreSQL database): what each
movement does to on-hand and the journal."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import ledger.store.domain
from ledger.schema import LedgerError
from ledger.store import MAX_INT, VARIANCE_NS, LedgerStore, SqlStore

GTIN = "09506000134352"


def on_hand(store: SqlStore, location: str = "DOCK-3", item: str = GTIN) -> int:
    rows = store.stock(item, location)
    return rows[0]["qty"] if rows else 0


def statuses(results: list[dict[str, Any]]) -> list[str]:
    return [r["status"] for r in results]


def test_receive_ship_transfer_return_adjust(store: SqlStore, mv: Any) -> None:
    results = store.apply_batch(
        "dock-3",
        [
            mv("receive", 10),
            mv("ship", 3),
            mv("transfer", 4),
            mv("return", 2),
            mv("adjust", 5, to="A-01"),
            mv("adjust", 1, from_="A-01", to=None),
        ],
    )
    assert statuses(results) == ["applied"] * 6
    assert store.stock() == [
        {"item": GTIN, "location": "A-01", "qty": 4 + 5 - 1},
        {"item": GTIN, "location": "DOCK-3", "qty": 10 - 3 - 4 + 2},
    ]


def test_on_hand_is_kept_by_item_key(store: SqlStore, mv: Any) -> None:
    store.apply_batch(
        "dock-3",
        [
            mv("receive", 1, item={"sku": "SKU-1", "lot": "L1"}),
            mv("receive", 2, item={"sku": "SKU-1", "lot": "L2"}),
            mv("receive", 1, item={"epc": "urn:epc:id:sgtin:0614141.812345.6789"}),
        ],
    )
    assert {(r["item"], r["qty"]) for r in store.stock(location="DOCK-3")} == {
        ("SKU-1", 3),
        ("urn:epc:id:sgtin:0614141.812345.6789", 1),
    }


def test_ship_may_take_on_hand_negative(store: SqlStore, mv: Any) -> None:
    assert statuses(store.apply_batch("dock-3", [mv("ship", 5)])) == ["applied"]
    assert on_hand(store) == -5


@pytest.mark.parametrize(("before", "counted"), [(10, 7), (3, 8)])
def test_count_posts_variance_adjust(store: SqlStore, mv: Any, before: int, counted: int) -> None:
    store.apply_batch("dock-3", [mv("receive", before)])
    count = mv("count", counted)
    assert statuses(store.apply_batch("dock-3", [count])) == ["applied"]
    assert on_hand(store) == counted

    entries, _ = store.journal()
    assert [(e["kind"], e["source"]) for e in entries] == [
        ("receive", "agent"),
        ("count", "agent"),
        ("adjust", "ledger"),
    ]
    adjust = entries[-1]
    assert adjust["id"] == str(uuid.uuid5(VARIANCE_NS, count["id"]))
    assert adjust["qty"] == abs(counted - before)
    assert adjust["reason"] == "count-variance"
    assert adjust["evidence"]["caused_by"] == count["id"]
    if counted > before:
        assert (adjust["from"], adjust["to"]) == (None, "DOCK-3")
    else:
        assert (adjust["from"], adjust["to"]) == ("DOCK-3", None)
    assert store.caused_by(adjust["id"]) == count["id"]


def test_count_without_variance_posts_no_adjust(store: SqlStore, mv: Any) -> None:
    store.apply_batch("dock-3", [mv("receive", 4), mv("count", 4)])
    entries, _ = store.journal()
    assert [e["kind"] for e in entries] == ["receive", "count"]
    assert on_hand(store) == 4


def test_count_sent_again_posts_no_second_adjust(store: SqlStore, mv: Any) -> None:
    count = mv("count", 6)
    store.apply_batch("dock-3", [count])
    store.apply_batch("dock-3", [mv("receive", 1)])
    assert statuses(store.apply_batch("dock-3", [count])) == ["duplicate"]
    assert on_hand(store) == 7
    assert [e["kind"] for e in store.journal()[0]] == ["count", "adjust", "receive"]


def test_count_whose_variance_id_is_taken_is_rejected(store: SqlStore, mv: Any) -> None:
    count = mv("count", 6)
    squatter = mv("receive", 1, id=str(uuid.uuid5(VARIANCE_NS, count["id"])))
    results = store.apply_batch("dock-3", [squatter, count, mv("receive", 2)])
    assert statuses(results) == ["applied", "rejected", "applied"]
    assert on_hand(store) == 3


def test_same_batch_twice_is_all_duplicate(store: SqlStore, mv: Any) -> None:
    batch = [mv("receive", 5), mv("transfer", 2), mv("count", 1, to="A-01")]
    assert statuses(store.apply_batch("dock-3", batch)) == ["applied"] * 3
    stock, journal = store.stock(), store.journal()
    results = store.apply_batch("dock-3", batch)
    assert results == [{"id": m["id"], "status": "duplicate"} for m in batch]
    assert (store.stock(), store.journal()) == (stock, journal)


def test_same_id_twice_in_one_batch(store: SqlStore, mv: Any) -> None:
    m = mv("receive", 5)
    assert statuses(store.apply_batch("dock-3", [m, m])) == ["applied", "duplicate"]
    assert on_hand(store) == 5


def test_id_reused_for_a_different_movement_is_a_conflict(store: SqlStore, mv: Any) -> None:
    m = mv("receive", 5)
    store.apply_batch("dock-3", [m])
    journal = store.journal()
    [result] = store.apply_batch("dock-3", [{**m, "qty": 6}])
    assert result == {
        "id": m["id"],
        "status": "conflict",
        "reason": "id already used for a different movement",
    }
    assert on_hand(store) == 5 and store.journal() == journal  # nothing overwritten
    [alarm] = store.alarms()
    assert (alarm["agent"], alarm["kind"]) == ("dock-3", "conflict")
    assert m["id"] in alarm["detail"]
    [agent] = store.agents(silent_after_s=900)
    assert agent.last_error == f"movement {m['id']}: id already used for a different movement"
    store.apply_batch("dock-3", [{**m, "qty": 6}])
    assert len(store.alarms()) == 1  # sent again: the same alarm, not a second


def test_absent_defaults_are_the_same_movement(store: SqlStore, mv: Any) -> None:
    """Equality is on the canonical form: uom omitted and uom "EA" are one movement."""
    m = mv("receive", 5)
    store.apply_batch("dock-3", [m])
    assert statuses(store.apply_batch("dock-3", [{**m, "uom": "EA"}])) == ["duplicate"]


def test_rejection_does_not_touch_the_rest_of_the_batch(store: SqlStore, mv: Any) -> None:
    bad_qty = mv("receive", 0)
    results = store.apply_batch(
        "dock-3",
        [
            mv("receive", 2),
            bad_qty,
            "not an object",
            {"id": 7},
            mv("ship", 1, from_=None),
            mv("receive", 3),
        ],
    )
    assert statuses(results) == [
        "applied",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "applied",
    ]
    assert results[1] == {
        "id": bad_qty["id"],
        "status": "rejected",
        "reason": "movement.qty: expected an integer >= 1, got 0",
    }
    assert results[2]["id"] is None and results[3]["id"] is None
    assert "from" in results[4]["reason"]
    assert on_hand(store) == 5


def test_movement_for_another_agent_is_rejected(store: SqlStore, mv: Any) -> None:
    results = store.apply_batch("dock-3", [mv("receive", 1, agent="dock-4"), mv("receive", 2)])
    assert statuses(results) == ["rejected", "applied"]
    assert "dock-4" in results[0]["reason"]
    assert on_hand(store) == 2


def test_unexpected_failure_rolls_back_the_whole_batch(
    store: SqlStore, mv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ledger.store.domain._row
    calls = 0

    def fail_on_third(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk I/O error")
        return real(*args)

    monkeypatch.setattr(ledger.store.domain, "_row", fail_on_third)
    with pytest.raises(RuntimeError):
        store.apply_batch("dock-3", [mv("receive", 1), mv("receive", 2), mv("receive", 3)])
    assert store.stock() == [] and store.journal() == ([], 0)
    monkeypatch.undo()
    assert statuses(store.apply_batch("dock-3", [mv("receive", 4)])) == ["applied"]


@pytest.mark.parametrize(
    "item",
    [
        "'; DROP TABLE stock; --",
        'x" OR 1=1 --',
        "Robert'); DELETE FROM journal WHERE ('1'='1",
    ],
)
def test_sql_looking_item_is_data(store: SqlStore, mv: Any, item: str) -> None:
    store.apply_batch("dock-3", [mv("receive", 1, item={"sku": "plain"})])
    assert statuses(store.apply_batch("dock-3", [mv("receive", 2, item={"sku": item})])) == [
        "applied"
    ]
    assert on_hand(store, item=item) == 2
    assert on_hand(store, item="plain") == 1
    assert len(store.journal()[0]) == 2


def test_values_json_or_sqlite_cannot_hold_are_rejected(store: SqlStore, mv: Any) -> None:
    results = store.apply_batch(
        "dock-3",
        [
            mv("receive", MAX_INT + 1),
            mv("receive", 1, seq=2**63),
            mv("receive", 1, evidence={"rssi": float("nan")}),
            mv("receive", 1, station="\ud800"),
            mv("receive", MAX_INT),
            mv("receive", 1),
        ],
    )
    assert statuses(results) == ["rejected"] * 4 + ["applied", "rejected"]
    assert "would exceed" in results[-1]["reason"]
    assert on_hand(store) == MAX_INT


def test_journal_paging_and_agent_filter(store: SqlStore, mv: Any) -> None:
    store.add_agent("dock-4")
    batch = [mv("receive", 1) for _ in range(5)]
    ids = [m["id"] for m in batch]
    store.apply_batch("dock-3", batch)
    store.apply_batch("dock-4", [mv("receive", 1, agent="dock-4")])
    page, since = store.journal("dock-3", 0, 2)
    seen = [e["id"] for e in page]
    while page:
        page, since = store.journal("dock-3", since, 2)
        seen += [e["id"] for e in page]
    assert seen == ids
    assert store.journal("dock-3", since, 2) == ([], since)
    assert [e["agent"] for e in store.journal("dock-4")[0]] == ["dock-4"]
    with pytest.raises(ValueError):
        store.journal(limit=0)


def test_tokens(store: SqlStore) -> None:
    token = store.add_agent("dock-3")
    assert store.agent_for_token(token) == "dock-3"
    assert store.agent_for_token(token + "x") is None
    replaced = store.add_agent("dock-3")
    assert store.agent_for_token(token) is None
    assert store.agent_for_token(replaced) == "dock-3"


def test_sqlite_keeps_only_token_hashes(sqlite_store: LedgerStore, tmp_path: Path) -> None:
    token = sqlite_store.create_token("dock-3")
    sqlite_store.close()
    assert token.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_schema_pragmas_and_migrations(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with LedgerStore(path) as store:
        assert store._conn is not None
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with LedgerStore(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in conn.execute("SELECT name FROM migrations")] == [
            "0001_initial",
            "0002_fleet",
            "0003_users",
            "0004_epcis",
            "0005_scopes",
            "0006_valuation",
            "0007_val_writes",
        ]
        conn.execute("INSERT INTO migrations VALUES ('9999_future', 'x')")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(LedgerError, match="9999_future"):
        LedgerStore(path)


def test_closed_store_refuses(store: SqlStore, mv: Any) -> None:
    store.close()
    with pytest.raises(LedgerError, match="closed"):
        store.apply_batch("dock-3", [mv()])
    with pytest.raises(LedgerError, match="closed"):
        store.stock()


def test_concurrent_batches_from_threads(store: SqlStore, mv: Any) -> None:
    """Many threads, one writer: every unit lands once, none lost to a race."""
    batches = [[mv("receive", 1) for _ in range(20)] for _ in range(16)]
    errors: list[BaseException] = []

    def deliver(batch: list[Any]) -> None:
        try:
            for _ in range(2):  # the second delivery is all duplicates
                store.apply_batch("dock-3", batch)
            store.stock()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert on_hand(store) == 16 * 20
    assert len(store.journal(limit=1000)[0]) == 16 * 20
