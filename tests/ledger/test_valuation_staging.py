"""New valuation events are staged and folded into ``val_events`` in bulk: the same
movements, delivered out of order in many batches (late receipts re-costing events
still staged, already folded, or some of each), end in the same valuation however
often the store folds, on both backends."""

from __future__ import annotations

import random
import threading
import uuid
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
            "SELECT account, location, sum(debit) - sum(credit) FROM entry_lines "
            "GROUP BY account, location HAVING sum(debit) <> sum(credit) ORDER BY 1, 2"
        )
        streams = db.rows(
            "SELECT item, location, qty, value, posted FROM val_streams ORDER BY 1, 2"
        )
        unbalanced = db.rows(
            "SELECT movement FROM entry_lines GROUP BY movement HAVING sum(debit) <> sum(credit)"
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
            if start == 42:  # a restart: nothing cached, every head read back
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


def test_two_ledger_processes_valuing_and_folding_at_once(
    request: pytest.FixtureRequest,
) -> None:
    """PostgreSQL, two stores (two connections, as two ledger processes) valuing the same
    items at once, folding every few events: the fold never moves rows from under the
    other's re-cost, and the books end as one store delivering everything would."""
    make = request.getfixturevalue("pg_database")
    movements = scenario(3, n=120)
    reference = PgStore(make())
    shared = make()
    a, b = PgStore(shared), PgStore(shared)
    try:
        reference.add_agent(AGENT)
        reference.apply_batch(AGENT, movements)
        a.add_agent(AGENT)
        for s in (a, b):
            s.fold_at = 6
        rnd = random.Random(3)
        order = movements[:]
        rnd.shuffle(order)
        halves = (order[::2], order[1::2])
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def deliver(store: SqlStore, mine: list[dict[str, Any]]) -> None:
            try:
                start.wait()
                for i in range(0, len(mine), 4):
                    store.apply_batch(AGENT, mine[i : i + 4])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=deliver, args=(s, h))
            for s, h in zip((a, b), halves, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == [] and not any(t.is_alive() for t in threads)
        assert valuation(a) == valuation(reference)
        staged, folded = tables(a)
        assert folded > 0 and staged + folded == tables(reference)[0]
    finally:
        for s in (reference, a, b):
            s.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_entries_kept_a_row_per_line_migrate_to_a_row_each(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0006 kept a row per line (two entries' lines may interleave on PostgreSQL); 0007
    keeps an entry a row with its lines, shown a row per line by ``entry_lines``."""
    from ledger import schema
    from ledger.store import pg_schema
    from ledger.valuation.reports import entries

    where: Any = tmp_path / "ledger.db"
    if backend == "postgresql":  # an empty database, not the migrated template
        cluster = request.getfixturevalue("pg_cluster")
        where = cluster.create_database(f"m{uuid.uuid4().hex[:12]}")

    def open_store() -> SqlStore:
        return LedgerStore(where) if backend == "sqlite" else PgStore(where)

    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:6])
    monkeypatch.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[:6])
    old = [  # pos, entry, type, account, location, debit, credit, corrects
        (1, "e-a", "post", "1300", "DOCK-3", 0, 1500, None),
        (2, "e-b", "post", "1300", "A-01", 700, 0, None),
        (3, "e-a", "post", "5000", None, 1500, 0, None),
        (4, "e-b", "post", "2150", None, 0, 700, None),
        (5, "e-c", "correct", "5000", None, 0, 300, "m-a"),
        (6, "e-c", "correct", "1300", "A-01", 300, 0, "m-a"),
    ]
    movements = {"e-a": "m-a", "e-b": "m-b", "e-c": "m-b"}
    with open_store() as store:
        over = " OVERRIDING SYSTEM VALUE" if backend == "postgresql" else ""
        store.write(
            lambda db: db.many(
                "INSERT INTO entries(pos, entry, movement, kind, reason, item, stream_location, "
                f"type, account, location, debit, credit, corrects, observed_at, posted_at){over} "
                "VALUES (%s, %s, %s, 'ship', NULL, 'i', 'DOCK-3', %s, %s, %s, %s, %s, %s, "
                "'2026-05-01T10:00:00Z', '2026-05-01T10:00:01Z')",
                [(p, e, movements[e], t, a, loc, d, c, x) for p, e, t, a, loc, d, c, x in old],
            )
        )
    monkeypatch.undo()
    with open_store() as store:
        found, since = store.read(lambda db: entries(db, None, 0, 10))
        assert since == 5  # the last entry given
        assert [(e["entry"], e["pos"], e["type"]) for e in found] == [
            ("e-a", 1, "post"), ("e-b", 2, "post"), ("e-c", 5, "correct"),
        ]  # fmt: skip
        assert [(ln["account"], ln["location"], ln["debit"], ln["credit"]) for ln in found[0]["lines"]] == [
            ("1300", "DOCK-3", "0.00", "15.00"), ("5000", None, "15.00", "0.00"),
        ]  # fmt: skip
        assert found[2]["lines"][0].get("corrects") == "m-a"
        lines = store.read(
            lambda db: db.rows(
                "SELECT entry, account, location, debit, credit, corrects FROM entry_lines "
                "ORDER BY pos, line"
            )
        )
        assert [(e, a, loc, int(d), int(c), x) for e, a, loc, d, c, x in lines] == [
            (e, a, loc, d, c, x)
            for _, e, _, a, loc, d, c, x in sorted(old, key=lambda r: (r[1], r[0]))
        ]
        store.add_agent(AGENT)
        store.apply_batch(AGENT, [movement("receive", 2, unit_cost="1.00")])
        after, _ = store.read(lambda db: entries(db, None, 5, 10))
        assert [e["type"] for e in after] == ["post"]  # numbered after the migrated ones
