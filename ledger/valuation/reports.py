"""Reading the valuation back: entries, stock value, COGS, the inventory identity,
turnover, shrinkage and as-of, as plain rows (dicts) the app and the CLI render as
JSON or CSV. Amounts are decimal strings in the ledger's currency.

Periods are by *posting* time (``posted_at``): an adjusting entry posted today
for a late movement lands in today's period, so a closed period's figures never
move. As-of is by *event* time: what the stream held at T, late movements included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from ledger.valuation.core import State
from ledger.valuation.db import Db
from ledger.valuation.events import event_time
from ledger.valuation.money import ValuationError, money_text, to_minor, unit
from ledger.valuation.settings import ValuationSettings
from ledger.valuation.store import _SqlSource, load_settings

Row = dict[str, Any]
MAX_POS = 2**53 - 1
_PERIOD_RE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
REPORTS = ("stock-value", "cogs", "identity", "turnover", "shrinkage", "as-of")


def entries(db: Db, movement: str | None, since: int, limit: int) -> tuple[list[Row], int]:
    """Entries after position ``since``, oldest first, each with its lines; and the next
    ``since`` (the position of the last entry given)."""
    s = load_settings(db)
    rows = db.rows(
        "SELECT e.entry, e.pos, e.movement, e.kind, e.reason, e.item, e.stream_location, "
        "e.type, e.lines, e.observed_at, e.posted_at, "
        "(SELECT count(*) FROM val_provisional p WHERE p.movement = e.movement) "
        "FROM entries e WHERE e.pos > %s AND (CAST(%s AS TEXT) IS NULL OR e.movement = %s) "
        "ORDER BY e.pos LIMIT %s",
        (since, movement, movement, limit),
    )
    if not rows:
        return [], since
    names = s.accounts.names()
    out: list[Row] = []
    for (entry, pos, mid, kind, reason, item, loc, typ, lines, observed, posted,
         provisional) in rows:  # fmt: skip
        out.append(
            {
                "entry": entry, "pos": int(pos), "movement": mid, "kind": kind, "reason": reason,
                "type": typ, "item": item, "location": loc, "observed_at": observed,
                "posted_at": posted, "currency": s.currency,
                "provisional": typ == "post" and bool(int(provisional)),
                "lines": [
                    {
                        "account": account,
                        "name": names.get(account, ""),
                        "location": line_loc,
                        "debit": money_text(max(int(amount), 0), s.places),
                        "credit": money_text(max(-int(amount), 0), s.places),
                        **({"corrects": corrects} if corrects else {}),
                    }
                    for account, line_loc, amount, corrects in orjson.loads(lines)
                ],
            }
        )  # fmt: skip
    return out, int(rows[-1][1])


def entry_lines(entries_: Sequence[Row]) -> list[Row]:
    """Entries flattened to one row per line (for CSV)."""
    return [
        {k: v for k, v in e.items() if k != "lines"} | line for e in entries_ for line in e["lines"]
    ]


def stock_value(db: Db, item: str | None, location: str | None) -> list[Row]:
    s = load_settings(db)
    rows = db.rows(
        "SELECT item, location, qty, value, posted FROM val_streams "
        "WHERE (CAST(%s AS TEXT) IS NULL OR item = %s) "
        "AND (CAST(%s AS TEXT) IS NULL OR location = %s) ORDER BY item, location",
        (item, item, location, location),
    )
    out = []
    for i, loc, qty, value, posted in rows:
        qty, value = int(qty), Decimal(str(value))
        out.append(
            {
                "item": i,
                "location": loc,
                "qty": qty,
                "value": money_text(int(posted), s.places),
                "unit_cost": str(unit(value / qty)) if qty > 0 else None,
                "currency": s.currency,
            }
        )
    return out


def _net(db: Db, account: str, start: str | None, end: str | None, by: str = "") -> list[Any]:
    """Debits minus credits on ``account`` posted in [start, end), optionally grouped."""
    group = f", {by}" if by else ""
    return db.rows(
        f"SELECT sum(debit) - sum(credit){group} FROM entry_lines WHERE account = %s "
        "AND (CAST(%s AS TEXT) IS NULL OR posted_at >= %s) "
        "AND (CAST(%s AS TEXT) IS NULL OR posted_at < %s)"
        + (f" GROUP BY {by} ORDER BY {by}" if by else ""),
        (account, start, start, end, end),
    )


def _total(db: Db, account: str, start: str | None, end: str | None) -> int:
    rows = _net(db, account, start, end)
    return int(rows[0][0] or 0) if rows else 0


def bound(text: str | None, name: str) -> str | None:
    """A ``from``/``to``/``at`` parameter as UTC text comparable with the stored times."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValuationError(
            f"{name}: expected an ISO 8601 date or time such as 2026-05-01, got {text[:40]!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cogs(db: Db, start: str | None, end: str | None) -> list[Row]:
    s = load_settings(db)
    lo, hi = bound(start, "from"), bound(end, "to")
    rows = _net(db, s.accounts.cogs, lo, hi, "item")
    out = [
        {"item": item, "cogs": money_text(int(n or 0), s.places), "currency": s.currency}
        for n, item in rows
    ]
    total = sum(int(n or 0) for n, _ in rows)
    return [*out, {"item": "TOTAL", "cogs": money_text(total, s.places), "currency": s.currency}]


def _periods(db: Db, period: str | None) -> list[str]:
    if period is not None:
        if not _PERIOD_RE.match(period):
            raise ValuationError(
                f"period: expected a month (2026-05) or a day (2026-05-01), got {period[:40]!r}"
            )
        return [period]
    rows = db.rows("SELECT DISTINCT substr(posted_at, 1, 7) FROM entries ORDER BY 1")
    return [str(r[0]) for r in rows]


def _period_bounds(period: str) -> tuple[str, str]:
    y, m = int(period[:4]), int(period[5:7])
    if len(period) == 10:
        d = date.fromisoformat(period)
        nxt = date.fromordinal(d.toordinal() + 1)
        return f"{d.isoformat()}T00", f"{nxt.isoformat()}T00"
    end = f"{y + 1:04d}-01" if m == 12 else f"{y:04d}-{m + 1:02d}"
    return f"{period}-01T00", f"{end}-01T00"


def identity(db: Db, period: str | None) -> list[Row]:
    """Per period: EI = BI + P − COGS − shrinkage − write-offs − variance, checked.

    P is what receipts credited to GRNI. Every Inventory line is balanced by
    one of these accounts (or by Inventory itself, for a transfer), so the
    check failing would mean an unbalanced entry: it is shown, not hidden.
    """
    s = load_settings(db)
    a = s.accounts
    out = []
    for p in _periods(db, period):
        lo, hi = _period_bounds(p)
        bi = _total(db, a.inventory, None, lo)
        ei = _total(db, a.inventory, None, hi)
        purchases = -_total(db, a.grni, lo, hi)
        parts = {k: _total(db, getattr(a, k), lo, hi) for k in ("cogs", "shrinkage", "writeoff")}
        variance = _total(db, a.variance, lo, hi)
        computed = (
            bi + purchases - parts["cogs"] - parts["shrinkage"] - parts["writeoff"] - variance
        )
        out.append(
            {
                "period": p,
                "bi": money_text(bi, s.places),
                "purchases": money_text(purchases, s.places),
                "cogs": money_text(parts["cogs"], s.places),
                "shrinkage": money_text(parts["shrinkage"], s.places),
                "writeoff": money_text(parts["writeoff"], s.places),
                "variance": money_text(variance, s.places),
                "ei": money_text(ei, s.places),
                "holds": computed == ei,
                "currency": s.currency,
            }
        )
    return out


def turnover(db: Db, start: str | None, end: str | None) -> list[Row]:
    """COGS over the window / the average of the Inventory balance at its start and end."""
    s = load_settings(db)
    lo, hi = bound(start, "from"), bound(end, "to")
    cost = _total(db, s.accounts.cogs, lo, hi)
    bi = _total(db, s.accounts.inventory, None, lo) if lo else 0
    ei = _total(db, s.accounts.inventory, None, hi)
    avg = Decimal(bi + ei) / 2
    return [
        {
            "from": start,
            "to": end,
            "cogs": money_text(cost, s.places),
            "average_inventory": str(avg.scaleb(-s.places)),
            "turnover": None
            if avg <= 0
            else str((Decimal(cost) / avg).quantize(Decimal("0.0001"))),
            "currency": s.currency,
        }
    ]


def shrinkage(db: Db, start: str | None, end: str | None) -> list[Row]:
    """Shrinkage by location and reason (count variances, damaged, found...)."""
    s = load_settings(db)
    lo, hi = bound(start, "from"), bound(end, "to")
    rows = db.rows(
        "SELECT stream_location, coalesce(reason, ''), sum(debit) - sum(credit), "
        "count(DISTINCT movement) FROM entry_lines WHERE account = %s "
        "AND (CAST(%s AS TEXT) IS NULL OR posted_at >= %s) "
        "AND (CAST(%s AS TEXT) IS NULL OR posted_at < %s) "
        "GROUP BY stream_location, coalesce(reason, '') ORDER BY 1, 2",
        (s.accounts.shrinkage, lo, lo, hi, hi),
    )
    return [
        {
            "location": loc,
            "reason": reason or None,
            "amount": money_text(int(n or 0), s.places),
            "movements": int(c),
            "currency": s.currency,
        }
        for loc, reason, n, c in rows
    ]


def as_of(db: Db, at: str, item: str | None, location: str | None) -> list[Row]:
    """On-hand and value of each stream at event time ``at`` (late movements included)."""
    s = load_settings(db)
    when = bound(at, "at")
    assert when is not None
    streams = db.rows(
        "SELECT item, location FROM val_streams WHERE (CAST(%s AS TEXT) IS NULL OR item = %s) "
        "AND (CAST(%s AS TEXT) IS NULL OR location = %s) ORDER BY item, location",
        (item, item, location, location),
    )
    items = {str(i) for i, _ in streams}
    source = _source(db, s, items)
    out = []
    for i, loc in streams:
        state = source.before((i, loc), (event_time(when, when), MAX_POS))
        if state is None:
            state = State(s.method)
        out.append(
            {
                "item": i,
                "location": loc,
                "at": when,
                "qty": state.qty,
                "value": money_text(to_minor(state.value, s.places), s.places),
                "currency": s.currency,
            }
        )
    return out


def _source(db: Db, s: ValuationSettings, items: set[str]) -> _SqlSource:
    from ledger.valuation.core import Ctx
    from ledger.valuation.store import _items

    known = _items(db, sorted(items))
    return _SqlSource(
        db,
        lambda stream: Ctx(stream[1], s.accounts.inventory, s.places),
        lambda item: known.get(item, (None, None))[1] or s.method,
    )
