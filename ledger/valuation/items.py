"""The item list: standard cost, method and reorder settings per item, imported from CSV.

``edgetally ledger items import FILE.csv``; the header names the columns (any
order): ``item`` (required), ``description``, ``standard_cost``, ``currency``,
``method`` (fifo/average), ``reorder_point``, ``lead_time_days``,
``safety_stock``. A bad value is refused naming the file, the line and the
column, and nothing of the file is imported. Importing again updates the items
it lists (an empty cell clears that setting).
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent.model import MAX_TEXT
from ledger.schema import utcnow
from ledger.valuation.db import Db
from ledger.valuation.money import ValuationError, parse_cost
from ledger.valuation.settings import check_method
from ledger.valuation.store import load_settings

COLUMNS = (
    "item", "description", "standard_cost", "currency", "method",
    "reorder_point", "lead_time_days", "safety_stock",
)  # fmt: skip
MAX_FILE = 16 << 20
MAX_QTY = 10**12


@dataclass(frozen=True, slots=True)
class ItemRow:
    item: str
    description: str | None = None
    standard_cost: Decimal | None = None
    currency: str | None = None
    method: str | None = None
    reorder_point: int | None = None
    lead_time_days: int | None = None
    safety_stock: int | None = None


def read_items(path: Path) -> list[ItemRow]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValuationError(f"{path}: cannot read the item list ({exc.strerror})") from exc
    if len(raw) > MAX_FILE:
        raise ValuationError(f"{path}: larger than {MAX_FILE} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValuationError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_items(text, str(path))


def parse_items(text: str, where: str, currency: str | None = None) -> list[ItemRow]:
    """Rows of the CSV ``text``; ``currency``: the ledger's, which every cost must be in."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ValuationError(
            f"{where}: empty; expected a header line ({','.join(COLUMNS)})"
        ) from None
    except csv.Error as exc:
        raise ValuationError(f"{where}, line 1: not CSV ({exc})") from exc
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ValuationError(
            f"{where}, line 1: unknown column {unknown[0]!r}; expected {', '.join(COLUMNS)}"
        )
    if "item" not in header:
        raise ValuationError(f"{where}, line 1: no 'item' column")
    if len(set(header)) != len(header):
        raise ValuationError(f"{where}, line 1: a column is named twice")
    out: list[ItemRow] = []
    seen: dict[str, int] = {}
    try:
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise ValuationError(
                    f"{where}, line {line}: {len(fields)} cells, the header has {len(header)}"
                )
            cells = {h: f.strip() or None for h, f in zip(header, fields, strict=True)}
            row = _row(cells, f"{where}, line {line}", currency)
            if row.item in seen:
                raise ValuationError(
                    f"{where}, line {line}, column item: {row.item!r} already on line {seen[row.item]}"
                )
            seen[row.item] = line
            out.append(row)
    except csv.Error as exc:
        raise ValuationError(f"{where}, line {reader.line_num}: not CSV ({exc})") from exc
    return out


def _row(cells: dict[str, str | None], at: str, currency: str | None) -> ItemRow:
    item = cells.get("item")
    if not item or len(item) > MAX_TEXT:
        raise ValuationError(
            f"{at}, column item: expected the item key (GTIN, SKU...), 1 to {MAX_TEXT} characters"
        )
    cost = cells.get("standard_cost")
    cur = cells.get("currency")
    if cur is not None and currency is not None and cur != currency:
        raise ValuationError(
            f"{at}, column currency: {cur!r}, but this ledger values in {currency} "
            "(it keeps no exchange rates)"
        )
    method = cells.get("method")
    return ItemRow(
        item=item,
        description=cells.get("description"),
        standard_cost=None if cost is None else parse_cost(cost, f"{at}, column standard_cost"),
        currency=cur,
        method=None if method is None else check_method(method.lower(), f"{at}, column method"),
        reorder_point=_whole(cells.get("reorder_point"), f"{at}, column reorder_point"),
        lead_time_days=_whole(cells.get("lead_time_days"), f"{at}, column lead_time_days"),
        safety_stock=_whole(cells.get("safety_stock"), f"{at}, column safety_stock"),
    )


def _whole(text: str | None, where: str) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_QTY:
        raise ValuationError(
            f"{where}: expected a whole number from 0 to {MAX_QTY}, got {text[:40]!r}"
        )
    return int(text)


def import_items(db: Db, text: str, where: str) -> int:
    """Check the whole file against the ledger's currency, then upsert every row."""
    rows = parse_items(text, where, load_settings(db).currency)
    at = utcnow()
    db.many(
        "INSERT INTO val_items(item, description, standard_cost, currency, method, "
        "reorder_point, lead_time_days, safety_stock, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (item) DO UPDATE SET "
        "description = excluded.description, standard_cost = excluded.standard_cost, "
        "currency = excluded.currency, method = excluded.method, "
        "reorder_point = excluded.reorder_point, lead_time_days = excluded.lead_time_days, "
        "safety_stock = excluded.safety_stock, updated_at = excluded.updated_at",
        [_values(r, at) for r in rows],
    )
    return len(rows)


def _values(r: ItemRow, at: str) -> tuple[Any, ...]:
    values = list(astuple(r))
    values[2] = None if r.standard_cost is None else str(r.standard_cost)
    return (*values, at)


def list_items(db: Db) -> list[dict[str, Any]]:
    rows = db.rows(f"SELECT {', '.join(COLUMNS)} FROM val_items ORDER BY item")
    return [
        {
            k: (str(v) if k == "standard_cost" and v is not None else v)
            for k, v in zip(COLUMNS, r, strict=True)
        }
        for r in rows
    ]
