"""Reorder points and low-stock alerts, and the webhook they are sent to.

An item's reorder point is the item list's ``reorder_point`` when set; else,
when its ``lead_time_days`` is set, it is computed from usage: the average
daily quantity shipped over the last `WINDOW_DAYS` days (by ledger receipt
time) × lead time + ``safety_stock``, rounded up. Items with neither have no
point and raise nothing.

After each batch (in its transaction) every item it moved is checked at each
location and in total (location ``*``): on-hand at or below the point raises
an alert once (a partial unique index keeps one open alert per item and
location); back above it clears it. Each raise and clear is also written to
``alert_outbox`` when a webhook is configured: the durable queue an owned
background task (`AlertSender`) drains with retry and backoff, so a webhook
that is down never slows or blocks a posting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from ledger.schema import LedgerError
from ledger.valuation.db import Db

log = logging.getLogger("edgetally.ledger")
WINDOW_DAYS = 30
TOTAL = "*"
WEBHOOK_KEY = "alerts.webhook"  # in val_settings: "1" when a webhook takes the outbox
MAX_BACKOFF_S = 300.0


@dataclass(frozen=True, slots=True)
class Reorder:
    point: int | None
    lead_time_days: int | None
    safety_stock: int | None


# What `reorder_settings` reads of an item, so that a caller reading val_items anyway
# (the valuation's batch) gets them in the same query.
REORDER_COLUMNS = "reorder_point, lead_time_days, safety_stock"


def reorder_settings(db: Db, items: Sequence[str]) -> dict[str, Reorder]:
    out: dict[str, Reorder] = {}
    for start in range(0, len(items), 500):
        chunk = list(items[start : start + 500])
        marks = ",".join(["%s"] * len(chunk))
        out.update(
            reorder_rows(
                db.rows(
                    f"SELECT item, {REORDER_COLUMNS} FROM val_items WHERE item IN ({marks})", chunk
                )
            )
        )
    return out


def reorder_rows(rows: Sequence[Sequence[Any]]) -> dict[str, Reorder]:
    """``(item, *REORDER_COLUMNS)`` rows: the items with a reorder point set or computed."""
    return {
        str(item): Reorder(
            None if point is None else int(point),
            None if lead is None else int(lead),
            None if safety is None else int(safety),
        )
        for item, point, lead, safety in rows
        if point is not None or lead is not None
    }


def reorder_point(db: Db, item: str, r: Reorder, now: datetime) -> int | None:
    if r.point is not None:
        return r.point
    if r.lead_time_days is None:
        return None
    since = (now - timedelta(days=WINDOW_DAYS)).isoformat(timespec="microseconds")
    since = since.replace("+00:00", "Z")
    shipped = db.rows(
        "SELECT coalesce(sum(qty), 0) FROM journal WHERE item = %s AND kind = 'ship' "
        "AND received_at >= %s",
        (item, since),
    )[0][0]
    daily = Decimal(int(shipped)) / WINDOW_DAYS
    return math.ceil(daily * r.lead_time_days) + (r.safety_stock or 0)


def check(
    db: Db,
    items: Sequence[str],
    at: str,
    now: datetime | None = None,
    reorder: dict[str, Reorder] | None = None,
) -> None:
    """Raise or clear the low-stock alerts of ``items`` (called in the batch's transaction);
    ``reorder``: their `reorder_settings`, when the caller read them already."""
    settings = reorder if reorder is not None else reorder_settings(db, sorted(set(items)))
    if not settings:
        return
    now = now or datetime.now(UTC)
    webhook = bool(db.rows("SELECT 1 FROM val_settings WHERE key = %s", (WEBHOOK_KEY,)))
    for item, r in sorted(settings.items()):
        point = reorder_point(db, item, r, now)
        if point is None:
            continue
        held = {str(loc): int(q) for loc, q in db.rows(
            "SELECT location, qty FROM stock WHERE item = %s", (item,))}  # fmt: skip
        held[TOTAL] = sum(held.values())
        open_ = {str(loc): int(i) for loc, i in db.rows(
            "SELECT location, id FROM stock_alerts WHERE item = %s AND cleared_at IS NULL",
            (item,))}  # fmt: skip
        for loc, qty in sorted(held.items()):
            if qty <= point and loc not in open_:
                db.run(
                    "INSERT INTO stock_alerts(item, location, point, on_hand, raised_at) "
                    "VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (item, location) WHERE cleared_at IS NULL DO NOTHING",
                    (item, loc, point, qty, at),
                )
                event = "low_stock"
            elif qty > point and loc in open_:
                db.run("UPDATE stock_alerts SET cleared_at = %s WHERE id = %s", (at, open_[loc]))
                event = "stock_back"
            else:
                continue
            if webhook:
                payload = {"event": event, "item": item, "location": loc, "on_hand": qty,
                           "reorder_point": point, "at": at}  # fmt: skip
                db.run(
                    "INSERT INTO alert_outbox(payload) VALUES (%s)",
                    (json.dumps(payload, sort_keys=True),),
                )


def list_alerts(db: Db, everything: bool) -> dict[str, Any]:
    rows = db.rows(
        "SELECT id, item, location, point, on_hand, raised_at, cleared_at FROM stock_alerts "
        + ("" if everything else "WHERE cleared_at IS NULL ")
        + "ORDER BY id DESC LIMIT 1000"
    )
    counts = db.rows(
        "SELECT count(*), coalesce(sum(CASE WHEN cleared_at IS NULL THEN 1 ELSE 0 END), 0) "
        "FROM stock_alerts"
    )[0]
    queue = db.rows(
        "SELECT coalesce(sum(CASE WHEN sent_at IS NULL THEN 1 ELSE 0 END), 0), "
        "coalesce(sum(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0) FROM alert_outbox"
    )[0]
    return {
        "alerts": [
            {
                "id": int(i),
                "item": it,
                "location": loc,
                "reorder_point": int(p),
                "on_hand": int(q),
                "raised_at": r,
                "cleared_at": c,
            }
            for i, it, loc, p, q, r, c in rows
        ],
        "metrics": {
            "raised_total": int(counts[0]),
            "open": int(counts[1]),
            "webhook_pending": int(queue[0]),
            "webhook_sent": int(queue[1]),
        },
    }


def enable_webhook(db: Db, on: bool) -> None:
    if on:
        db.run(
            "INSERT INTO val_settings(key, value) VALUES (%s, '1') ON CONFLICT (key) DO NOTHING",
            (WEBHOOK_KEY,),
        )
    else:
        db.run("DELETE FROM val_settings WHERE key = %s", (WEBHOOK_KEY,))


class AlertSender:
    """Drains ``alert_outbox`` to the webhook: oldest first, one POST each, retried with
    exponential backoff (kept in the row, so a restart does not reset it).

    Owned by the server's lifespan (`run` is cancelled with it); `send_due` is one
    pass, with the clock passed in, for tests.
    """

    def __init__(self, store: Any, url: str, client: httpx.AsyncClient) -> None:
        self.store = store
        self.url = url
        self.client = client

    async def send_due(self, now: float, limit: int = 50) -> int:
        """POST what is due at ``now``, oldest first; how many were delivered. Alerts go
        out in the order they were raised: a failing one holds back those behind it."""
        due = await asyncio.to_thread(
            self.store.read,
            lambda db: db.rows(
                "SELECT id, payload, attempts, next_at FROM alert_outbox WHERE sent_at IS NULL "
                "ORDER BY id LIMIT %s",
                (limit,),
            ),
        )
        sent = 0
        for rid, payload, attempts, next_at in due:
            if float(next_at) > now:
                break  # the oldest waits out its backoff, and the rest behind it
            error = await self._post(payload)
            await asyncio.to_thread(self.store.write, _marker(int(rid), int(attempts), now, error))
            if error is not None:
                log.warning("alert webhook %s: %s (attempt %d)", self.url, error, attempts + 1)
                break  # in order: the rest waits for this one
            sent += 1
        return sent

    async def _post(self, payload: str) -> str | None:
        try:
            r = await self.client.post(
                self.url, content=payload, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if r.is_success else f"HTTP {r.status_code}"

    async def run(self, period_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        while True:
            try:
                await self.send_due(clock())
            except LedgerError as exc:  # the store is down or busy: the next pass tries again
                log.warning("alert webhook pass skipped: %s", exc)
            await asyncio.sleep(period_s)


def _marker(rid: int, attempts: int, now: float, error: str | None) -> Callable[[Db], None]:
    def work(db: Db) -> None:
        if error is None:
            at = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            db.run(
                "UPDATE alert_outbox SET sent_at = %s, last_error = NULL WHERE id = %s", (at, rid)
            )
        else:
            wait = min(MAX_BACKOFF_S, 2.0**attempts)
            db.run(
                "UPDATE alert_outbox SET attempts = %s, next_at = %s, last_error = %s WHERE id = %s",
                (attempts + 1, now + wait, error[:300], rid),
            )

    return work
