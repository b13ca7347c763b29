"""The portal's verdicts do not depend on when the agent stalls.

The emulator's tag model (pure: the same reads however time is cut into reports)
makes the reports a reader sends every 50 ms; the rules decide them as the daemon
does: a tick every 100 ms, none during a stall, the first after it late (the
daemon's ``TickGate`` skips it and calls ``Rules.unwatched``), the next one on
time but before the reports the stall held up are decided. Those are the delays
a loaded machine makes; the verdicts must be the ones of an agent never stalled.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from agent.clock import Clock, Uuid7, utc_iso
from agent.config import StationSettings
from agent.identify import Identifier
from agent.model import Read
from agent.rules import Context, Rules
from drivers.llrp_emulator import bundled_scenario, load_scenario, timeline

SPEED = 5.0  # as the e2e tests run the scenarios
REPORT_S = 0.05  # the reader's report interval (wall)
TICK_S = 0.1
T0 = 1_700_000_000.0
READER_T0_US = 1_800_000_000_000_000
BOOT = "boot-1"


def _reports(name: str, seconds: float) -> list[list[Read]]:
    """The scenario's reports over ``seconds`` of wall time, as the LLRP driver makes
    them (a Read per tag and antenna per report, with the reader's stamps)."""
    sc = dataclasses.replace(load_scenario(bundled_scenario(name)), speed=SPEED)
    out: list[list[Read]] = []
    for k in range(round(seconds / REPORT_S)):
        s0, s1 = k * REPORT_S * SPEED, (k + 1) * REPORT_S * SPEED
        out.append(
            [
                Read(
                    id="",
                    device="r1",
                    kind="tag",
                    data=o.epc,
                    observed_at="",
                    mono_ns=0,
                    boot_id=BOOT,
                    antenna=o.antenna,
                    rssi=float(o.rssi),
                    seen_count=o.count,
                    reader_first_seen_us=READER_T0_US + round(o.first_seen_s / SPEED * 1e6),
                    reader_last_seen_us=READER_T0_US + round(o.last_seen_s / SPEED * 1e6),
                )
                for o in timeline(sc, s0, s1)
            ]
        )
    return out


def _verdicts(reports: Sequence[list[Read]], stalls: dict[int, float]) -> Counter[str]:
    """Decide ``reports`` as the daemon would, stalled ``stalls[k]`` seconds just before
    report k; the portal's verdicts."""
    now = [0.0]
    clock = Clock(
        wall=lambda: T0 + now[0],
        mono_ns=lambda: int(now[0] * 1e9),
        boot_id=BOOT,
        synced=lambda: True,
    )
    ids = Uuid7(clock.wall)
    station = StationSettings(
        name="dock-7-door",
        kind="portal",
        location="DOCK-7",
        devices=["r1"],
        outside_antennas=[1, 2],
        inside_antennas=[3, 4],
        quiet_ms=600,
        max_track_ms=2000,
    )
    rules = Rules([station], Context("dock-7", clock, ids), identify=Identifier().identify)
    verdicts: Counter[str] = Counter()

    def tick(at: float) -> None:
        now[0] = at
        for t in rules.tick(int(at * 1e9), BOOT):
            if t.decision.verdict:
                verdicts[t.decision.verdict] += 1

    next_tick = TICK_S
    for k, reads in enumerate(reports):
        made = (k + 1) * REPORT_S
        while next_tick <= made and now[0] <= made:
            tick(max(next_tick, now[0]))
            next_tick += TICK_S
        now[0] = max(now[0], made)
        stall = stalls.get(k)
        if stall:
            now[0] += stall  # the loop was stalled: no tick ran, the late one is skipped
            rules.unwatched(int(now[0] * 1e9))
            next_tick = now[0] + TICK_S
            tick(next_tick)  # on time, before the held-up reports are decided
            next_tick += TICK_S
        for read in reads:
            arrived = dataclasses.replace(
                read, id=ids.new(), mono_ns=int(now[0] * 1e9), observed_at=utc_iso(T0 + now[0])
            )
            rules.decide("r1", arrived)
    for _ in range(40):
        tick(now[0] + TICK_S)
    return verdicts


def test_a_pallet_parked_by_the_door_is_judged_the_same_whatever_the_agent_stalls() -> None:
    # Before, each stall cut every open track of the pallet: 200 short pieces, each a
    # chance of a false crossing (5 receives with the first plan below), the e2e's
    # last flake.
    reports = _reports("portal-crossread", 8.0)
    calm = _verdicts(reports, {})
    assert sum(calm.values()) >= 400 and not {"crossed_in", "crossed_out"} & set(calm), calm
    for stalls in ({20: 0.9, 61: 1.3, 110: 0.7}, {35: 1.5, 36: 0.8, 90: 1.1, 140: 0.7}):
        assert _verdicts(reports, stalls) == calm, stalls


def test_a_pallet_through_the_door_is_200_crossings_whatever_the_agent_stalls() -> None:
    # Before, a stall in the pass cut the tracks open at it in two one-sided halves:
    # crossings lost (130 of 200 with the first plan below; the e2e's 199 of 200).
    reports = _reports("portal-outbound", 4.0)
    calm = _verdicts(reports, {})
    assert calm["crossed_out"] == 200, calm
    for stalls in ({12: 0.9, 25: 1.2}, {18: 0.7, 19: 0.7, 30: 1.0}):
        assert _verdicts(reports, stalls) == calm, stalls
