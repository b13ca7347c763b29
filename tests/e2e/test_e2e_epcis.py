"""The epcis sink driven by the real Syncer into the reference ledger's EPCIS capture, over loopback.

The ledger runs as its own process; a fault proxy sits between where a test
needs a lost answer. Every document the sink sends is checked against GS1's
JSON Schema on its way through.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faultproxy import LOST, FaultProxy
from harness import AGENT, LedgerProcess, no_wait, run_bench

from agent.alarms import Alarms
from agent.clock import Uuid7
from agent.config.sinks import EpcisSinkConfig
from agent.epcis.identifiers import sgtin_uri, sscc_uri
from agent.model import ClockStamp, Item, Movement
from agent.outbox import Commit, Outbox
from agent.sync import HttpLedgerSink, RetryPolicy, Syncer
from agent.sync.epcis import EpcisSink
from tests.epcis_schema import errors

GTIN = "09506000134352"
SGLN = "urn:epc:id:sgln:9506000.13435.0"


def movements() -> list[Movement]:
    """One of every kind a station makes, serialised and counted, in an order on-hand allows."""
    ids = Uuid7()
    lot = Item(gtin=GTIN, lot="L1")
    clock = ClockStamp(True, "boot", 1)

    def m(kind: str, item: Item, qty: int, **kw: Any) -> Movement:
        return Movement(
            id=ids.new(), agent=AGENT, kind=kind, item=item, qty=qty,  # type: ignore[arg-type]
            station="recv-1", device="scanner-1", observed_at="2026-05-01T10:00:00.000000Z",
            clock=clock, ref={"po": "4500001"} if kind == "receive" else {}, **kw,
        )  # fmt: skip

    return [
        m("receive", lot, 12, to="DOCK"),
        m("receive", Item(gtin=GTIN, serial="S/1"), 1, to="DOCK"),
        m("receive", Item(sku="BOLT-M6"), 100, to="DOCK"),
        m("receive", Item(sscc="106141412345678908"), 1, to="DOCK"),
        m("transfer", lot, 5, from_="DOCK", to="A-01"),
        m("ship", lot, 3, from_="DOCK"),
        m("ship", Item(sscc="106141412345678908"), 1, from_="DOCK"),
        m("return", lot, 1, to="DOCK", reason="restock"),
        m("count", lot, 4, to="A-01"),
        m("adjust", lot, 1, from_="A-01", reason="damaged"),
        m("adjust", Item(sku="BOLT-M6"), 2, to="DOCK", reason="found"),
        m("count_close", Item(), 1, to="A-01", evidence={"counted": [GTIN]}),
    ]


class Checked(httpx.AsyncBaseTransport):
    """The real network transport, checking each capture document against the schema."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.documents: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            doc = json.loads(await request.aread())
            assert errors(doc) == []
            self.documents.append(doc)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Rig:
    """An outbox holding ``batch``; the ``rig`` fixture closes it (its writer is a thread)."""

    def __init__(self, tmp_path: Path, name: str, batch: list[Movement]) -> None:
        self.outbox = Outbox.open(tmp_path / f"{name}.db", AGENT, 1 << 26)
        self.outbox.store_blocking([Commit(None, [m]) for m in batch])
        self.alarms = Alarms()

    def syncer(self, sink: Any, batch_max: int = 500) -> Syncer:
        return Syncer(
            self.outbox, sink, RetryPolicy(0.5, 60, 120.0), self.alarms, batch_max=batch_max,
            sleep=no_wait,
        )  # fmt: skip

    def states(self) -> dict[str, tuple[str, str | None]]:
        conn = self.outbox._rconn
        assert conn is not None
        return {
            r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, state, last_error FROM movements")
        }


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[[str, list[Movement]], Rig]]:
    opened: list[Rig] = []

    def make(name: str, batch: list[Movement]) -> Rig:
        opened.append(Rig(tmp_path, name, batch))
        return opened[-1]

    yield make
    for r in opened:
        r.outbox.close()


def epcis_sink(ledger: LedgerProcess, url: str | None = None) -> tuple[EpcisSink, Checked]:
    transport = Checked()
    settings = EpcisSinkConfig(
        url=(url or ledger.url) + "/epcis", stations={"recv-1": SGLN}, timezone="Europe/Paris"
    )
    return EpcisSink(settings, ledger.token, transport=transport, sleep=no_wait), transport


def captured(ledger: LedgerProcess, **params: Any) -> list[dict[str, Any]]:
    with ledger.reader_client() as c:
        r = c.get("/epcis/events", params={"perPage": 1000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert errors(body) == []
    return list(body["epcisBody"]["queryResults"]["resultsBody"]["eventList"])


async def test_every_kind_reaches_the_ledger_as_the_http_ledger_sink_would_book_it(
    tmp_path: Path, ledger: LedgerProcess, rig: Callable[[str, list[Movement]], Rig]
) -> None:
    batch = movements()
    (tmp_path / "native").mkdir()
    native = LedgerProcess(tmp_path / "native")
    native.start()
    try:
        via_epcis = rig("epcis", batch)
        sink, transport = epcis_sink(ledger)
        await via_epcis.syncer(sink, batch_max=5).drain()
        await sink.aclose()
        via_http = rig("http", batch)
        http_sink = HttpLedgerSink(native.url, native.token)
        await via_http.syncer(http_sink).drain()
        await http_sink.aclose()
        assert set(via_epcis.states().values()) == {("delivered", None)}
        assert len(transport.documents) == 3  # batches of 5, 5 and 2
        # the same stock on hand, to the unit, whichever way the movements went
        assert ledger.on_hand() == native.on_hand() != {}
        assert [e["id"] for e in ledger.journal()] == [e["id"] for e in native.journal()]
        assert [e["eventID"] for e in captured(ledger)] == [f"urn:uuid:{m.id}" for m in batch]
        assert [e["bizStep"] for e in captured(ledger, eventType="ObjectEvent")][:2] == [
            "receiving",
            "receiving",
        ]
    finally:
        native.stop()


async def test_a_lost_answer_is_sent_again_and_booked_once(
    tmp_path: Path, ledger: LedgerProcess, rig: Callable[[str, list[Movement]], Rig]
) -> None:
    batch = movements()[:4]
    box = rig("outbox", batch)
    async with FaultProxy(ledger.port, deque([LOST])) as proxy:
        sink, transport = epcis_sink(ledger, proxy.url)
        syncer = box.syncer(sink)
        await syncer.drain()
        await sink.aclose()
    assert proxy.seen == ["lost", "pass"]
    assert len(transport.documents) == 2 and transport.documents[0] == transport.documents[1] | {
        "creationDate": transport.documents[0]["creationDate"]
    }
    assert syncer.status.retries == 1 and len(syncer.waits) == 1
    assert set(box.states().values()) == {("delivered", None)}
    journal = ledger.journal()
    assert sorted(e["id"] for e in journal) == sorted(m.id for m in batch)  # once each
    assert ledger.on_hand()[f"DOCK/{GTIN}"] == 13


async def test_a_bad_event_is_rejected_with_the_reason_and_the_rest_delivered(
    tmp_path: Path, ledger: LedgerProcess, rig: Callable[[str, list[Movement]], Rig]
) -> None:
    good = movements()[:3]
    ids = Uuid7()
    unmappable = _replace(good[0], id=ids.new(), item=Item(gtin="123"))
    booked = _replace(good[0], id=ids.new(), qty=99, seq=None)
    with ledger.client() as c:  # its id is in the journal already, for 99
        r = c.post("/v1/movements", json={"agent": AGENT, "movements": [booked.to_dict()]})
        assert r.json()["results"][0]["status"] == "applied"
    clashing_other = _replace(booked, qty=7)
    box = rig("outbox", [good[0], unmappable, clashing_other, good[1], good[2]])
    sink, _ = epcis_sink(ledger)
    await box.syncer(sink).drain()
    await sink.aclose()
    states = box.states()
    assert states[good[0].id] == states[good[1].id] == states[good[2].id] == ("delivered", None)
    state, reason = states[unmappable.id]
    assert state == "rejected" and "GTIN '123'" in (reason or "")
    state, reason = states[clashing_other.id]
    assert state == "rejected" and "in the journal already, with other content" in (reason or "")
    assert "rejected" in box.alarms.active()
    assert {e["eventID"] for e in captured(ledger)} == {f"urn:uuid:{m.id}" for m in good}


async def test_what_was_captured_is_found_by_step_and_epc(
    tmp_path: Path, ledger: LedgerProcess, rig: Callable[[str, list[Movement]], Rig]
) -> None:
    box = rig("outbox", movements())
    sink, _ = epcis_sink(ledger)
    await box.syncer(sink).drain()
    await sink.aclose()
    epc = sgtin_uri(GTIN, "S/1")
    found = captured(ledger, EQ_bizStep="receiving", MATCH_epc=epc)
    assert [e["epcList"] for e in found] == [[epc]]
    assert found[0]["readPoint"] == {"id": SGLN} and found[0]["eventTimeZoneOffset"] == "+02:00"
    assert captured(ledger, EQ_bizStep="shipping", MATCH_epc=epc) == []
    pallet = sscc_uri("106141412345678908")
    shipped = captured(ledger, EQ_bizStep="shipping", MATCH_epc=pallet)
    assert [(e["action"], e["disposition"], e["epcList"]) for e in shipped] == [
        ("OBSERVE", "in_transit", [pallet])
    ]


def _replace(m: Movement, **changes: Any) -> Movement:
    import dataclasses

    return dataclasses.replace(m, **changes)


def test_bench_epcis_prints_both_rates_and_loses_nothing(tmp_path: Path) -> None:
    result, _ = run_bench(
        "epcis", "--n", "300", "--batch", "100", "--rounds", "1", workdir=tmp_path
    )
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["http_ledger_per_s"] > 0 and result["epcis_per_s"] > 0
    ratio = result["epcis_per_s"] / result["http_ledger_per_s"]
    assert abs(result["epcis_vs_http_ledger"] - ratio) < 0.01
