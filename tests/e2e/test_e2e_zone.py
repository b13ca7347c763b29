"""End to end: a zone station (EdgeX's Arrived / Moved / Departed) on the LLRP reader
emulator over TCP, the real LLRP driver, the daemon and the reference ledger as a process.

The bundled ``zone-move`` scenario: two shelves 8 m apart, an antenna each; ten items
carried past shelf A, by shelf B and away, twenty items on shelf B throughout. Scenario
time runs ``SPEED`` times faster than the wall clock, so the station's times (which are
the agent's) are scaled by the same factor."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict

from harness import LedgerProcess, LlrpAgent, journal_holds, llrp_device

from drivers.llrp_emulator import bundled_scenario, load_scenario

SPEED = 10.0
CARRIED = [f"urn:epc:id:sgtin:0614141.012345.{11000 + i}" for i in range(10)]
STOCK = [f"urn:epc:id:sgtin:0614141.012345.{12000 + i}" for i in range(20)]


def _tables(port: int) -> str:
    return llrp_device("aisle-3-reader", port, [1, 2]) + (
        f"""
[[stations]]
name = "aisle-3"
kind = "zone"
devices = ["aisle-3-reader"]
antenna_locations = ["1=SHELF-A", "2=SHELF-B"]
departed_location = "PICK"
# config/zone.toml's numbers on a clock {SPEED:g} times faster: departed after 30 s,
# holdoff 500 ms, -0.008 dB/ms
departed_after_ms = {int(30_000 / SPEED)}
mobility_threshold_dbm = 6.0
mobility_holdoff_ms = {int(500 / SPEED)}
mobility_slope = {-0.008 * SPEED}
"""
    )


async def test_items_carried_across_a_zone_arrive_move_and_depart_in_the_ledger(
    ledger: LedgerProcess, llrp_agent: LlrpAgent
) -> None:
    scenario = dataclasses.replace(load_scenario(bundled_scenario("zone-move")), speed=SPEED)
    want = 3 * len(CARRIED) + len(STOCK)
    async with llrp_agent.run(scenario, _tables, ledger) as run:
        await run.until(journal_holds(ledger, want))  # ~8 s on a quiet machine
        await asyncio.sleep(1.0)  # anything more would be a flap or a double
    journal = await asyncio.to_thread(ledger.journal)
    moves: defaultdict[str, list[tuple[str, str | None, str | None]]] = defaultdict(list)
    for entry in journal:
        m = entry.get("movement", entry)
        moves[m["item"]["epc"]].append((m["kind"], m.get("from"), m.get("to")))
    for epc in CARRIED:  # arrived at A, moved to B, departed to the pick area, once each
        assert moves[epc] == [
            ("receive", None, "SHELF-A"),
            ("transfer", "SHELF-A", "SHELF-B"),
            ("transfer", "SHELF-B", "PICK"),
        ], epc
    for epc in STOCK:  # arrived once on shelf B and stayed
        assert moves[epc] == [("receive", None, "SHELF-B")], epc
    assert set(moves) == {*CARRIED, *STOCK}
    item = "00614141123452"
    assert ledger.on_hand() == {f"SHELF-B/{item}": 20, f"PICK/{item}": 10, f"SHELF-A/{item}": 0}
