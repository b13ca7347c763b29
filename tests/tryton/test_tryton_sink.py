"""The tryton sink against a real trytond on loopback: mapping, exactly once, faults."""

from __future__ import annotations

import asyncio
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

from faultproxy import LOST, PASS, FaultProxy
from harness import (
    AGENT,
    LedgerProcess,
    gtin14,
    make_daemon,
    run_until_settled,
    write_config,
    write_script,
)
from tryton_server import LOGIN, LOST_FOUND, PASSWORD, Reader, TrytonServer

from agent.alarms import Alarms
from agent.clock import Clock, Uuid7, utc_iso
from agent.model import ClockStamp, Item, Movement
from agent.outbox import Commit, Outbox, connect
from agent.sync import HttpLedgerSink, RetryPolicy, Syncer
from agent.sync.tryton import TrytonPlaces, TrytonSink

PLACES = TrytonPlaces(
    {"DOCK-7": "DOCK-7", "SHELF-A": "SHELF-A", "SHELF-B": "SHELF-B"}, lost_found=LOST_FOUND
)
SHELVES = dict(PLACES.locations)


def sink_for(url: str) -> TrytonSink:
    return TrytonSink(url, "edgetally", LOGIN, PASSWORD, PLACES, timeout_s=10)


def syncer(box: Outbox, sink: Any, batch_max: int = 50) -> Syncer:
    return Syncer(box, sink, RetryPolicy(0.02, 0.2, 0.2), Alarms(), batch_max=batch_max)


def outbox_with(path: Path, movements: list[Movement]) -> Outbox:
    box = Outbox.open(path, AGENT, 1 << 26)
    box.store_blocking([Commit(None, [m]) for m in movements])
    return box


class Maker:
    def __init__(self) -> None:
        self.clock, self.ids = Clock(), Uuid7()

    def __call__(self, kind: str, item: Item, qty: int, src: str | None = None,
                 dst: str | None = None, ref: dict[str, str] | None = None,
                 reason: str | None = None) -> Movement:  # fmt: skip
        return Movement(
            id=self.ids.new(),
            agent=AGENT,
            kind=kind,  # type: ignore[arg-type]
            item=item,
            qty=qty,
            from_=src,
            to=dst,
            reason=reason,
            ref=ref or {},
            station="dock-7",
            device="test",
            observed_at=utc_iso(self.clock.wall()),
            clock=ClockStamp(synced=True, boot_id=self.clock.boot_id, mono_ns=self.clock.mono_ns()),
        )


def every_kind() -> list[Movement]:
    m = Maker()
    a, b, lot = Item(gtin=gtin14(1)), Item(sku="SKU-1"), Item(gtin=gtin14(2), lot="L7")
    return [
        m("receive", a, 20, dst="DOCK-7", ref={"po": "PO-1"}),
        m("receive", b, 9, dst="DOCK-7"),
        m("receive", lot, 6, dst="DOCK-7"),
        m("transfer", a, 8, "DOCK-7", "SHELF-A"),
        m("ship", a, 3, src="SHELF-A", ref={"order": "SO-1"}),
        m("return", a, 1, dst="SHELF-B", reason="restock"),
        m("adjust", b, 2, src="DOCK-7", reason="scrap"),
        m("adjust", b, 1, dst="DOCK-7", reason="found"),
        m("count", a, 4, dst="SHELF-A"),  # 5 there: a variance of -1
        m("count", b, 11, dst="DOCK-7"),  # 8 there: +3
        m("count", lot, 6, dst="DOCK-7"),  # as expected: a move of 0 records the id
        m("transfer", lot, 2, "DOCK-7", "SHELF-B"),
    ]


async def test_every_kind_books_what_the_reference_ledger_computes(
    tmp_path: Path, tryton: TrytonServer, ledger: LedgerProcess
) -> None:
    movements = every_kind()
    to_tryton = outbox_with(tmp_path / "out-tryton.db", movements)
    to_ledger = outbox_with(tmp_path / "out-ledger.db", movements)
    sink = sink_for(f"http://127.0.0.1:{tryton.port}")
    ledger_sink = HttpLedgerSink(ledger.url, ledger.token)
    try:
        await syncer(to_tryton, sink, batch_max=5).drain()
        await syncer(to_ledger, ledger_sink).drain()
    finally:
        await sink.aclose()
        await ledger_sink.aclose()
        to_tryton.close()
        to_ledger.close()
    reader = Reader(tryton)
    assert reader.on_hand(SHELVES) == ledger.on_hand()
    moves = reader.moves()
    assert [mv["edgetally_id"] for mv in moves] == [m.id for m in movements]
    assert {mv["state"] for mv in moves} == {"done"}
    by_id = {mv["edgetally_id"]: mv for mv in moves}
    scrap, count_a = by_id[movements[6].id], by_id[movements[8].id]
    assert (scrap["from_location."]["code"], scrap["to_location."]["code"]) == ("DOCK-7", "LOST")
    assert (count_a["from_location."]["code"], count_a["quantity"]) == ("SHELF-A", 1.0)
    assert by_id[movements[10].id]["quantity"] == 0.0
    assert by_id[movements[2].id]["lot."]["number"] == "L7"


async def test_dock_session_through_the_agent_matches_the_ledger(
    tmp_path: Path, tryton: TrytonServer, ledger: LedgerProcess
) -> None:
    """The simulated scanner's dock session -> rules -> outbox: the agent's own movements,
    delivered to the reference ledger by the daemon and to Tryton by the tryton sink."""
    a, b, c = gtin14(3), gtin14(4), gtin14(5)
    script = write_script(
        tmp_path / "s.jsonl",
        [{"data": "PO:4500000001"}, {"data": a}, {"data": a}, {"data": "QTY:6"}, {"data": b},
         {"data": f"01{c}10LOT1\u001d21S1"}, {"data": "garbage-code"}, {"data": f"01{a}3012"},
         {"data": "END"}],
    )  # fmt: skip
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script)
    await run_until_settled(make_daemon(cfg, ledger.token))
    made = [
        Movement.from_dict({k: v for k, v in e.items() if k not in ("pos", "source")})
        for e in ledger.journal()
        if e["source"] == "agent"
    ]
    assert len(made) == 5
    box = outbox_with(tmp_path / "tryton-outbox.db", made)
    sink = sink_for(f"http://127.0.0.1:{tryton.port}")
    try:
        await syncer(box, sink).drain()
    finally:
        await sink.aclose()
        box.close()
    assert Reader(tryton).on_hand(SHELVES) == ledger.on_hand() == {
        f"DOCK-7/{a}": 14, f"DOCK-7/{b}": 6, f"DOCK-7/{c}": 1,
    }  # fmt: skip


async def test_unknown_product_is_rejected_with_the_reason_and_the_rest_delivered(
    tmp_path: Path, tryton: TrytonServer
) -> None:
    m = Maker()
    movements = [
        m("receive", Item(gtin=gtin14(6)), 2, dst="DOCK-7"),
        m("receive", Item(gtin=gtin14(99)), 1, dst="DOCK-7"),  # not a Tryton product
        m("receive", Item(gtin=gtin14(6)), 3, dst="NOWHERE"),  # not mapped
        m("receive", Item(gtin=gtin14(6)), 4, dst="DOCK-7"),
    ]
    box = outbox_with(tmp_path / "outbox.db", movements)
    sink = sink_for(f"http://127.0.0.1:{tryton.port}")
    try:
        s = syncer(box, sink)
        await s.drain()
    finally:
        await sink.aclose()
        box.close()
    rows = (
        connect(tmp_path / "outbox.db", readonly=True)
        .execute("SELECT state, last_error FROM movements ORDER BY seq")
        .fetchall()
    )
    assert [r[0] for r in rows] == ["delivered", "rejected", "rejected", "delivered"]
    assert rows[1][1] == f"no product with code or identifier {gtin14(99)!r}"
    assert rows[2][1] == "EdgeTally location 'NOWHERE' (to) is not mapped to a Tryton location"
    assert "rejected" in s.alarms.active()
    assert Reader(tryton).on_hand(SHELVES) == {f"DOCK-7/{gtin14(6)}": 6}


async def test_lost_answers_never_book_twice(tmp_path: Path, tryton: TrytonServer) -> None:
    m = Maker()
    movements = [m("receive", Item(gtin=gtin14(7)), 1, dst="DOCK-7") for _ in range(30)]
    box = outbox_with(tmp_path / "outbox.db", movements)
    # login, preferences, then each booking: the 1st and 3rd answers are lost after Tryton
    # committed them, so the resends find every id booked.
    faults = deque([PASS, PASS, LOST, PASS, LOST, LOST])
    async with FaultProxy(tryton.port, faults) as proxy:
        sink = sink_for(proxy.url)
        try:
            await syncer(box, sink, batch_max=7).drain()
        finally:
            await sink.aclose()
            box.close()
    assert not faults
    assert proxy.seen.count("lost") == 3
    moves = Reader(tryton).moves()
    assert sorted(mv["edgetally_id"] for mv in moves) == sorted(x.id for x in movements)
    assert Reader(tryton).on_hand(SHELVES) == {f"DOCK-7/{gtin14(7)}": 30}


async def drained(box: Outbox, stall_s: float = 30.0) -> None:
    """Wait until nothing is pending; fail if ``stall_s`` pass with nothing delivered.

    A bound on progress, not on the whole drain: after the restart Tryton books the
    backlog at the pace of the CPU it gets (beside a CPU hog on 2 cores, 29 s from the
    restart to the last of 300 bookings, so a 30 s budget for the whole drain failed).
    A healthy syncer delivers a batch or fails it within its request timeout (10 s)
    and retry (0.2 s).
    """
    loop = asyncio.get_running_loop()
    delivered, since = -1, loop.time()
    while (stats := await asyncio.to_thread(box.stats)).pending:
        if stats.delivered != delivered:
            delivered, since = stats.delivered, loop.time()
        assert loop.time() - since < stall_s, f"no delivery for {stall_s:g} s: {stats}"
        await asyncio.sleep(0.1)


async def test_tryton_stopped_during_a_burst_gets_everything_once(
    tmp_path: Path, tryton: TrytonServer
) -> None:
    m = Maker()
    box = Outbox.open(tmp_path / "outbox.db", AGENT, 1 << 26)
    sink = sink_for(f"http://127.0.0.1:{tryton.port}")
    s = syncer(box, sink, batch_max=20)
    task = asyncio.create_task(s.run())
    made: list[Movement] = []
    try:
        for burst in range(6):
            batch = [m("receive", Item(gtin=gtin14(8)), 1, dst="DOCK-7") for _ in range(50)]
            made += batch
            await asyncio.to_thread(box.store_blocking, [Commit(None, [x]) for x in batch])
            if burst == 2:
                await asyncio.to_thread(tryton.stop)  # mid-burst: the syncer is sending
            if burst == 4:
                for _ in range(100):  # the syncer's next attempt finds Tryton down
                    if s.status.retries and "unreachable" in (s.status.last_error or ""):
                        break
                    await asyncio.sleep(0.1)
                assert s.status.retries >= 1 and "unreachable" in (s.status.last_error or "")
                await asyncio.to_thread(tryton.start)
            await asyncio.sleep(0.3)
        await drained(box)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.aclose()
        box.close()
    moves = Reader(tryton).moves()
    assert sorted(mv["edgetally_id"] for mv in moves) == sorted(x.id for x in made)
    assert Reader(tryton).on_hand(SHELVES) == {f"DOCK-7/{gtin14(8)}": 300}


async def test_fifo_valuation_against_a_worked_example(
    tmp_path: Path, tryton: TrytonServer
) -> None:
    """Our ledger has no valuation yet (issue 12), so Tryton's FIFO is checked against
    a hand-computed example: receive 10 @ 2.00 and 5 @ 3.10, ship 12, ship 2.

    FIFO: the first ship costs 10 × 2.00 + 2 × 3.10 = 26.20, the second 2 × 3.10 = 6.20;
    1 @ 3.10 = 3.10 remains. Tryton stores one cost price per move, rounded to 4 places:
    26.20 / 12 = 2.18333… is kept as 2.1833, so its cost of goods sold reads 26.1996,
    0.0004 short of 26.20: a documented difference of rounding, not of costing order.
    """
    m = Maker()
    item = Item(gtin=gtin14(9))
    movements = [
        m("receive", item, 10, dst="DOCK-7", ref={"unit_cost": "2.00"}),
        m("receive", item, 5, dst="DOCK-7", ref={"unit_cost": "3.10"}),
        m("ship", item, 12, src="DOCK-7"),
        m("ship", item, 2, src="DOCK-7"),
    ]
    box = outbox_with(tmp_path / "outbox.db", movements)
    sink = sink_for(f"http://127.0.0.1:{tryton.port}")
    try:
        await syncer(box, sink, batch_max=1).drain()
    finally:
        await sink.aclose()
        box.close()
    reader = Reader(tryton)
    moves = {mv["edgetally_id"]: mv for mv in reader.moves()}

    def dec(v: Any) -> Decimal:
        return Decimal(v["decimal"]) if isinstance(v, dict) else Decimal(str(v))

    first, second = moves[movements[2].id], moves[movements[3].id]
    assert dec(first["cost_price"]) == Decimal("2.1833")  # 26.20 / 12, to 4 places
    assert dec(second["cost_price"]) == Decimal("3.1000")
    cogs = 12 * dec(first["cost_price"]) + 2 * dec(second["cost_price"])
    assert cogs == Decimal("32.3996")  # hand: 26.20 + 6.20 = 32.40, less the rounding
    assert abs(cogs - Decimal("32.40")) < Decimal("0.0005") * 12
    incoming = reader.call(
        "model.stock.move.search_read",
        [("edgetally_id", "in", [movements[0].id, movements[1].id])],
        0, None, [("id", "ASC")], ["quantity", "fifo_quantity", "unit_price"],
    )  # fmt: skip
    remaining = sum(
        (Decimal(str(mv["quantity"])) - Decimal(str(mv["fifo_quantity"]))) * dec(mv["unit_price"])
        for mv in incoming
    )
    assert remaining == Decimal("3.10")  # 1 @ 3.10: the FIFO layer left agrees to the cent
    assert reader.on_hand(SHELVES) == {f"DOCK-7/{gtin14(9)}": 1}


async def test_the_daemon_delivers_to_tryton_beside_the_ledger_from_sync_sink_tables(
    tmp_path: Path, tryton: TrytonServer, ledger: LedgerProcess
) -> None:
    """issue 14 + 16: `[[sync.sink]] type = "tryton"` beside [sync]'s ledger; one outbox,
    two delivery tasks; both books agree and every movement is delivered to each once."""
    a, b = gtin14(7), gtin14(8)
    script = write_script(
        tmp_path / "s.jsonl",
        [{"data": "PO:4500000002"}, {"data": a}, {"data": "QTY:4"}, {"data": b}, {"data": a},
         {"data": "END"}],
    )  # fmt: skip
    password = tmp_path / "tryton-password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    table = (
        f'\n[[sync.sink]]\nname = "erp"\ntype = "tryton"\nurl = "http://127.0.0.1:{tryton.port}"\n'
        f'database = "edgetally"\nlogin = "{LOGIN}"\npassword_file = "{password}"\n'
        f'lost_found = "{LOST_FOUND}"\nbatch_max = 2\n'
        '[sync.sink.locations]\n"DOCK-7" = "DOCK-7"\n'
    )
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script, extra_sync=table)
    daemon = make_daemon(cfg, ledger.token)
    assert list(daemon.config.sinks[i].name for i in range(2)) == ["ledger", "erp"]
    await run_until_settled(daemon)
    assert daemon.syncers["erp"].status.delivered == daemon.syncers["ledger"].status.delivered == 3
    assert Reader(tryton).on_hand(SHELVES) == ledger.on_hand() == {
        f"DOCK-7/{a}": 2, f"DOCK-7/{b}": 4,  # QTY:4 counts the next item
    }  # fmt: skip
    ids = [e["id"] for e in ledger.journal() if e["source"] == "agent"]
    assert sorted(mv["edgetally_id"] for mv in Reader(tryton).moves()) == sorted(ids)
    rows = (
        connect(tmp_path / "outbox.db", readonly=True)
        .execute("SELECT state, count(*) FROM movements GROUP BY state")
        .fetchall()
    )
    assert rows == [("delivered", 3)]
