"""Valuation in the ledger on both backends (a real SQLite file, a real PostgreSQL
database): the worked example through the real batch path (the count's variance
included), entries and reports over HTTP, late receipts, refusals."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from typing import Any

import httpx
import pytest

from ledger.store import SqlStore
from ledger.valuation.items import import_items
from ledger.valuation.money import ValuationError
from ledger.valuation.reports import entries, identity, stock_value
from ledger.valuation.settings import ValuationSettings
from ledger.valuation.store import entry_ids, save_settings

GTIN = "09506000134352"
AGENT = "dock-3"


def at(minute: int) -> str:
    return f"2026-05-01T10:{minute:02d}:00Z"


def lines_of(store: SqlStore, mid: str) -> list[tuple[str, str | None, str, str, str]]:
    found, _ = store.read(lambda db: entries(db, mid, 0, 100))
    return [
        (e["type"], ln["location"], ln["account"], ln["debit"], ln["credit"])
        for e in found
        for ln in e["lines"]
    ]


def balanced(store: SqlStore) -> None:
    """Debits = credits for every movement and every entry (the invariant)."""
    for by in ("movement", "entry"):
        rows = store.read(
            lambda db, by=by: db.rows(
                f"SELECT {by} FROM entry_lines GROUP BY {by} HAVING sum(debit) <> sum(credit)"
            )
        )
        assert rows == []


@pytest.mark.parametrize("method", ["fifo", "average"])
def test_worked_example_through_the_store(store: SqlStore, mv: Any, method: str) -> None:
    store.add_agent(AGENT)
    store.write(lambda db: save_settings(db, ValuationSettings(method=method)))  # type: ignore[arg-type]
    batch = [
        mv("receive", 10, observed_at=at(1), unit_cost="4.00"),
        mv("receive", 10, observed_at=at(2), unit_cost="5.00"),
        mv("ship", 15, observed_at=at(3)),
        mv("receive", 5, observed_at=at(4), unit_cost="5.50"),
        mv("return", 2, observed_at=at(5)),
        mv("count", 9, observed_at=at(6)),  # 12 held: a shortfall of 3
        mv("ship", 8, observed_at=at(7)),
    ]
    # two batches, the second one first-come in costing order all the same
    assert {r["status"] for r in store.apply_batch(AGENT, batch[:4])} == {"applied"}
    assert {r["status"] for r in store.apply_batch(AGENT, batch[4:])} == {"applied"}
    s1, ret, count, s2 = batch[2]["id"], batch[4]["id"], batch[5]["id"], batch[6]["id"]
    variance = store.journal()[0][-2]["id"]  # the ledger's adjust for the count
    assert store.caused_by(variance) == count
    fifo = method == "fifo"
    assert lines_of(store, s1) == [
        ("post", "DOCK-3", "1300", "0.00", "65.00" if fifo else "67.50"),
        ("post", None, "5000", "65.00" if fifo else "67.50", "0.00"),
    ]
    assert lines_of(store, ret)[0] == ("post", "DOCK-3", "1300", "8.67" if fifo else "9.00", "0.00")
    assert lines_of(store, variance) == [
        ("post", "DOCK-3", "1300", "0.00", "15.00" if fifo else "14.75"),
        ("post", None, "5100", "15.00" if fifo else "14.75", "0.00"),
    ]
    assert lines_of(store, s2)[1] == ("post", None, "5000", "41.84" if fifo else "39.33", "0.00")
    assert lines_of(store, count) == []  # a count posts through its variance adjust
    value = store.read(lambda db: stock_value(db, GTIN, None))
    assert value == [
        {
            "item": GTIN, "location": "DOCK-3", "qty": 1, "value": "4.33" if fifo else "4.92",
            "unit_cost": "4.333333" if fifo else "4.916667", "currency": "EUR",
        }
    ]  # fmt: skip
    assert store.stock(GTIN, "DOCK-3")[0]["qty"] == 1
    balanced(store)
    assert all(row["holds"] for row in store.read(lambda db: identity(db, None)))


def test_late_receipt_is_provisional_then_corrected(store: SqlStore, mv: Any) -> None:
    store.add_agent(AGENT)
    store.write(lambda db: import_items(db, f"item,standard_cost\n{GTIN},3.00\n", "items.csv"))
    ships = [mv("ship", 5, observed_at=at(2)), mv("ship", 1, observed_at=at(3))]
    store.apply_batch(AGENT, ships)
    found, _ = store.read(lambda db: entries(db, None, 0, 100))
    assert [(e["movement"], e["provisional"]) for e in found] == [
        (ships[0]["id"], True), (ships[1]["id"], True),
    ]  # fmt: skip
    assert lines_of(store, ships[0]["id"])[1] == ("post", None, "5000", "15.00", "0.00")
    # the agent was offline: its receipt, observed first, arrives last
    receipt = mv("receive", 10, observed_at=at(1), unit_cost="4.00")
    store.apply_batch(AGENT, [receipt])
    assert lines_of(store, ships[0]["id"]) == [
        ("post", "DOCK-3", "1300", "0.00", "15.00"),
        ("post", None, "5000", "15.00", "0.00"),
        ("recost", "DOCK-3", "1300", "0.00", "5.00"),
        ("recost", None, "5000", "5.00", "0.00"),
    ]
    found, _ = store.read(lambda db: entries(db, None, 0, 100))
    assert not any(e["provisional"] for e in found)
    assert store.read(lambda db: stock_value(db, GTIN, "DOCK-3"))[0]["value"] == "16.00"
    balanced(store)


def test_transfer_posts_between_locations(store: SqlStore, mv: Any) -> None:
    store.add_agent(AGENT)
    store.apply_batch(
        AGENT,
        [
            mv("receive", 4, observed_at=at(1), unit_cost="2.50"),
            t := mv("transfer", 3, observed_at=at(2)),
        ],
    )
    assert lines_of(store, t["id"]) == [
        ("post", "A-01", "1300", "7.50", "0.00"),
        ("post", "DOCK-3", "1300", "0.00", "7.50"),
    ]


def test_cost_in_another_currency_is_rejected_alone(store: SqlStore, mv: Any) -> None:
    store.add_agent(AGENT)
    results = store.apply_batch(
        AGENT,
        [
            mv("receive", 1, unit_cost="1.00", currency="USD"),
            mv("receive", 1, unit_cost="1.00", currency="EUR"),
            mv("receive", 1, unit_cost=1.5),
            mv("ship", 1, unit_cost="1.00"),
        ],
    )
    assert [r["status"] for r in results] == ["rejected", "applied", "rejected", "rejected"]
    assert "this ledger values in EUR" in results[0]["reason"]
    assert "unit_cost: expected a decimal string" in results[2]["reason"]
    assert "a ship carries no cost" in results[3]["reason"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item,price\nA,1\n", "items.csv, line 1: unknown column 'price'"),
        ("item,standard_cost\nA,1.5\nB,-2\n", "items.csv, line 3, column standard_cost"),
        ("item,standard_cost,currency\nA,1,USD\n", "line 2, column currency: 'USD'"),
        ("item,method\nA,lifo\n", "line 2, column method: lifo: not allowed under IFRS"),
        ("item,reorder_point\nA,ten\n", "line 2, column reorder_point: expected a whole number"),
        ("item\nA\nA\n", "line 3, column item: 'A' already on line 2"),
        ("item,description\nA\n", "line 2: 1 cells, the header has 2"),
    ],
)
def test_item_list_errors_name_file_line_and_column(
    store: SqlStore, text: str, message: str
) -> None:
    with pytest.raises(ValuationError, match=message):
        store.write(lambda db: import_items(db, text, "items.csv"))
    assert store.read(lambda db: db.rows("SELECT count(*) FROM val_items"))[0][0] == 0


async def test_entries_and_reports_over_http(
    client: httpx.AsyncClient, reader: httpx.AsyncClient, mv: Any
) -> None:
    batch = [
        mv("receive", 10, observed_at=at(1), unit_cost="4.00"),
        mv("ship", 4, observed_at=at(2)),
        mv("adjust", 1, from_="DOCK-3", to=None, reason="lost", observed_at=at(3)),
    ]
    r = await client.post("/v1/movements", json={"agent": AGENT, "movements": batch})
    assert r.status_code == 200
    page = (await reader.get("/v1/entries", params={"limit": 2})).json()
    assert [e["movement"] for e in page["entries"]] == [batch[0]["id"], batch[1]["id"]]
    rest = (await reader.get("/v1/entries", params={"since": page["next"]})).json()
    assert [e["movement"] for e in rest["entries"]] == [batch[2]["id"]]
    r = await reader.get("/v1/entries", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.headers["content-type"].startswith("text/csv") and len(rows) == 6
    assert {(x["account"], x["debit"]) for x in rows if x["movement"] == batch[1]["id"]} == {
        ("1300", "0.00"), ("5000", "16.00"),
    }  # fmt: skip
    value = (await reader.get("/v1/reports/stock-value")).json()["rows"]
    assert value[0]["value"] == "20.00" and value[0]["qty"] == 5
    cogs = (await reader.get("/v1/reports/cogs", params={"from": "2000-01-01"})).json()["rows"]
    assert cogs[-1] == {"item": "TOTAL", "cogs": "16.00", "currency": "EUR"}
    ident = (await reader.get("/v1/reports/identity")).json()["rows"]
    assert len(ident) == 1 and ident[0]["holds"] and ident[0]["ei"] == "20.00"
    assert ident[0]["purchases"] == "40.00" and ident[0]["shrinkage"] == "4.00"
    shrink = (await reader.get("/v1/reports/shrinkage")).json()["rows"]
    assert shrink == [
        {
            "location": "DOCK-3",
            "reason": "lost",
            "amount": "4.00",
            "movements": 1,
            "currency": "EUR",
        }
    ]
    turn = (await reader.get("/v1/reports/turnover")).json()["rows"][0]
    assert turn["turnover"] == "1.6000"  # 16.00 / ((0 + 20.00) / 2)
    asof = (await reader.get("/v1/reports/as-of", params={"at": at(1)})).json()["rows"]
    assert (asof[0]["qty"], asof[0]["value"]) == (10, "40.00")
    r = await reader.get("/v1/reports/as-of", params={"at": "yesterday"})
    assert r.status_code == 400 and "at: expected an ISO 8601" in r.json()["error"]
    r = await reader.get("/v1/reports/identity", params={"period": "May"})
    assert r.status_code == 400 and "period:" in r.json()["error"]
    r = await reader.get("/v1/reports/lifo")
    assert r.status_code == 404 and "no report 'lifo'" in r.json()["error"]
    r = await reader.get("/v1/reports/cogs", params={"format": "csv"})
    assert r.text.splitlines()[0] == "item,cogs,currency"


def test_entry_ids_are_distinct_version_4_uuids() -> None:
    batches = [list(itertools.islice(entry_ids(), 300)) for _ in range(3)]
    every = [i for batch in batches for i in batch]
    assert len(set(every)) == len(every)
    assert {uuid.UUID(i).version for i in every} == {4}
    assert {uuid.UUID(i).variant for i in every} == {uuid.RFC_4122}
    assert all(str(uuid.UUID(i)) == i for i in every)
