"""Several sinks, real parts: the reference ledger as a process and a real mosquitto, fed
by one agent. One sink down never holds the other back; the one that was down catches up;
a kill -9 mid-delivery leaves each sink with every movement (the ledger exactly once,
MQTT at least once and deduped on the movement id, as the README says)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness import (
    ROOT,
    LedgerProcess,
    agent_env,
    gtin14,
    make_daemon,
    run_until_settled,
    write_config,
    write_script,
)

from agent.daemon import Daemon
from agent.demo.broker import MosquittoBroker
from tests.agent.mqtt_kit import Subscriber


def mqtt_table(broker: MosquittoBroker, batch_max: int = 500) -> str:
    return (
        f'\n[[sync.sink]]\nname = "mqtt"\ntype = "mqtt"\nhost = "{broker.host}"\n'
        f"port = {broker.port}\ntimeout_s = 2\nbatch_max = {batch_max}\n"
    )


def scans(n: int) -> list[dict[str, str]]:
    return [{"data": gtin14(1 + i % 9)} for i in range(n)]


async def until(done: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Poll a condition of the running parts (bounded): readiness, not timing."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not done():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def agent_ids(ledger: LedgerProcess) -> list[str]:
    return [e["id"] for e in ledger.journal() if e["source"] == "agent"]


def stored_ids(outbox: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return [i for (i,) in conn.execute("SELECT id FROM movements ORDER BY seq")]
    finally:
        conn.close()


async def test_mqtt_down_the_ledger_keeps_delivering_then_mqtt_catches_up(
    tmp_path: Path, ledger: LedgerProcess, broker: MosquittoBroker
) -> None:
    n = 60
    script = write_script(tmp_path / "s.jsonl", scans(n))
    cfg = write_config(
        tmp_path, ledger.url, ledger.token_file, script, extra_sync=mqtt_table(broker, 7)
    )
    broker.stop()
    daemon = make_daemon(cfg, ledger.token)
    task = asyncio.create_task(daemon.run())
    sub = Subscriber(broker)
    try:
        await until(lambda: len(agent_ids(ledger)) == n, "the ledger to have every movement")
        assert daemon.outbox is not None
        await until(lambda: not daemon.observer.sinks()["mqtt"]["ok"], "mqtt to count as down")
        sinks = daemon.observer.sinks()
        assert sinks["ledger"]["ok"] and sinks["ledger"]["pending"] == 0
        assert sinks["mqtt"]["pending"] == n and "broker mqtt://" in sinks["mqtt"]["last_error"]
        assert "sink mqtt not reachable" in " ".join(daemon.observer.health_reasons())
        assert daemon.outbox.pending_count == n  # held until mqtt has them too
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.observer.port}") as web:
            health = await web.get("/healthz")
            assert health.status_code == 503
            assert health.json()["sinks"]["mqtt"]["ok"] is False
            assert health.json()["sinks"]["ledger"]["ok"] is True
            board = (await web.get("/dock/board")).text  # the page's live fragment
            assert 'data-sink="ledger"><b>ledger</b> (http-ledger): 0 pending' in board
            assert f'data-sink="mqtt"><b>mqtt</b> (mqtt): {n} pending' in board
            assert "sink mqtt not reachable" in board
            metrics = (await web.get("/metrics")).text
            assert f'edgetally_sink_pending{{sink="mqtt"}} {float(n)}' in metrics
            assert 'edgetally_sink_up{sink="mqtt"} 0.0' in metrics
        broker.start()
        await sub.connect()
        await asyncio.wait_for(daemon.wait_settled(), 60)
        await sub.wait_for(lambda s: len(set(s.movement_ids())) == n)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await sub.close()
    ids = agent_ids(ledger)
    assert len(ids) == len(set(ids)) == n  # the ledger: exactly once
    assert Counter(sub.movement_ids()) == Counter(ids)  # mqtt: each once here (no kill)
    assert daemon.syncers["mqtt"].status.delivered == n


async def test_ledger_down_mqtt_keeps_delivering_then_the_ledger_catches_up(
    tmp_path: Path, ledger: LedgerProcess, broker: MosquittoBroker
) -> None:
    n = 40
    script = write_script(tmp_path / "s.jsonl", scans(n))
    cfg = write_config(
        tmp_path, ledger.url, ledger.token_file, script, extra_sync=mqtt_table(broker, 5)
    )
    ledger.stop()
    daemon: Daemon = make_daemon(cfg, ledger.token)
    task = asyncio.create_task(daemon.run())
    try:
        async with Subscriber(broker) as sub:
            await sub.wait_for(lambda s: len(s.movement_ids()) == n)
            assert daemon.outbox is not None
            await until(
                lambda: daemon.syncers["ledger"].status.failed_attempts >= 2, "a failed try"
            )
            assert daemon.outbox.sink_pending("ledger") == n
            # the subscriber may see the last batch before its PUBACKs are in the outbox
            outbox = daemon.outbox
            await until(lambda: outbox.sink_pending("mqtt") == 0, "mqtt's PUBACKs recorded")
            ledger.start()
            await asyncio.wait_for(daemon.wait_settled(), 60)
            ids = agent_ids(ledger)
            assert len(ids) == len(set(ids)) == n
            assert sorted(sub.movement_ids()) == sorted(ids)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)


def _agent(cfg: Path) -> subprocess.Popen[bytes]:
    with (cfg.parent / "agent.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
            cwd=ROOT,
            env=agent_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )


async def test_kill_9_mid_delivery_to_two_sinks_each_ends_with_every_movement(
    tmp_path: Path, ledger: LedgerProcess, broker: MosquittoBroker
) -> None:
    """The agent is SIGKILLed while both sinks are part way; restarted (without the
    scanner, which would play its script again), it finishes: the ledger has every
    movement once; the subscriber has every id, a batch whose PUBACKs were not yet
    recorded at the kill arriving twice (dedupe on the id); the broker published the
    last will, `offline`, when the agent vanished."""
    n = 3000
    script = write_script(tmp_path / "s.jsonl", scans(n))
    extra = "batch_max = 20\n" + mqtt_table(broker, 20)  # many batches in flight, one by one
    busy = write_config(tmp_path, ledger.url, ledger.token_file, script, extra_sync=extra)
    text = busy.read_text()
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(
        text[: text.index("[[devices]]")]
        + '[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\ndevices = []\n'
    )
    outbox = tmp_path / "outbox.db"
    async with Subscriber(broker) as sub:
        proc = _agent(busy)
        try:
            await until(lambda: len(agent_ids(ledger)) >= 100, "deliveries to begin", 90)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        # the broker saw the connection go without a DISCONNECT: it publishes the will
        await sub.wait_for(lambda s: ("edgetally/dock-7/status", b"offline", False) in s.messages)
        stored = stored_ids(outbox)
        at_kill = len(agent_ids(ledger))
        assert at_kill < n or len(set(sub.movement_ids())) < n, "the kill came after it all"
        proc = _agent(quiet)
        try:
            await until(
                lambda: len(agent_ids(ledger)) == len(stored), "the ledger to catch up", 120
            )
            await sub.wait_for(lambda s: set(s.movement_ids()) >= set(stored), 120)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    ids = agent_ids(ledger)
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(stored)  # ledger: exactly once
    got = Counter(sub.movement_ids())
    assert set(got) == set(stored)  # mqtt: every movement at least once
    twice = [i for i, c in got.items() if c > 1]
    assert len(twice) <= 2 * 20, "more than the batches in flight at the kill came twice"
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT state, count(*) FROM movements GROUP BY state").fetchall() == [
            ("delivered", len(stored))
        ]
    finally:
        conn.close()


DOCK_SGLN = "urn:epc:id:sgln:9506000.13435.7"


def dock_session() -> list[dict[str, Any]]:
    """The receiving example's dock session (PO, scans, quantities), three times over."""
    lines = (ROOT / "config" / "scripts" / "receiving.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()] * 3


async def test_a_dock_session_reaches_the_ledger_and_a_second_ledgers_epcis_once_each(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    (tmp_path / "second").mkdir()
    second = LedgerProcess(tmp_path / "second")  # its own database, its own agent token
    assert second.token != ledger.token
    second.start()
    try:
        script = write_script(tmp_path / "s.jsonl", dock_session())
        epcis = (
            f'\n[[sync.sink]]\nname = "epcis"\ntype = "epcis"\nurl = "{second.url}/epcis"\n'
            f'token_file = "{second.token_file}"\ntimezone = "Europe/Paris"\nbatch_max = 4\n'
            f'poll_initial_s = 0.01\nstations = {{ "dock-7" = "{DOCK_SGLN}" }}\n'
        )
        cfg = write_config(tmp_path, ledger.url, ledger.token_file, script, extra_sync=epcis)
        daemon = make_daemon(cfg, ledger.token)
        await run_until_settled(daemon)
        assert daemon.outbox is not None
        stored = stored_ids(daemon.outbox.path)
        assert len(stored) >= 6  # the session's receipts
        sinks = daemon.observer.sinks()
        assert sinks["ledger"]["pending"] == sinks["epcis"]["pending"] == 0
        assert daemon.syncers["ledger"].status.delivered == len(stored)
        assert daemon.syncers["epcis"].status.delivered == len(stored)
        # every movement once at each: the first ledger's journal, the second's
        # (booked from the EPCIS events) and one event per movement in its EPCIS query
        assert agent_ids(ledger) == stored
        assert sorted(e["id"] for e in second.journal()) == sorted(stored)
        with second.reader_client() as c:
            r = c.get("/epcis/events", params={"perPage": 1000})
        assert r.status_code == 200, r.text
        events = r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert sorted(e["eventID"] for e in events) == sorted(f"urn:uuid:{i}" for i in stored)
        assert {e["readPoint"]["id"] for e in events} == {DOCK_SGLN}
        assert second.on_hand() == ledger.on_hand() != {}
    finally:
        second.stop()
