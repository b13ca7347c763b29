"""The portal station, driven by the reader emulator's pure tag timeline (no sockets):
each report window of ``timeline()`` becomes the Reads the LLRP driver would make,
stamped with the window's end as their monotonic time, and the rules tick as the
daemon does."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from agent.clock import Clock, Uuid7, utc_iso
from agent.config import StationSettings, load_config
from agent.errors import ConfigError
from agent.identify import Identifier
from agent.model import Movement, Read
from agent.replay import Replayed, ReplayedTick, replay
from agent.rules import Context, Rules
from drivers.llrp_emulator import bundled_scenario, load_scenario, sgtin96, timeline

GTIN = "00614141123452"
T0 = 1_700_000_000.0
BOOT = "boot-1"


class World:
    """A clock under the test's control, the rules of one portal, and reads made at will."""

    def __init__(self, boot: str = BOOT, state: dict[str, Any] | None = None, **settings: Any):
        self.t = 0.0
        self.boot = boot
        self.clock = Clock(
            wall=lambda: T0 + self.t,
            mono_ns=lambda: int(self.t * 1e9),
            boot_id=boot,
            synced=lambda: True,
        )
        self.ids = Uuid7(self.clock.wall)
        self.settings = StationSettings(
            **{
                "name": "door-7",
                "kind": "portal",
                "location": "DOCK-7",
                "devices": ["r1"],
                "outside_antennas": [1, 2],
                "inside_antennas": [3, 4],
                **settings,
            }
        )
        self.rules = Rules(
            [self.settings],
            Context("dock-7", self.clock, self.ids),
            state,
            identify=Identifier().identify,
        )
        self.moves: list[Movement] = []
        self.reads: list[Read] = []
        self.outcomes: Counter[str] = Counter()

    def read(self, epc: bytes, antenna: int, rssi: float, count: int = 1) -> Read:
        return Read(
            id=self.ids.new(),
            device="r1",
            kind="tag",
            data=epc,
            observed_at=utc_iso(T0 + self.t),
            mono_ns=int(self.t * 1e9),
            boot_id=self.boot,
            antenna=antenna,
            rssi=rssi,
            seen_count=count,
        )

    def feed(self, reads: Iterable[Read]) -> None:
        for read in reads:
            self.reads.append(read)
            ruling = self.rules.decide("r1", read)
            d = ruling.decision
            self.outcomes[f"{d.feedback}: {d.reason}"] += 1
            self.moves.extend(d.movements)

    def tick(self, final: bool = False) -> None:
        for tick in self.rules.tick(int(self.t * 1e9), self.boot, final):
            self.moves.extend(tick.decision.movements)

    def play(self, name: str, step: float = 0.2, until: float | None = None) -> None:
        """The scenario's reads, one report per ``step`` s, ticking every 0.1 s."""
        scenario = load_scenario(bundled_scenario(name))
        end = until if until is not None else _end(scenario)
        while self.t < end - 1e-9:
            t0 = self.t
            for sub in (step / 2, step):  # ticks between reports, as the daemon's timer
                self.t = t0 + sub
                self.tick()
            self.feed(
                self.read(o.epc, o.antenna, float(o.rssi), o.count)
                for o in timeline(scenario, t0, t0 + step)
            )

    def wait(self, seconds: float) -> None:
        end = self.t + seconds
        while self.t < end:
            self.t = min(end, self.t + 0.1)
            self.tick()


def _end(scenario: Any) -> float:
    ends = []
    for g in scenario.tags:
        if g.motion == "pass":
            ends.append(g.start_s + (g.path_m + g.spread_m) / g.speed_mps)
        else:
            ends.append(g.start_s + (g.duration_s or 30.0))
    return max(ends) + 1.0


def _head(tmp_path: Path) -> str:
    token = tmp_path / "token"
    token.write_text("secret", encoding="utf-8")
    return f'[agent]\nid = "dock-7"\n[sync]\nurl = "http://127.0.0.1:9/"\ntoken_file = "{token}"\n'


def epc_uri(serial: int) -> str:
    return f"urn:epc:id:sgtin:0614141.012345.{serial}"


def test_a_pallet_driven_in_is_200_receives_one_per_tag() -> None:
    w = World()
    w.play("portal-inbound", until=5.0)
    assert w.moves == []  # mid-pass: nothing while the reads come
    w.play("portal-inbound")
    w.wait(2.0)
    assert Counter(m.kind for m in w.moves) == {"receive": 200}
    assert sorted(m.item.epc or "" for m in w.moves) == sorted(
        epc_uri(1000 + i) for i in range(200)
    )
    m = w.moves[0]
    assert (m.from_, m.to, m.qty, m.item.gtin, m.station) == (None, "DOCK-7", 1, GTIN, "door-7")
    ev = m.evidence
    assert ev["direction"] == "in" and ev["confidence"] >= 0.75
    assert ev["outside"]["reads"] >= 2 and ev["inside"]["reads"] >= 2
    assert ev["outside"]["antennas"] == [1, 2] or set(ev["outside"]["antennas"]) <= {1, 2}
    assert ev["outside"]["peak_ms"] < ev["inside"]["peak_ms"]
    assert 1 <= len(ev["read_ids"]) <= 6
    assert set(ev["read_ids"]) <= {r.id for r in w.reads}
    # The movement happened at the tag's last read, not when the tick noticed.
    assert m.clock.mono_ns == ev["pass"]["last_mono_ns"]
    # Every read was fed to a track and signalled good: no bad-read light during a pass.
    assert set(w.outcomes) == {"good: tracked"}
    json.dumps([x.to_dict() for x in w.moves])  # the ledger's wire format holds it


def test_a_pallet_driven_out_is_200_ships() -> None:
    w = World()
    w.play("portal-outbound")
    w.wait(2.0)
    assert Counter(m.kind for m in w.moves) == {"ship": 200}
    assert {(m.from_, m.to) for m in w.moves} == {("DOCK-7", None)}
    assert {m.evidence["direction"] for m in w.moves} == {"out"}
    assert len({m.item.epc for m in w.moves}) == 200


def test_a_pallet_parked_by_the_door_and_cross_read_moves_nothing() -> None:
    w = World()
    w.play("portal-crossread", until=130.0)
    w.wait(2.0)
    assert w.moves == []
    status = w.rules.status()["stations"]["door-7"]
    assert status["no_move"] >= 200  # every tag's track was judged, and moved nothing
    assert status["tracks"] == 0


def test_two_pallets_crossing_opposite_ways_at_once_both_come_out_right() -> None:
    w = World()
    w.play("portal-two-pallets")
    w.wait(2.0)
    got = {m.item.epc: m.kind for m in w.moves}
    assert got == {
        **{epc_uri(8000 + i): "receive" for i in range(100)},
        **{epc_uri(9000 + i): "ship" for i in range(100)},
    }


def _walk(w: World, epc: bytes, path: list[tuple[float, float]]) -> None:
    """A tag carried along ``path`` ((time s, x m)...; door at x = 0, antennas at x = ±1),
    read every 0.1 s by every antenna in range, RSSI falling with distance."""
    for (ta, xa), (tb, xb) in itertools.pairwise(path):
        steps = max(1, round((tb - ta) / 0.1))
        for k in range(steps):
            w.t = ta + (tb - ta) * k / steps
            x = xa + (xb - xa) * k / steps
            reads = []
            for antenna, ax in ((1, -1.0), (2, -1.0), (3, 1.0), (4, 1.0)):
                rssi = -45.0 - 40 * math.log10(max(abs(x - ax), 0.5) / 0.5)
                rssi -= 15.0 if x * ax < 0 else 0.0  # through the door plane
                if rssi > -68:
                    reads.append(w.read(epc, antenna, round(rssi)))
            w.feed(reads)
            w.tick()


def test_a_tag_that_crosses_and_turns_back_within_the_window_moves_nothing() -> None:
    # The emulator's motions are monotonic (no turn-back), hence a hand-made walk:
    # in from the yard, a metre past the door, and back out to the yard.
    w = World()
    epc = sgtin96(GTIN, 42, 7)
    _walk(w, epc, [(0.0, -3.0), (3.0, 1.0), (3.5, 1.0), (7.0, -3.0)])
    w.wait(3.0)
    assert w.moves == []
    # The same walk without the turn is a receive: the test can tell the two apart.
    _walk(w, sgtin96(GTIN, 43, 7), [(20.0, -3.0), (26.0, 3.0)])
    w.wait(3.0)
    assert [(m.kind, m.item.serial) for m in w.moves] == [("receive", "43")]


def test_a_second_crossing_the_same_way_is_a_duplicate_until_the_tag_goes_back() -> None:
    w = World()
    epc = sgtin96(GTIN, 7, 7)
    _walk(w, epc, [(0.0, -3.0), (6.0, 3.0)])
    w.wait(3.0)
    _walk(w, epc, [(10.0, -3.0), (16.0, 3.0)])  # again in (a second reader, a re-scan)
    w.wait(3.0)
    assert [m.kind for m in w.moves] == ["receive"]
    assert w.rules.status()["stations"]["door-7"]["duplicate"] == 1
    _walk(w, epc, [(20.0, 3.0), (26.0, -3.0)])  # out
    _walk(w, epc, [(30.0, -3.0), (36.0, 3.0)])  # and in again: a new receive
    w.wait(3.0)
    assert [m.kind for m in w.moves] == ["receive", "ship", "receive"]


def test_outside_location_makes_crossings_transfers() -> None:
    w = World(outside_location="YARD")
    _walk(w, sgtin96(GTIN, 1, 7), [(0.0, -3.0), (6.0, 3.0)])
    _walk(w, sgtin96(GTIN, 2, 7), [(0.0, 3.0), (6.0, -3.0)])
    w.wait(3.0)
    got = sorted((m.item.serial, m.kind, m.from_, m.to) for m in w.moves)
    assert got == [("1", "transfer", "YARD", "DOCK-7"), ("2", "transfer", "DOCK-7", "YARD")]


def test_class_level_groups_a_pallet_into_one_movement_per_gtin() -> None:
    w = World(class_level=True)
    w.play("portal-inbound")
    w.wait(4.0)
    assert [(m.kind, m.item.gtin, m.item.epc, m.qty) for m in w.moves] == [
        ("receive", GTIN, None, 200)
    ]
    assert m_epcs(w.moves[0]) == {epc_uri(1000 + i) for i in range(200)}
    # Serial dedup still holds per tag: the state has one row per tag.
    state = w.rules.state["door-7"]
    assert sum(1 for k in state if k.startswith("crossed:in:")) == 200


def m_epcs(m: Movement) -> set[str]:
    return set(m.evidence["epcs"])


def test_foreign_tags_are_kept_and_ignored_not_signalled_bad() -> None:
    w = World()
    tid = bytes.fromhex("E2801105200074CF085C0943")
    w.feed([w.read(tid, 1, -50.0), w.read(sgtin96(GTIN, 1, 7), 9, -50.0)])
    assert [o.split(":")[0] for o in w.outcomes] == ["good", "good"]
    assert any("a TID" in o for o in w.outcomes)
    assert any("antenna 9" in o for o in w.outcomes)
    status = w.rules.status()["stations"]["door-7"]
    assert status["foreign"] == 1 and status["other_antenna"] == 1
    # A barcode at a portal is not its job: that one is refused.
    barcode = Read("r-1", "r1", "barcode", b"0614141123452", utc_iso(T0), 1, BOOT)
    assert w.rules.decide("r1", barcode).decision.feedback == "bad"


def test_at_the_cap_the_oldest_pass_is_decided_early_and_counted() -> None:
    w = World(max_tracks=50)
    w.play("portal-inbound")
    w.wait(2.0)
    status = w.rules.status()["stations"]["door-7"]
    assert status["evicted"] > 0
    assert status["tracks"] == 0
    # Early decisions are made on partial evidence: never two movements for one tag.
    epcs = [m.item.epc for m in w.moves]
    assert len(epcs) == len(set(epcs)) and all(m.kind == "receive" for m in w.moves)


def test_a_restart_mid_pass_rebuilds_the_tracks_and_decides_them_once() -> None:
    first = World()
    first.play("portal-inbound", until=6.0)  # the pallet is in the door: SIGTERM
    assert first.moves == []
    stored = first.reads  # every read is in the outbox
    # Same boot: the daemon is back 0.5 s later with the same (empty) state; the
    # reads of that half second are lost, the pallet goes on through the door.
    second = World(state={})
    second.t = first.t + 0.5
    assert second.rules.resume(stored) == len(stored)
    second.play("portal-inbound")
    second.wait(2.0)
    assert Counter(m.kind for m in second.moves) == {"receive": 200}
    assert len({m.item.epc for m in second.moves}) == 200
    # Evidence spans the restart: reads from before it are cited.
    before = {r.id for r in stored}
    assert any(set(m.evidence["read_ids"]) & before for m in second.moves)
    # A third start, with the second's state on disk: every read is covered by a
    # decided crossing, so nothing is decided twice.
    third = World(state={"door-7": dict(second.rules.state["door-7"])})
    third.t = second.t + 0.5
    assert third.rules.resume([*stored, *second.reads]) == 0
    third.wait(2.0)
    assert third.moves == []


def test_after_a_reboot_the_last_boots_passes_are_closed_at_once() -> None:
    first = World(boot="boot-1")
    first.play("portal-inbound")
    second = World(boot="boot-2")  # monotonic time restarted: the old times mean nothing
    second.rules.resume(first.reads)
    second.tick()
    assert Counter(m.kind for m in second.moves) == {"receive": 200}
    assert {m.clock.boot_id for m in second.moves} == {"boot-1"}


def test_replay_of_a_recording_gives_the_live_movements(tmp_path: Path) -> None:
    w = World()
    w.play("portal-two-pallets")
    w.wait(2.0)
    config = tmp_path / "agent.toml"
    config.write_text(
        _head(tmp_path) + '[[devices]]\nid = "r1"\ndriver = "simulated"\nscript = "x.jsonl"\n'
        '[[stations]]\nname = "door-7"\nkind = "portal"\nlocation = "DOCK-7"\n'
        'devices = ["r1"]\noutside_antennas = [1, 2]\ninside_antennas = [3, 4]\n',
        encoding="utf-8",
    )
    lines = [r.to_json() for r in w.reads]
    out = list(replay(load_config(config), lines, "rec.jsonl"))
    replayed = [m for r in out if isinstance(r, ReplayedTick) for m in r.tick.decision.movements]
    assert all(isinstance(r, Replayed | ReplayedTick) for r in out)
    shape: Callable[[Movement], tuple[Any, ...]] = lambda m: (  # noqa: E731
        m.kind,
        m.item.epc,
        m.observed_at,
        m.clock.mono_ns,
        m.evidence["confidence"],
    )
    assert sorted(map(shape, replayed)) == sorted(map(shape, w.moves))
    assert len(replayed) == 200


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ("inside_antennas = [3, 4]", "outside_antennas", "a non-empty list"),
        ("outside_antennas = [1, 2]\ninside_antennas = [2, 3]", "inside_antennas", "[2]"),
        (
            "outside_antennas = [1]\ninside_antennas = [2]\nquiet_ms = 10",
            "quiet_ms",
            "at least 50",
        ),
        (
            "outside_antennas = [1]\ninside_antennas = [2]\ndedup_ms = 5000",
            "dedup_ms",
            "max_track_ms + quiet_ms",
        ),
    ],
)
def test_portal_config_errors_name_the_key(
    tmp_path: Path, extra: str, key: str, expected: str
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        _head(tmp_path)
        + '[[stations]]\nname = "door-7"\nkind = "portal"\nlocation = "DOCK-7"\n'
        + extra
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.key == f"stations[0].{key}"
    assert expected in info.value.expected


def test_portal_keys_on_a_barcode_station_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        _head(tmp_path) + '[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
        "quiet_ms = 900\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.key == "stations[0].quiet_ms"
    assert "only for a portal station" in info.value.expected


def test_the_shipped_portal_config_loads() -> None:
    config = load_config(Path(__file__).parents[2] / "config" / "portal.toml")
    (station,) = config.stations
    assert station.kind == "portal" and station.outside_antennas == [1, 2]
    assert config.devices[0].options.port == 5084


@pytest.mark.parametrize(
    ("station", "device", "key", "expected"),
    [
        ('beam_gpi = 1\nbeam_device = "r9"', "gpi_port = 1", "beam_device", "one of `devices`"),
        ("beam_gpi = 2", "gpi_port = 1", "beam_gpi", "set gpi_port = 2 there"),
        ("beam_gpi = 1", "", "beam_gpi", "the gpi_port of device 'r1'"),
        ('beam_device = "r1"', "gpi_port = 1", "beam_gpi", "the beam's GPI port"),
    ],
)
def test_beam_config_errors_name_the_key(
    tmp_path: Path, station: str, device: str, key: str, expected: str
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        _head(tmp_path)
        + f'[[devices]]\nid = "r1"\ndriver = "llrp"\nhost = "127.0.0.1"\n{device}\n'
        + '[[stations]]\nname = "door"\nkind = "portal"\nlocation = "DOCK-7"\n'
        + 'devices = ["r1"]\noutside_antennas = [1]\ninside_antennas = [2]\n'
        + station
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value) and expected in str(err.value)
