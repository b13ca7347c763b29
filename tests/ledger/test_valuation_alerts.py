"""Reorder points and low-stock alerts on both backends, and the webhook sender against a
real little HTTP receiver on loopback (it fails, then takes them, in order)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from ledger.store import SqlStore
from ledger.valuation.alerts import AlertSender, enable_webhook, list_alerts
from ledger.valuation.items import import_items

GTIN = "09506000134352"
AGENT = "dock-3"


def open_alerts(store: SqlStore) -> set[tuple[str, int, int]]:
    found = store.read(lambda db: list_alerts(db, False))["alerts"]
    return {(a["location"], a["on_hand"], a["reorder_point"]) for a in found}


def test_low_stock_raised_once_and_cleared(store: SqlStore, mv: Any) -> None:
    store.add_agent(AGENT)
    store.write(lambda db: import_items(db, f"item,reorder_point\n{GTIN},5\n", "items.csv"))
    store.apply_batch(AGENT, [mv("receive", 10)])
    assert open_alerts(store) == set()
    store.apply_batch(AGENT, [mv("ship", 6)])
    assert open_alerts(store) == {("DOCK-3", 4, 5), ("*", 4, 5)}
    store.apply_batch(AGENT, [mv("ship", 1)])
    assert open_alerts(store) == {("DOCK-3", 4, 5), ("*", 4, 5)}  # raised once, not again
    store.apply_batch(AGENT, [mv("transfer", 3)])  # DOCK-3 at 0; A-01 at 3, total still 3
    assert open_alerts(store) == {("DOCK-3", 4, 5), ("*", 4, 5), ("A-01", 3, 5)}
    store.apply_batch(AGENT, [mv("receive", 20)])
    assert open_alerts(store) == {("A-01", 3, 5)}
    metrics = store.read(lambda db: list_alerts(db, True))["metrics"]
    assert metrics == {"raised_total": 3, "open": 1, "webhook_pending": 0, "webhook_sent": 0}


def test_reorder_point_computed_from_usage(store: SqlStore, mv: Any) -> None:
    """30 shipped in the 30-day window: 1 a day × 4 days lead time + 2 safety = 6."""
    store.add_agent(AGENT)
    store.write(
        lambda db: import_items(db, f"item,lead_time_days,safety_stock\n{GTIN},4,2\n", "items.csv")
    )
    store.apply_batch(AGENT, [mv("receive", 40), mv("ship", 30)])
    assert open_alerts(store) == set()  # 10 held > 6
    store.apply_batch(AGENT, [mv("ship", 4)])  # 6 held; 34 shipped: ceil(34/30 × 4) + 2 = 7
    assert open_alerts(store) == {("DOCK-3", 6, 7), ("*", 6, 7)}


class _Receiver(BaseHTTPRequestHandler):
    fail = True
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).fail:
            self.send_response(503)
        else:
            type(self).got.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"fail": True, "got": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_webhook_retried_in_order_never_blocking_postings(
    store: SqlStore, mv: Any, receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    store.add_agent(AGENT)
    store.write(lambda db: enable_webhook(db, True))
    store.write(lambda db: import_items(db, f"item,reorder_point\n{GTIN},2\n", "items.csv"))
    # postings go through while the webhook is down
    assert store.apply_batch(AGENT, [mv("receive", 3)])[0]["status"] == "applied"
    assert store.apply_batch(AGENT, [mv("ship", 2, from_="DOCK-3")])[0]["status"] == "applied"
    assert store.apply_batch(AGENT, [mv("receive", 5)])[0]["status"] == "applied"
    async with httpx.AsyncClient(timeout=5) as client:
        sender = AlertSender(store, url, client)
        assert await sender.send_due(now=1000.0) == 0  # 503: kept, retried in 1 s
        assert await sender.send_due(now=1000.5) == 0  # not due yet: nothing sent
        assert handler.got == []
        handler.fail = False
        assert await sender.send_due(now=1001.0) == 4
        assert await sender.send_due(now=1002.0) == 0  # sent once each
    assert [(a["event"], a["location"], a["on_hand"]) for a in handler.got] == [
        ("low_stock", "*", 1), ("low_stock", "DOCK-3", 1),
        ("stock_back", "*", 6), ("stock_back", "DOCK-3", 6),
    ]  # fmt: skip
    metrics = store.read(lambda db: list_alerts(db, True))["metrics"]
    assert (metrics["webhook_pending"], metrics["webhook_sent"]) == (0, 4)


async def test_alerts_endpoint(
    client: httpx.AsyncClient, reader: httpx.AsyncClient, store: SqlStore, mv: Any
) -> None:
    store.write(lambda db: import_items(db, f"item,reorder_point\n{GTIN},1\n", "items.csv"))
    await client.post("/v1/movements", json={"agent": AGENT, "movements": [mv("receive", 1)]})
    refused = await client.get("/v1/alerts")  # an agent token reads only its own journal
    assert refused.status_code == 403
    body = (await reader.get("/v1/alerts")).json()
    assert {a["location"] for a in body["alerts"]} == {"DOCK-3", "*"}
    assert body["metrics"]["open"] == 2
    r = await reader.get("/v1/alerts", params={"format": "csv"})
    assert r.text.splitlines()[0].startswith("id,item,location,reorder_point,on_hand")
