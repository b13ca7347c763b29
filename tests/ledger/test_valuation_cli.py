"""`edgetally ledger items import`, `ledger report`, `ledger entries` and `serve --valuation`
on a real SQLite ledger: the answers, and one line naming the input when it is wrong."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

from click.testing import CliRunner

from agent.cli import main
from ledger import LedgerStore

GTIN = "09506000134352"


def movement(kind: str, qty: int, minute: int, **extra: str) -> dict[str, object]:
    where = {"to": "DOCK"} if kind == "receive" else {"from": "DOCK"}
    return {
        "id": str(uuid.uuid4()), "agent": "a", "seq": minute, "kind": kind,
        "item": {"gtin": GTIN}, "qty": qty, "station": "s", "device": "d",
        "observed_at": f"2026-05-01T10:{minute:02d}:00Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": 1}, **where, **extra,
    }  # fmt: skip


def test_items_import_then_reports_and_entries(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    items = tmp_path / "items.csv"
    items.write_text(
        "item,description,standard_cost,currency,reorder_point,lead_time_days,safety_stock\n"
        f"{GTIN},Widget,2.125,EUR,5,3,2\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    done = runner.invoke(main, ["ledger", "items", "import", str(items), "--db", str(db)])
    assert done.exit_code == 0, done.output
    assert f"{items}: 1 item(s) imported" in done.output
    with LedgerStore(db) as store:
        store.add_agent("a")
        store.apply_batch("a", [movement("receive", 4, 1), movement("ship", 1, 2)])
    done = runner.invoke(main, ["ledger", "report", "stock-value", "--db", str(db)])
    assert json.loads(done.output) == {
        "item": GTIN, "location": "DOCK", "qty": 3, "value": "6.38",
        "unit_cost": "2.125000", "currency": "EUR",
    }  # fmt: skip
    done = runner.invoke(main, ["ledger", "report", "cogs", "--db", str(db), "--csv"])
    rows = list(csv.DictReader(io.StringIO(done.output)))
    assert rows[-1] == {"item": "TOTAL", "cogs": "2.12", "currency": "EUR"}
    done = runner.invoke(main, ["ledger", "entries", "--db", str(db)])
    found = [json.loads(line) for line in done.output.splitlines()]
    assert [(e["kind"], [ln["debit"] for ln in e["lines"]]) for e in found] == [
        ("receive", ["8.50", "0.00"]),
        ("ship", ["0.00", "2.12"]),  # 2.125 rounds half to even; the residue stays in stock
    ]
    done = runner.invoke(main, ["ledger", "report", "as-of", "--db", str(db)])
    assert done.exit_code == 2 and "as-of needs --at" in done.output
    items_listed = runner.invoke(main, ["ledger", "items", "list", "--db", str(db)])
    assert json.loads(items_listed.output)["reorder_point"] == 5


def test_bad_item_list_is_one_line_naming_line_and_column(tmp_path: Path) -> None:
    items = tmp_path / "items.csv"
    items.write_text("item,standard_cost\nA,1.00\nB,1,5\n", encoding="utf-8")
    done = CliRunner().invoke(
        main, ["ledger", "items", "import", str(items), "--db", str(tmp_path / "l.db")]
    )
    assert done.exit_code == 1
    assert done.output.strip() == f"Error: {items}, line 3: 3 cells, the header has 2"
    missing = tmp_path / "nope.csv"
    done = CliRunner().invoke(
        main, ["ledger", "items", "import", str(missing), "--db", str(tmp_path / "l.db")]
    )
    assert done.exit_code == 1 and f"{missing}: cannot read the item list" in done.output


def test_serve_refuses_lifo_and_a_currency_change(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    runner = CliRunner()
    done = runner.invoke(main, ["ledger", "serve", "--db", str(db), "--valuation", "LIFO"])
    assert done.exit_code == 1
    assert "--valuation: lifo: not allowed under IFRS" in done.output
    with LedgerStore(db) as store:
        store.add_agent("a")
        store.apply_batch("a", [movement("receive", 1, 1, unit_cost="1.00")])
    done = runner.invoke(main, ["ledger", "serve", "--db", str(db), "--currency", "usd"])
    assert done.exit_code == 1
    assert "--currency USD: this ledger has postings in EUR" in done.output
    done = runner.invoke(main, ["ledger", "serve", "--db", str(db), "--alert-webhook", "ftp://x"])
    assert done.exit_code == 2 and "--alert-webhook" in done.output and "http://" in done.output
    done = runner.invoke(main, ["ledger", "serve", "--db", str(db), "--currency", "XYZ"])
    assert done.exit_code == 1 and "currency 'XYZ': not a known ISO 4217 code" in done.output
