"""New valuation events are staged and folded into ``val_events`` in bulk: the same
movements, delivered out of order in many batches (late receipts re-costing events
still staged, already folded, or some of each), end in the same valuation however
often the store folds, on both backends."""

from __future__ import annotations

import random
import threading
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
