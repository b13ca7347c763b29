"""End to end with a quirky reader (issue 17): the LLRP emulator with every quirk on at
once (refused ENABLE_EVENTS_AND_REPORTS, refused DELETE_ROSPEC 0, an Immediate ROSpec
that never starts, TIDs for EPCs, a partial frame each time it drops the connection),
the real LLRP driver in the daemon, the outbox, sync, and the reference ledger as a
process. The same shelf with no quirk is the control: SGTINs, received as before."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest
from harness import LedgerProcess, LlrpAgent, journal_holds, llrp_device, shelf

from drivers.llrp_emulator import (
    QUIRKS,
    bundled_scenario,
    load_scenario,
    sgtin96,
    tid_of,
)

GTIN = "00614141123452"
TAGS = 20
EPCS = [sgtin96(GTIN, 3000 + i, 7) for i in range(TAGS)]


def _shelf(port: int) -> str:
    return llrp_device(
        "dock-7-reader",
        port,
        [1, 2],
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.2\nstart_window_s = 0.5\n",
    ) + (
        '\n[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
        'devices = ["dock-7-reader"]\nraw_tag_ids = true\n'
    )


def _door(port: int) -> str:
    return llrp_device("dock-7-portal", port, [1, 2, 3, 4], "start_window_s = 0.5\n") + (
        '\n[[stations]]\nname = "dock-7-door"\nkind = "portal"\nlocation = "DOCK-7"\n'
        'devices = ["dock-7-portal"]\noutside_antennas = [1, 2]\ninside_antennas = [3, 4]\n'
        "quiet_ms = 600\nmax_track_ms = 2000\nraw_tag_ids = true\n"
    )


@pytest.mark.parametrize("quirky", [True, False], ids=["every-quirk", "no-quirk"])
async def test_a_quirky_readers_tags_reach_the_ledger_once_each(
    tmp_path: Path, ledger: LedgerProcess, llrp_agent: LlrpAgent, quirky: bool
) -> None:
    scenario = shelf(
        "quirky-shelf",
        EPCS,
        rate=30,
        # The reader drops the link every 1.5 s, mid-stream: with the quirk, after
        # 2 bytes of a frame it never finishes.
        faults={"drop_connection_at_s": 1.5},
        quirks=list(QUIRKS) if quirky else [],
    )
    if quirky:
        want = {f"urn:epc:raw:96.x{tid_of(e).hex().upper()}" for e in EPCS}
    else:
        want = {f"urn:epc:id:sgtin:0614141.012345.{3000 + i}" for i in range(TAGS)}
    async with llrp_agent.run(scenario, _shelf, ledger) as run:
        emu, holds = run.emu, journal_holds(ledger, TAGS)

        async def reconnected_and_received() -> bool:
            return len(emu.connections) >= 3 and await holds()

        await run.until(reconnected_and_received)  # ~3 s alone
        await asyncio.sleep(0.5)  # anything more would be a double
    names = [n for c in emu.connections for n in c.messages]
    journal = await asyncio.to_thread(ledger.journal)
    moves = [e.get("movement", e) for e in journal]
    assert sorted(m["item"]["epc"] for m in moves) == sorted(want)  # each tag once
    assert {m["kind"] for m in moves} == {"receive"}
    assert ledger.on_hand() == (
        {f"DOCK-7/{epc}": 1 for epc in want} if quirky else {f"DOCK-7/{GTIN}": TAGS}
    )
    # Each quirk was met on the wire, and the driver's answer to it was sent.
    assert ("START_ROSPEC" in names) is quirky
    assert names.count("DELETE_ROSPEC") >= (2 if quirky else 1) * 3
    with sqlite3.connect(f"file:{tmp_path / 'outbox.db'}?mode=ro", uri=True) as conn:
        outcomes = {o for (o,) in conn.execute("SELECT DISTINCT outcome FROM reads")}
    # Re-reads are duplicates of units already received; no read is unknown or faulted.
    assert outcomes <= {"good"} | {o for o in outcomes if "duplicate serial" in o}


async def test_a_pallet_through_a_portal_on_a_quirky_reader_reaches_the_ledger(
    ledger: LedgerProcess, llrp_agent: LlrpAgent
) -> None:
    # The portal-inbound pallet (200 cases), on a reader with every quirk, 5x speed.
    sc = dataclasses.replace(
        load_scenario(bundled_scenario("portal-inbound")), speed=5.0, quirks=frozenset(QUIRKS)
    )
    async with llrp_agent.run(sc, _door, ledger) as run:
        await run.until(journal_holds(ledger, 200))  # ~5 s alone
        await asyncio.sleep(1.0)  # anything more would be a double
    moves = [e.get("movement", e) for e in await asyncio.to_thread(ledger.journal)]
    epcs = [e for group in sc.tags for e in group.epcs]
    assert len(epcs) == 200
    assert sorted(m["item"]["epc"] for m in moves) == sorted(
        f"urn:epc:raw:96.x{tid_of(e).hex().upper()}" for e in epcs
    )
    assert {(m["kind"], m["to"]) for m in moves} == {("receive", "DOCK-7")}
