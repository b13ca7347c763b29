"""New valuation events are staged and folded into ``val_events`` in bulk: the same
movements, delivered out of order in many batches (late receipts re-costing events
still staged, already folded, or some of each), end in the same valuation however
often the store folds, on both backends."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.store import LedgerStore, SqlStore
from ledger.store.postgres import PgStore
from tests.ledger.conftest import AGENT, movement

ITEMS = ("09506000134352", "09506000134369")
LOCS = ("DOCK-3", "A-01")
NEVER = 10**9


def scenario(seed: int, n: int = 90) -> list[dict[str, Any]]:
    """``n`` movements of two items at two locations, a minute apart, in event-time order."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = rnd.choice(["receive", "receive", "ship", "transfer", "return"])
        loc = rnd.choice(LOCS)
        where: dict[str, Any] = {"from_": None, "to": None}
        if kind == "receive":
            where |= {"to": loc, "unit_cost": f"{rnd.randint(1, 40)}.{rnd.randint(0, 99):02d}"}
        elif kind == "ship":
            where |= {"from_": loc}
        elif kind == "transfer":
            where |= {"from_": loc, "to": LOCS[1 - LOCS.index(loc)]}
        else:
            where |= {"to": loc, "reason": "restock"}
        out.append(
            movement(
                kind, rnd.randint(1, 6), item=rnd.choice(ITEMS), seq=i + 1,
                observed_at=f"2026-05-0{1 + i // 1440}T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
                **where,
            )
        )  # fmt: skip
    return out


def valuation(store: SqlStore) -> tuple[object, ...]:
    def read(db: Any) -> tuple[object, ...]:
        balances = db.rows(
            "SELECT account, location, sum(debit) - sum(credit) FROM entries "
            "GROUP BY account, location HAVING sum(debit) <> sum(credit) ORDER BY 1, 2"
        )
        streams = db.rows(
            "SELECT item, location, qty, value, posted FROM val_streams ORDER BY 1, 2"
        )
        unbalanced = db.rows(
            "SELECT movement FROM entries GROUP BY movement HAVING sum(debit) <> sum(credit)"
        )
        assert unbalanced == []
        provisional = db.rows("SELECT count(*) FROM val_provisional")
        return (
            [(a, loc, int(v)) for a, loc, v in balances],
            [(i, loc, int(q), str(v), int(p)) for i, loc, q, v, p in streams],
            int(provisional[0][0]),
        )

    return store.read(read)


def tables(store: SqlStore) -> tuple[int, int]:
    return store.read(
        lambda db: tuple(
            int(db.rows(f"SELECT count(*) FROM {t}")[0][0]) for t in ("val_staging", "val_events")
        )
    )


class Stores:
    """New, empty stores on one backend, folding every ``fold_at`` staged events; and
    the same database opened again (a restarted ledger: nothing cached)."""

    def __init__(self, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.backend, self.tmp_path, self.request = backend, tmp_path, request
        self.opened: list[tuple[SqlStore, Any]] = []

    def __call__(self, fold_at: int, where: Any = None) -> SqlStore:
        s: SqlStore
        if self.backend == "sqlite":
            where = where or self.tmp_path / f"ledger-{len(self.opened)}.db"
            s = LedgerStore(where)
        else:
            where = where or self.request.getfixturevalue("pg_database")()
            s = PgStore(where)
        s.fold_at = fold_at
        s.add_agent(AGENT)
        self.opened.append((s, where))
        return s

    def reopen(self, store: SqlStore) -> SqlStore:
        where = next(w for s, w in self.opened if s is store)
        store.close()
        return self(store.fold_at, where)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    stores = Stores(request.param, tmp_path, request)
    yield stores
    for s, _ in stores.opened:
        s.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_any_fold_cadence_and_delivery_order_ends_the_same(fresh: Stores, seed: int) -> None:
    movements = scenario(seed)
    reference = fresh(NEVER)
    reference.apply_batch(AGENT, movements)
    expected = valuation(reference)
    assert tables(reference) == (2 * len(movements) - _single(movements), 0)

    rnd = random.Random(seed)
    order = movements[:]
    rnd.shuffle(order)  # every batch holds late movements: re-costs of what came before
    for fold_at in (1, 5, 37, NEVER):
        store = fresh(fold_at)
        for start in range(0, len(order), 7):
            if start == 42:  # a restart: every head's state is read back from its event
                store = fresh.reopen(store)
            store.apply_batch(AGENT, order[start : start + 7])
            staged, folded = tables(store)
            assert staged < fold_at + 14  # folded once it reached fold_at (7 movements: 14 events)
        assert valuation(store) == expected, fold_at
        staged, folded = tables(store)
        if fold_at == NEVER:
            assert folded == 0
        else:
            assert folded > 0 and staged < fold_at + 14


def _single(movements: list[dict[str, Any]]) -> int:
    """Movements with one stream event (all but transfers, which have two)."""
    return sum(1 for m in movements if m["kind"] != "transfer")


def test_a_ledger_valued_before_staging_migrates_and_goes_on(tmp_path: Path) -> None:
    """A 0006 database (heads' states in val_streams, every event in val_events) is brought
    to 0007 and values the next movement from where it was."""
    path = tmp_path / "ledger.db"
    receipt = movement("receive", 10, observed_at="2026-05-01T10:00:00Z", unit_cost="4.00")
    with LedgerStore(path) as store:
        store.add_agent(AGENT)
        store.apply_batch(AGENT, [receipt])
    conn = sqlite3.connect(path)
    with conn:  # back to 0006's shape: what a ledger of the last version left
        conn.executescript(
            """
            ALTER TABLE val_streams ADD COLUMN state TEXT;
            UPDATE val_streams SET state = (SELECT e.state FROM val_staging e
                WHERE e.item = val_streams.item AND e.location = val_streams.location);
            INSERT INTO val_events(item, location, okey, pos, direction, movement, event,
                state, posted)
                SELECT item, location, okey, pos, direction, movement, event, NULL, posted
                FROM val_staging;
            DROP TABLE val_staging;
            ALTER TABLE val_streams DROP COLUMN version;
            DELETE FROM migrations WHERE name = '0007_val_staging';
            """
        )
    assert conn.execute("SELECT count(*) FROM val_streams WHERE state LIKE '{%'").fetchone() == (1,)
    conn.close()
    with LedgerStore(path) as store:
        heads = store.read(lambda db: db.rows("SELECT state FROM val_events"))
        assert [h[0] is not None for h in heads] == [True]  # the head's state moved over
        ship = movement("ship", 4, observed_at="2026-05-01T11:00:00Z")
        store.apply_batch(AGENT, [ship])
        cogs = store.read(
            lambda db: db.rows(
                "SELECT sum(debit) FROM entries WHERE movement = %s AND account = '5000'",
                (ship["id"],),
            )
        )
        assert int(cogs[0][0]) == 1600  # 4 at 4.00, from the layer kept before
        assert store.read(lambda db: db.rows("SELECT qty, posted FROM val_streams")) == [(6, 2400)]
