"""The daemon cancelled from outside in the middle of a burst, hundreds of times.

``tests/agent/test_agent_outbox_stop.py`` cancels the outbox's callers as the daemon
does at SIGTERM; here the daemon itself is the one cancelled, as ``asyncio.wait_for``
cancels it when a test's (or a supervisor's) timeout runs out: at start-up, while
scanners pour reads in, while it stops, and twice in a row. Every time it must stop
its own tasks in data-flow order (drivers, rules, outbox writer, sinks) and close the
outbox last. Before it did, a cancel that landed outside its stop path left the rules
and sync tasks running on a closed outbox ("Cannot operate on a closed database").

A real SQLite outbox, the simulated scanner replaying a script at full speed, the
reference ledger in-process over ``httpx.ASGITransport``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.config import load_config
from agent.daemon import Daemon
from agent.errors import DriverError
from agent.outbox import Outbox
from drivers import DRIVERS
from drivers.simulated import SimulatedScanner
from ledger import LedgerStore, create_app

AGENT = "dock-1"
ITERATIONS = 200
READS = 20  # a burst per scanner per run
GTINS = ["09506000134352", "09506000134376", "09506000134369"]


class Records(logging.Handler):
    """Every record at warning or above, whatever the loggers' propagation."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("edgetally", "asyncio")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def write_config(tmp_path: Path, url: str) -> Path:
    token_file = tmp_path / "token"
    devices = ""
    for n in (1, 2):
        script = tmp_path / f"scanner-{n}.jsonl"
        script.write_text(
            "".join(
                json.dumps({"data": f"01{GTINS[i % len(GTINS)]}"}) + "\n" for i in range(READS)
            ),
            encoding="utf-8",
        )
        devices += (
            f'[[devices]]\nid = "scanner-{n}"\ndriver = "simulated"\nscript = "{script}"\n'
            f'speed = 0\nack_log = "{tmp_path / "acks.jsonl"}"\n\n'
        )
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{tmp_path}"\nlog_flow_s = 0\n\n'
        # small groups: a burst is many commits, so a cancel lands between them
        "[outbox]\ngroup_max = 4\n\n"
        f'[sync]\nurl = "{url}"\ntoken_file = "{token_file}"\nbatch_max = 7\n'
        "backoff_initial_s = 0.01\nbackoff_cap_s = 0.05\n\n"
        '[health]\nlisten = ""\n\n'
        + devices
        + '[[stations]]\nname = "dock-1"\nkind = "receiving"\nlocation = "DOCK-1"\n'
        'devices = ["scanner-1", "scanner-2"]\ndebounce_ms = 0\n',
        encoding="utf-8",
    )
    return path


def acked(tmp_path: Path) -> set[str]:
    """The reads whose good-read signal was given: the daemon had them on disk."""
    path = tmp_path / "acks.jsonl"
    if not path.exists():
        return set()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(a["kind"] == "good" for a in lines), lines  # nothing refused, nothing bad
    return {a["read_id"] for a in lines}


async def passes(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def until_signalled(daemon: Daemon, want: int, task: asyncio.Task[None]) -> None:
    """Let the loop run until this run's scanners gave ``want`` signals (or it ended)."""
    async with asyncio.timeout(60):
        await daemon.ready.wait()  # not spinning while the start-up's threads work
    for _ in range(200_000):
        given = sum(len(getattr(d, "given", ())) for d in daemon.drivers)
        if task.done() or given >= want:
            return
        await asyncio.sleep(0)


async def test_cancelling_the_daemon_mid_burst_stops_it_in_order_and_loses_nothing(
    tmp_path: Path, records: Records
) -> None:
    store = LedgerStore(tmp_path / "ledger.db")
    token = store.add_agent(AGENT)
    transport = httpx.ASGITransport(app=create_app(store))
    config = load_config(write_config(tmp_path, "http://ledger"))
    (tmp_path / "token").write_text(token, encoding="utf-8")
    rng = random.Random(20)
    me = asyncio.current_task()
    before = acked(tmp_path)
    cancelled_at_start = cancelled_mid_burst = 0
    try:
        for i in range(ITERATIONS):
            daemon = Daemon(config, token, transport=transport)
            task = asyncio.create_task(daemon.run(), name=f"daemon-{i}")
            if i % 2:  # anywhere from start-up on: opening, sinks, drivers, first reads
                await passes(rng.randint(0, 60))
                cancelled_at_start += not daemon.ready.is_set()
            else:  # once some reads of the burst are signalled good
                await until_signalled(daemon, rng.randint(1, 2 * READS), task)
                cancelled_mid_burst += 1
            assert not task.done(), task
            task.cancel()
            if rng.random() < 0.3:  # cancelled again while it stops
                await passes(rng.randint(0, 10))
                task.cancel()
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
            assert isinstance(outcome, asyncio.CancelledError), outcome
            # It owned every task it started and ended each: none outlive the run
            assert asyncio.all_tasks() == {me}
            assert not [t for t in threading.enumerate() if "outbox-writer" in t.name]
            assert daemon.outbox is None or daemon.outbox._state in ("unopened", "closed")
            errors = [r for r in records.seen if r.levelno >= logging.ERROR or r.exc_info]
            assert not errors, [
                (r.name, r.getMessage(), getattr(r, "fields", None)) for r in errors
            ]
            now = acked(tmp_path)
            assert now >= before
            before = now
    finally:
        store.close()
    assert cancelled_at_start > 5 and cancelled_mid_burst > 50  # both windows were hit
    # The outbox opens clean and holds every read that was signalled good
    box = Outbox.open(tmp_path / "outbox.db", AGENT, 1 << 26)
    box.close()
    conn = sqlite3.connect(tmp_path / "outbox.db")
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        stored = {rid for (rid,) in conn.execute("SELECT id FROM reads")}
        seqs = [s for (s,) in conn.execute("SELECT seq FROM movements ORDER BY seq")]
    finally:
        conn.close()
    assert before and before <= stored
    assert seqs == list(range(1, len(seqs) + 1))


class CloseFails(SimulatedScanner):
    """The simulated scanner, but its close fails as a device pulled out mid-close can."""

    async def close(self) -> None:
        await super().close()
        raise DriverError(f"device {self.device_id}: close failed")


async def test_a_device_that_fails_to_close_still_lets_everything_stop_in_order(
    tmp_path: Path, records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DRIVERS, "close-fails", CloseFails)
    store = LedgerStore(tmp_path / "ledger.db")
    token = store.add_agent(AGENT)
    path = write_config(tmp_path, "http://ledger")
    path.write_text(path.read_text().replace('driver = "simulated"', 'driver = "close-fails"'))
    (tmp_path / "token").write_text(token, encoding="utf-8")
    daemon = Daemon(load_config(path), token, transport=httpx.ASGITransport(app=create_app(store)))
    task = asyncio.create_task(daemon.run())
    try:
        await until_signalled(daemon, 2 * READS, task)
        daemon.stop()
        with pytest.raises(DriverError, match="close failed"):
            await task
    finally:
        store.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert daemon.outbox is not None and daemon.outbox._state == "closed"
    assert len(acked(tmp_path)) == 2 * READS
    assert not [r for r in records.seen if r.levelno >= logging.ERROR]
