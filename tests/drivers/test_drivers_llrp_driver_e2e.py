"""End to end: the daemon with a ``[[devices]] driver = "llrp"`` pointed at the reader
emulator over TCP and a receiving station; SGTIN-96 tag reads are stored in the
outbox (a real SQLite file) with their outcome, and become receive movements.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from drivers.llrp_emulator import sgtin96
from tests.e2e.harness import LlrpAgent, llrp_device, shelf

GTIN = "00614141123452"
EPCS = [sgtin96(GTIN, 5000 + i, 7) for i in range(3)]


def _tables(port: int) -> str:
    return llrp_device("dock-7-portal", port, [1, 2]) + (
        '\n[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
        'devices = ["dock-7-portal"]\n'
    )


def _stored(db: Path) -> tuple[list[tuple[bytes, str, int, float, str]], list[dict]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        reads = conn.execute(
            "SELECT data, kind, antenna, rssi, outcome FROM reads WHERE device = 'dock-7-portal'"
        ).fetchall()
        moves = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM movements")]
    return reads, moves


async def test_tag_reads_through_the_daemon_become_movements(
    tmp_path: Path, llrp_agent: LlrpAgent
) -> None:
    scenario = shelf("e2e", EPCS, rate=50)
    db = tmp_path / "outbox.db"

    async def stored_all() -> bool:
        reads = _stored(db)[0] if db.exists() else []
        return {r[0] for r in reads if r[4]} >= set(EPCS)

    async with llrp_agent.run(scenario, _tables) as run:
        await run.until(stored_all, timeout_s=30)
    assert run.emu.connections[-1].closed == "CLOSE_CONNECTION"  # stopped politely
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
