"""The late receipt end to end, on a real ledger process over loopback, on SQLite and
PostgreSQL: the shipping dock's agent delivers its ships at once; the receiving dock's
agent was offline and delivers the receipt (observed before the ships) afterwards.
Provisional cost first, then the adjusting entries; nothing posted is rewritten."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger import open_store
from tests.e2e.harness import ROOT, LedgerProcess

GTIN = "09506000134352"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[LedgerProcess, dict[str, str]]]:
    db: str | Path = tmp_path / "ledger.db"
    if request.param == "postgresql":
        make: Callable[[], str] = request.getfixturevalue("pg_database")
        db = make()
    with open_store(db) as store:
        tokens = {a: store.add_agent(a) for a in ("dock-recv", "dock-ship")}
        tokens["office"] = store.create_token("office", role="reader")
    items = tmp_path / "items.csv"
    items.write_text(f"item,description,standard_cost\n{GTIN},Widget,3.00\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "ledger", "items", "import", str(items), "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    proc = LedgerProcess(tmp_path, db=str(db), agent=None, extra_args=("--valuation", "fifo"))
    proc.start()
    try:
        yield proc, tokens
    finally:
        proc.stop()


def movement(
    agent: str, seq: int, kind: str, qty: int, minute: int, **extra: Any
) -> dict[str, Any]:
    where = {"to": "DOCK-1"} if kind == "receive" else {"from": "DOCK-1"}
    return {
        "id": str(uuid.uuid4()), "agent": agent, "seq": seq, "kind": kind,
        "item": {"gtin": GTIN}, "qty": qty, "station": agent, "device": "scanner",
        "observed_at": f"2026-05-01T10:{minute:02d}:00Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": seq}, **where, **extra,
    }  # fmt: skip


def test_late_receipt_provisional_then_corrected(
    ledger: tuple[LedgerProcess, dict[str, str]],
) -> None:
    proc, tokens = ledger

    def client(agent: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {tokens[agent]}"}
        return httpx.Client(base_url=proc.url, headers=auth, timeout=10)

    ships = [movement("dock-ship", 1, "ship", 5, 2), movement("dock-ship", 2, "ship", 1, 3)]
    receipt = movement("dock-recv", 1, "receive", 10, 1, unit_cost="4.00", currency="EUR")
    with client("dock-ship") as c, client("office") as office:
        r = c.post("/v1/movements", json={"agent": "dock-ship", "movements": ships})
        assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]
        before = office.get("/v1/entries").json()["entries"]
        # from empty stock, at the item list's standard cost, flagged provisional
        assert [(e["movement"], e["provisional"]) for e in before] == [
            (ships[0]["id"], True), (ships[1]["id"], True),
        ]  # fmt: skip
        assert [ln["debit"] for ln in before[0]["lines"]] == ["0.00", "15.00"]
    with (
        client("dock-recv") as c,
        client("office") as office,
    ):  # back online: the receipt, observed first, arrives last
        r = c.post("/v1/movements", json={"agent": "dock-recv", "movements": [receipt]})
        assert r.json()["results"][0]["status"] == "applied"
        after = office.get("/v1/entries").json()["entries"]
        assert [{k: e[k] for k in ("pos", "entry")} for e in after[:2]] == [
            {k: e[k] for k in ("pos", "entry")} for e in before
        ]  # the posted entries are still there, unchanged
        recost = [e for e in after if e["type"] == "recost"]
        assert [(e["movement"], [(ln["account"], ln["debit"], ln["credit"]) for ln in e["lines"]])
                for e in recost] == [
            (ships[0]["id"], [("1300", "0.00", "5.00"), ("5000", "5.00", "0.00")]),
            (ships[1]["id"], [("1300", "0.00", "1.00"), ("5000", "1.00", "0.00")]),
        ]  # fmt: skip
        assert not any(e["provisional"] for e in after)
        value = office.get("/v1/reports/stock-value").json()["rows"]
        assert (value[0]["qty"], value[0]["value"]) == (4, "16.00")
        cogs = office.get("/v1/reports/cogs").json()["rows"][-1]
        assert cogs["cogs"] == "24.00"  # 6 at 4.00, as if the receipt had come first
        assert all(row["holds"] for row in office.get("/v1/reports/identity").json()["rows"])
        asof = office.get("/v1/reports/as-of", params={"at": "2026-05-01T10:01:30Z"}).json()["rows"]
        assert (asof[0]["qty"], asof[0]["value"]) == (10, "40.00")
