"""End to end: the daemon with a ``[[devices]] driver = "llrp"`` pointed at the reader
emulator over TCP and a receiving station; SGTIN-96 tag reads are stored in the
outbox (a real SQLite file) with their outcome, and become receive movements.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from agent.config import load_config
from agent.daemon import Daemon
from drivers.llrp_emulator import LlrpEmulator, scenario_from_dict, sgtin96

GTIN = "00614141123452"
EPCS = [sgtin96(GTIN, 5000 + i, 7) for i in range(3)]


def _config(tmp_path: Path, port: int) -> Path:
    token = tmp_path / "token"
    token.write_text("secret")
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[agent]
id = "dock-7"
state_dir = "{tmp_path}"

[sync]
url = "http://127.0.0.1:9/"
token_file = "{token}"
backoff_initial_s = 0.5

[health]
listen = ""

[[devices]]
id = "dock-7-portal"
driver = "llrp"
host = "127.0.0.1"
port = {port}
antennas = [1, 2]
keepalive_s = 0.5
report_timeout_ms = 50

[[stations]]
name = "dock-7"
kind = "receiving"
location = "DOCK-7"
devices = ["dock-7-portal"]
""",
        encoding="utf-8",
    )
    return path


def _stored(db: Path) -> tuple[list[tuple[bytes, str, int, float, str]], list[dict]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        reads = conn.execute(
            "SELECT data, kind, antenna, rssi, outcome FROM reads WHERE device = 'dock-7-portal'"
        ).fetchall()
        moves = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM movements")]
    return reads, moves


async def test_tag_reads_through_the_daemon_become_movements(tmp_path: Path) -> None:
    scenario = scenario_from_dict(
        {
            "name": "e2e",
            "rate": 50,
            "report_interval_s": 0.05,
            "antennas": [{"id": 1, "group": "outside"}, {"id": 2, "group": "inside"}],
            "tags": [
                {
                    "name": "cases",
                    "epcs": [e.hex() for e in EPCS],
                    "motion": "shelf",
                    "near": "inside",
                    "rssi_peak_dbm": -40,
                }
            ],
        }
    )
    async with LlrpEmulator(scenario) as emu:
        daemon = Daemon(load_config(_config(tmp_path, emu.port)), "secret")
        task = asyncio.create_task(daemon.run())
        db = tmp_path / "outbox.db"
        try:
            async with asyncio.timeout(30):
                while True:
                    await asyncio.sleep(0.1)
                    if db.exists():
                        reads, _ = _stored(db)
                        if {r[0] for r in reads if r[4]} >= set(EPCS):
                            break
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 10)
        assert emu.connections[-1].closed == "CLOSE_CONNECTION"  # the daemon stopped it politely
    reads, moves = _stored(db)
    assert {r[1] for r in reads} == {"tag"}
    assert all(r[2] in (1, 2) and r[3] < 0 for r in reads)
    assert {r[0] for r in reads} == set(EPCS)
    assert all(r[4] for r in reads)  # every read has its outcome
    # A portal reads each tag many times: the first read receives it, re-reads are
    # refused by the rules as duplicates (this session), never received twice.
    assert {r[0] for r in reads if r[4] == "good"} == set(EPCS)
    assert all("duplicate serial" in r[4] for r in reads if r[4] != "good")
    received = [m["item"]["epc"] for m in moves if m["kind"] == "receive"]
    assert sorted(received) == [f"urn:epc:id:sgtin:0614141.012345.{5000 + i}" for i in range(3)]
    assert all(m["to"] == "DOCK-7" and m["item"]["gtin"] == GTIN for m in moves)
