"""The zone station (EdgeX's Arrived / Moved / Departed), driven by the emulator's pure
tag timeline: each report window becomes the Reads the LLRP driver would make."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from agent.clock import Clock, Uuid7, utc_iso
from agent.config import StationSettings, load_config
from agent.identify import Identifier
from agent.model import Movement, Read
from agent.rules import Context, Rules
from drivers.llrp_emulator import bundled_scenario, load_scenario, timeline

T0 = 1_700_000_000.0


class Zone:
    def __init__(self, state: dict[str, Any] | None = None, boot: str = "b1", **settings: Any):
        self.t = 0.0
        self.boot = boot
        clock = Clock(
            wall=lambda: T0 + self.t,
            mono_ns=lambda: int(self.t * 1e9),
            boot_id=boot,
            synced=lambda: True,
        )
        self.ids = Uuid7(clock.wall)
        st = StationSettings(
            **{
                "name": "aisle-3",
                "kind": "zone",
                "devices": ["r1"],
                "antenna_locations": ["1=SHELF-A", "2=SHELF-B"],
                "departed_after_ms": 5000,
                **settings,
            }
        )
        self.rules = Rules([st], Context("a", clock, self.ids), state, Identifier().identify)
        self.moves: list[Movement] = []

    def play(self, name: str, until: float, step: float = 0.5) -> None:
        scenario = load_scenario(bundled_scenario(name))
        while self.t < until - 1e-9:
            t0, self.t = self.t, self.t + step
            for o in timeline(scenario, t0, self.t):
                read = Read(
                    self.ids.new(), "r1", "tag", o.epc, utc_iso(T0 + self.t),
                    int(self.t * 1e9), self.boot, antenna=o.antenna, rssi=float(o.rssi),
                    seen_count=o.count,
                )  # fmt: skip
                self.moves.extend(self.rules.decide("r1", read).decision.movements)
            for tick in self.rules.tick(int(self.t * 1e9), self.boot):
                self.moves.extend(tick.decision.movements)

    def of(self, first: int, n: int) -> list[tuple[str, str | None, str | None]]:
        serials = {str(first + i) for i in range(n)}
        return [(m.kind, m.from_, m.to) for m in self.moves if m.item.serial in serials]


def test_items_carried_from_shelf_a_to_b_arrive_move_and_depart() -> None:
    z = Zone(departed_location="PICK", departed_after_ms=15000)
    z.play("zone-move", until=90.0)
    for i in range(10):  # each carried item, in order: arrived at A, moved to B, departed
        assert z.of(11000 + i, 1) == [
            ("receive", None, "SHELF-A"),
            ("transfer", "SHELF-A", "SHELF-B"),
            ("transfer", "SHELF-B", "PICK"),
        ], i
    # The stock on shelf B arrived once and never flapped.
    assert Counter(z.of(12000, 20)) == {("receive", None, "SHELF-B"): 20}
    moved = [m for m in z.moves if m.evidence.get("event") == "moved"]
    assert all(m.evidence["mobility"]["offset_db"] <= 6.0 for m in moved)


def test_the_shelf_scenario_arrives_everything_and_departs_the_picked_items() -> None:
    z = Zone(zone_from_location="DOCK")
    z.play("zone-shelf", until=60.0)
    assert Counter(z.of(5000, 50)) == {("transfer", "DOCK", "SHELF-A"): 50}
    assert Counter(z.of(6000, 30)) == {("transfer", "DOCK", "SHELF-B"): 30}
    for i in range(10):  # picked off shelf A after 20 s, carried away: shipped from A
        assert z.of(7000 + i, 1) == [("transfer", "DOCK", "SHELF-A"), ("ship", "SHELF-A", None)]


def test_a_restart_neither_re_arrives_the_stock_nor_forgets_it() -> None:
    first = Zone()
    first.play("zone-shelf", until=10.0)
    assert len(first.moves) == 90
    second = Zone(state={"aisle-3": dict(first.rules.state["aisle-3"])}, boot="b2")
    second.t = first.t
    second.play("zone-shelf", until=60.0)
    # After the restart only the picked items move: they depart.
    assert Counter((m.kind, m.from_) for m in second.moves) == {("ship", "SHELF-A"): 10}


def test_a_stall_of_the_agent_longer_than_departed_after_departs_nothing() -> None:
    # The agent stalls 6 s (departed_after_ms is 5 s) with the shelf's reports waiting
    # unread; the daemon says so (``unwatched``) and ticks before they are decided.
    # The tags were read all along: none departs (and none arrives again after).
    z = Zone()
    z.play("zone-shelf", until=10.0)
    arrived = len(z.moves)
    z.t += 6.0
    z.rules.unwatched(int(z.t * 1e9))
    for _ in range(3):  # on time after the stall, before the waiting reports are decided
        z.t += 0.1
        for tick in z.rules.tick(int(z.t * 1e9), z.boot):
            z.moves.extend(tick.decision.movements)
    assert z.moves[arrived:] == []


def test_the_shipped_zone_config_loads() -> None:
    config = load_config(Path(__file__).parents[2] / "config" / "zone.toml")
    (station,) = config.stations
    assert station.kind == "zone" and station.antenna_locations == ["1=SHELF-A", "2=SHELF-B"]
