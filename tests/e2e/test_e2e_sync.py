"""Scans -> outbox -> ledger, in-process agent against a real ledger process over loopback."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from pathlib import Path

from faultproxy import DROP, LOST, PASS, FaultProxy, status
from harness import (
    AGENT,
    LedgerProcess,
    gtin14,
    make_daemon,
    no_wait,
    run_until_settled,
    write_config,
    write_script,
)

from agent.clock import Clock, Uuid7, utc_iso
from agent.model import ClockStamp, Item, Movement
from agent.outbox import Commit, Outbox, connect


def agent_movements(journal: list[dict]) -> list[dict]:
    return [e for e in journal if e["source"] == "agent"]


def assert_exactly_once_in_order(journal: list[dict], expected: int) -> None:
    mine = agent_movements(journal)
    ids = [e["id"] for e in mine]
    assert len(ids) == len(set(ids)) == expected
    assert [e["seq"] for e in mine] == list(range(1, expected + 1))


async def test_dock_session_reaches_the_ledger(tmp_path: Path, ledger: LedgerProcess) -> None:
    a, b, c = gtin14(1), gtin14(2), gtin14(3)
    script = write_script(
        tmp_path / "s.jsonl",
        [
            {"data": "PO:4500000001"},
            {"data": a},
            {"data": a},
            {"data": "QTY:6"},
            {"data": b},
            {"data": f"01{c}10LOT1\u001d21S1"},
            {"data": "garbage-code"},
            {"data": f"01{a}3012"},
            {"data": "END"},
        ],
    )
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script)
    daemon = make_daemon(cfg, ledger.token)
    await run_until_settled(daemon)

    assert ledger.on_hand() == {f"DOCK-7/{a}": 14, f"DOCK-7/{b}": 6, f"DOCK-7/{c}": 1}
    journal = agent_movements(ledger.journal())
    assert_exactly_once_in_order(journal, 5)
    assert [e["ref"] for e in journal] == [{"po": "4500000001"}] * 5
    lot = next(e for e in journal if e["item"]["gtin"] == c)["item"]
    assert lot == {"gtin": c, "lot": "LOT1", "serial": "S1"}
    assert daemon.counters.reads["bad"] == 1  # the garbage code: kept, signalled bad
    conn = connect(daemon.config.outbox_path, readonly=True)
    assert (
        conn.execute("SELECT outcome FROM reads WHERE data = ?", (b"garbage-code",))
        .fetchone()[0]
        .startswith("bad: unknown code")
    )


async def test_exactly_once_through_network_faults(tmp_path: Path, ledger: LedgerProcess) -> None:
    item = gtin14(7)
    script = write_script(tmp_path / "s.jsonl", [{"data": item}] * 40)
    faults = deque(
        [
            status(503),
            status(429, "1"),
            DROP,
            LOST,  # applied at the ledger, answer lost: the resend must be a duplicate
            status(502),
            status(429, "Wed, 21 Oct 2015 07:28:00 GMT"),  # a date in the past: no extra wait
            status(504),
            LOST,
            status(500),
            status(408),
        ]
    )
    async with FaultProxy(ledger.port, faults) as proxy:
        cfg = write_config(
            tmp_path, proxy.url, ledger.token_file, script, extra_sync="batch_max = 4\n"
        )
        daemon = make_daemon(cfg, ledger.token, sleep=no_wait)
        await run_until_settled(daemon)

    assert not faults, "every fault was used"
    assert {"503", "429", "drop", "lost", "502", "504", "500", "408", "pass"} <= set(proxy.seen)
    assert_exactly_once_in_order(ledger.journal(), 40)
    assert ledger.on_hand() == {f"DOCK-7/{item}": 40}
    waits = daemon.syncer.waits
    assert len(waits) == len([s for s in proxy.seen if s != "pass"])  # one wait per failure
    # Every wait is under the 0.5 s cap, Retry-After: 1 included; the stale date adds nothing.
    assert all(0 <= w <= 0.5 for w in waits)
    assert waits[1] == 0.5  # the 429 with Retry-After: 1, capped
    assert daemon.syncer.status.delivered == 40
    assert not daemon.alarms.active()


async def test_retry_after_raises_the_wait_under_the_cap(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(8)}])
    faults = deque([status(429, "7"), status(503, "2"), PASS])
    async with FaultProxy(ledger.port, faults) as proxy:
        cfg = write_config(
            tmp_path,
            proxy.url,
            ledger.token_file,
            script,
            backoff_cap_s=5,
            backoff_initial_s=0.01,
        )
        daemon = make_daemon(cfg, ledger.token, sleep=no_wait)
        await run_until_settled(daemon)
    # max(Retry-After, backoff) under the cap: 7 s is cut to the 5 s cap, 2 s is honoured.
    assert daemon.syncer.waits == [5.0, 2.0]
    assert_exactly_once_in_order(ledger.journal(), 1)


async def test_outage_of_10000_scans_then_ledger_returns(
    tmp_path: Path, ledger_down: LedgerProcess
) -> None:
    n = 10_000
    items = [gtin14(i % 50) for i in range(n)]
    script = write_script(tmp_path / "s.jsonl", [{"data": g} for g in items])
    cfg = write_config(tmp_path, ledger_down.url, ledger_down.token_file, script)
    daemon = make_daemon(cfg, ledger_down.token)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        for _ in range(1200):  # the agent keeps accepting while the ledger is down
            if daemon.counters.reads["good"] == n:
                break
            await asyncio.sleep(0.1)
        assert daemon.counters.reads["good"] == n
        stats = await asyncio.to_thread(daemon.outbox.stats)
        assert (stats.pending, stats.delivered) == (n, 0)
        assert daemon.syncer.status.retries >= 1
        assert "unreachable" in (daemon.syncer.status.last_error or "")
        await asyncio.to_thread(ledger_down.start)
        await asyncio.wait_for(daemon.wait_settled(), 180)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    assert_exactly_once_in_order(ledger_down.journal(), n)
    assert sum(ledger_down.on_hand().values()) == n


def _movement(ids: Uuid7, clock: Clock, gtin: str, mid: str | None = None) -> Movement:
    return Movement(
        id=mid or ids.new(),
        agent=AGENT,
        kind="receive",
        item=Item(gtin=gtin),
        qty=1,
        to="DOCK-7",
        station="dock-7",
        device="test",
        observed_at=utc_iso(clock.wall()),
        clock=ClockStamp(synced=False, boot_id=clock.boot_id, mono_ns=clock.mono_ns()),
    )


async def test_rejected_movement_does_not_block_the_ones_behind(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    clock, ids = Clock(), Uuid7()
    poison_id = ids.new()
    # The ledger already holds a different movement under this id: the agent's is a
    # conflict, which the agent keeps as rejected, with an alarm.
    other = _movement(ids, clock, gtin14(1), poison_id).to_dict()
    other["qty"] = 5
    with ledger.client() as client:
        r = client.post("/v1/movements", json={"agent": AGENT, "movements": [other]})
        assert r.json()["results"][0]["status"] == "applied"
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, None)
    box = Outbox.open(tmp_path / "outbox.db", AGENT, 1 << 26)
    movements = [_movement(ids, clock, gtin14(2)) for _ in range(3)]
    movements.insert(1, _movement(ids, clock, gtin14(1), poison_id))
    box.store_blocking([Commit(None, [m]) for m in movements])
    box.close()

    daemon = make_daemon(cfg, ledger.token)
    await run_until_settled(daemon)
    conn = connect(tmp_path / "outbox.db", readonly=True)
    rows = conn.execute("SELECT seq, state, last_error FROM movements ORDER BY seq").fetchall()
    assert [r[1] for r in rows] == ["delivered", "rejected", "delivered", "delivered"]
    assert rows[1][2] == "conflict: id already used for a different movement"
    assert "rejected" in daemon.alarms.active()
    assert ledger.on_hand()[f"DOCK-7/{gtin14(2)}"] == 3


async def test_outbox_cap_refuses_reads_with_an_alarm_and_keeps_all(
    tmp_path: Path, ledger_down: LedgerProcess
) -> None:
    n = 3000
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(n)])
    ack = tmp_path / "ack.jsonl"
    cfg = write_config(
        tmp_path,
        ledger_down.url,
        ledger_down.token_file,
        script,
        extra_outbox="max_bytes = 1048576\n",
        ack_log=ack,
    )
    daemon = make_daemon(cfg, ledger_down.token)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        for _ in range(600):
            if sum(daemon.counters.reads.values()) == n:
                break
            await asyncio.sleep(0.1)
        refused = daemon.counters.reads["refused"]
        good = daemon.counters.reads["good"]
        assert refused > 0 and good > 0 and good + refused == n
        assert "outbox_refusing" in daemon.alarms.active()
        stats = await asyncio.to_thread(daemon.outbox.stats)
        assert stats.pending == good  # every acknowledged read is held, none dropped
        acks = [json.loads(line) for line in ack.read_text().splitlines()]
        assert sum(a["kind"] == "good" for a in acks) == good
        assert sum(a["kind"] == "bad" and "at its cap" in a["reason"] for a in acks) == refused
        assert any(a["kind"] == "alarm" for a in acks)  # the operator hears it, not only the log
        await asyncio.to_thread(ledger_down.start)
        await asyncio.wait_for(daemon.wait_settled(), 120)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    assert_exactly_once_in_order(ledger_down.journal(), good)


async def test_station_state_survives_a_restart(tmp_path: Path, ledger: LedgerProcess) -> None:
    item = gtin14(3)
    first = write_script(tmp_path / "a.jsonl", [{"data": "PO:77"}, {"data": "QTY:4"}])
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, first)
    await run_until_settled(make_daemon(cfg, ledger.token))
    # the agent restarts; the open PO and the pending quantity are still in force
    second = write_script(tmp_path / "b.jsonl", [{"data": item}, {"data": item}])
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, second)
    await run_until_settled(make_daemon(cfg, ledger.token))
    journal = agent_movements(ledger.journal())
    assert [(e["qty"], e["ref"]) for e in journal] == [(4, {"po": "77"}), (1, {"po": "77"})]
