"""The portal judges a pass on the reader's own stamps, not on when reports reach the agent,
and says why every pass that moved nothing moved nothing."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from agent.clock import Clock, Uuid7, utc_iso
from agent.config import StationSettings
from agent.identify import Identifier
from agent.model import Read
from agent.rules import Context, Rules, Tick
from drivers.llrp_emulator import sgtin96

T0 = 1_700_000_000.0
READER_T0_US = 1_800_000_000_000_000  # the reader's clock: not the agent's
BOOT = "boot-1"
TAG = sgtin96("00614141123452", 4711, 7)


class Door:
    """One portal with readers r1 (and r2), an agent clock the test moves, reads made at will."""

    def __init__(self, **settings: Any) -> None:
        self.t = 0.0
        self.clock = Clock(
            wall=lambda: T0 + self.t,
            mono_ns=lambda: int(self.t * 1e9),
            boot_id=BOOT,
            synced=lambda: True,
        )
        self.ids = Uuid7(self.clock.wall)
        station = StationSettings(
            **{
                "name": "door-7",
                "kind": "portal",
                "location": "DOCK-7",
                "devices": ["r1", "r2"],
                "outside_antennas": [1, 2],
                "inside_antennas": [3, 4],
                **settings,
            }
        )
        self.rules = Rules(
            [station], Context("dock-7", self.clock, self.ids), identify=Identifier().identify
        )
        self.ticks: list[Tick] = []

    def read(
        self,
        antenna: int,
        seen_s: float | None,
        *,
        device: str = "r1",
        until_s: float | None = None,
        count: int = 1,
        offset_us: int | None = None,
        clock_us: int = READER_T0_US,
    ) -> Read:
        """A tag read arriving now, seen on the reader's clock at ``seen_s`` (.. ``until_s``)."""
        first = None if seen_s is None else clock_us + round(seen_s * 1e6)
        last = None if seen_s is None else clock_us + round((until_s or seen_s) * 1e6)
        return Read(
            id=self.ids.new(),
            device=device,
            kind="tag",
            data=TAG,
            observed_at=utc_iso(T0 + self.t),
            mono_ns=int(self.t * 1e9),
            boot_id=BOOT,
            antenna=antenna,
            rssi=-55.0,
            seen_count=count,
            reader_first_seen_us=first,
            reader_last_seen_us=last,
            reader_offset_us=offset_us,
        )

    def feed(self, *reads: Read) -> None:
        for read in reads:
            self.rules.decide(read.device, read)

    def settle(self, seconds: float = 3.0) -> list[Tick]:
        end = self.t + seconds
        while self.t < end:
            self.t += 0.1
            self.ticks.extend(self.rules.tick(int(self.t * 1e9), BOOT))
        return self.ticks

    def moved(self) -> list[str]:
        return [m.kind for t in self.ticks for m in t.decision.movements]

    def verdicts(self) -> Counter[str]:
        return Counter(t.decision.verdict for t in self.ticks if t.decision.verdict)


def walk_in(door: Door, **kw: Any) -> list[Read]:
    """A tag carried in over 1.2 s of reader time: outside antennas, then inside ones."""
    out = [door.read(1 + i % 2, 0.1 * i, **kw) for i in range(6)]
    inn = [door.read(3 + i % 2, 0.7 + 0.1 * i, **kw) for i in range(6)]
    return out + inn


def test_a_pass_that_reaches_a_loaded_agent_in_one_late_bunch_is_still_a_crossing() -> None:
    # The agent was busy: the pass's reports all arrive at once, 2 s late. On arrival
    # times both sides were seen at the same instant; the reader's stamps say in.
    door = Door()
    door.t = 2.0
    door.feed(*walk_in(door))
    door.settle()
    assert door.moved() == ["receive"]
    evidence = door.ticks[0].decision.movements[0].evidence
    assert evidence["clock"] == "reader"
    assert evidence["outside"]["first_ms"] == 0 and evidence["inside"]["last_ms"] == 1200


def test_the_same_bunch_without_reader_stamps_has_no_order_and_moves_nothing() -> None:
    door = Door()
    door.t = 2.0
    door.feed(*[door.read(r.antenna or 0, None) for r in walk_in(door)])
    door.settle()
    assert door.moved() == []
    assert door.verdicts() == {"no_order": 1}


def test_one_folded_read_per_side_spans_its_first_to_last_stamp() -> None:
    # A reader that accumulates (or the driver's fold): one read per antenna per report.
    door = Door()
    door.feed(
        door.read(1, 0.0, until_s=0.5, count=6),
        door.read(3, 0.6, until_s=1.2, count=6),
    )
    door.settle()
    assert door.moved() == ["receive"]


def test_a_second_reader_with_another_clock_is_put_on_the_first_ones() -> None:
    # r2's clock runs 5 s ahead of r1's; each read carries its reader's offset to the
    # agent's clock (agent minus reader). r1 sees the tag outside, r2 inside after it.
    ahead_us = 5_000_000
    door = Door()
    outside = [door.read(1, 0.1 * i, offset_us=-1000) for i in range(6)]
    inside = [
        door.read(
            3,
            0.7 + 0.1 * i,
            device="r2",
            clock_us=READER_T0_US + ahead_us,
            offset_us=-1000 - ahead_us,
        )
        for i in range(6)
    ]
    door.feed(*inside[:3], *outside, *inside[3:])  # arrival order says nothing either
    door.settle()
    assert door.moved() == ["receive"]


def test_a_second_reader_without_an_offset_is_placed_by_arrival() -> None:
    door = Door()
    door.feed(*[door.read(1, 0.1 * i, offset_us=0) for i in range(6)])
    door.t += 0.7
    door.feed(*[door.read(3, 99.0 + 0.1 * i, device="r2") for i in range(6)])  # clock unknown
    door.settle()
    assert door.moved() == ["receive"]
    assert door.ticks[0].decision.movements[0].evidence["clock"] == "reader"


def test_an_agent_that_falls_behind_does_not_cut_a_pass_in_two() -> None:
    # The agent decodes the reader's reports ten times slower than the reader makes
    # them: the tag's reads, 0.1 s apart on the reader's clock, arrive 1 s apart
    # (longer than quiet_ms) amid the other tags' reads of the same reports. The
    # reader's time has not moved on by quiet_ms between them: one pass.
    door = Door(quiet_ms=600)
    other = sgtin96("00614141123452", 4712, 7)
    for read in walk_in(door):
        door.feed(read)
        for _ in range(10):
            door.t += 0.1
            stamp = read.reader_last_seen_us
            assert stamp is not None
            door.feed(
                dataclasses.replace(door.read(1, None), data=other, reader_last_seen_us=stamp)
            )
            door.ticks.extend(door.rules.tick(int(door.t * 1e9), BOOT))
    assert door.moved() == []  # nothing decided while the pass's reads still come
    door.settle()
    assert door.moved() == ["receive"]
    assert door.verdicts()["crossed_in"] == 1


def test_an_agent_far_behind_does_not_cut_a_pass_at_max_track_ms() -> None:
    # Ten times slower still: the 1.2 s pass (reader clock) reaches the agent over 12 s
    # of its own time, far past max_track_ms (2 s), amid other tags' reads. On the
    # reader's clock the pass was never open that long: one pass, not pieces.
    door = Door(quiet_ms=600, max_track_ms=2000, dedup_ms=60000)
    other = sgtin96("00614141123452", 4712, 7)
    for read in walk_in(door):
        door.feed(read)
        for _ in range(10):
            door.t += 0.1
            stamp = read.reader_last_seen_us
            assert stamp is not None
            door.feed(
                dataclasses.replace(door.read(1, None), data=other, reader_last_seen_us=stamp)
            )
            door.ticks.extend(door.rules.tick(int(door.t * 1e9), BOOT))
    door.settle()
    assert door.moved() == ["receive"]
    assert door.verdicts()["crossed_in"] == 1


def test_reads_decided_long_after_they_arrived_are_not_a_silent_reader() -> None:
    # The agent is a second behind: each read is decided 1 s after the driver made it
    # (it waited in the queues), ticks coming in between. The reader was never silent
    # for quiet_ms, and the rules decide reads without a pause: one pass.
    door = Door(quiet_ms=600)
    door.t = 2.0
    for read in walk_in(door):
        door.t += 0.1
        arrived = dataclasses.replace(read, mono_ns=int((door.t - 1.0) * 1e9))
        door.feed(arrived)
        door.ticks.extend(door.rules.tick(int(door.t * 1e9), BOOT))
    assert door.moved() == []  # nothing decided while the pass's reads still come
    door.settle()
    assert door.moved() == ["receive"]
    assert door.verdicts()["crossed_in"] == 1


def test_a_tag_parked_in_the_field_is_cut_at_max_track_ms_of_the_readers_clock() -> None:
    # Read without pause for 5 s of the reader's clock (reports on time): judged every
    # 2 s with what it has, never a crossing.
    door = Door(quiet_ms=600, max_track_ms=2000, dedup_ms=60000)
    for i in range(50):
        door.t = 0.1 * i
        door.feed(door.read(1 + i % 4, 0.1 * i))
        door.ticks.extend(door.rules.tick(int(door.t * 1e9), BOOT))
    door.settle()
    assert sum(door.verdicts().values()) == 3  # 0-2 s, 2-4 s, 4-5 s
    assert door.moved() == []


def test_a_pass_ends_when_the_reader_moves_on_or_falls_silent() -> None:
    door = Door(quiet_ms=600)
    door.feed(*walk_in(door))  # the pass ends at 1.2 s on the reader's clock
    other = sgtin96("00614141123452", 4712, 7)
    late = dataclasses.replace(door.read(1, 2.0), data=other)  # the reader is at 2.0 s
    door.feed(late)
    assert door.moved() == [] and door.rules.tick(int(door.t * 1e9), BOOT)  # decided at once
    door2 = Door(quiet_ms=600)
    door2.feed(*walk_in(door2))
    door2.t = 0.5
    assert door2.rules.tick(int(door2.t * 1e9), BOOT) == []  # reader silent 0.5 s: not yet
    door2.settle()  # silent 0.6 s on the agent's clock: the field is empty, decided
    assert door2.moved() == ["receive"]


def test_every_pass_that_moves_nothing_says_why_in_one_word_and_in_full() -> None:
    door = Door()
    door.feed(*[door.read(1, 0.1 * i) for i in range(8)])  # outside only: a cross-read
    door.settle()
    door.feed(*walk_in(door, clock_us=READER_T0_US + 10_000_000))  # in ...
    back = [door.read(1, 1.3 + 0.1 * i, clock_us=READER_T0_US + 10_000_000) for i in range(3)]
    door.feed(*back)  # ... and back out at once: a turn-back
    door.settle()
    assert door.verdicts() == {"too_few_reads": 1, "turned_back": 1}
    reasons = [t.decision.reason or "" for t in door.ticks]
    assert any("too few reads" in r and "outside 8, inside 0" in r for r in reasons)
    assert any("no net crossing" in r for r in reasons)
    status = door.rules.status()["stations"]["door-7"]
    assert status["no_move_too_few_reads"] == 1 and status["no_move_turned_back"] == 1


def test_crossings_and_duplicates_are_counted_as_verdicts_too() -> None:
    door = Door()
    door.feed(*walk_in(door))
    door.settle()
    door.feed(*walk_in(door, clock_us=READER_T0_US + 10_000_000))  # the same way again
    door.settle()
    assert door.verdicts() == {"crossed_in": 1, "duplicate": 1}
    assert door.moved() == ["receive"]


def test_class_level_passes_are_counted_when_judged_not_when_the_pallet_is_sent() -> None:
    door = Door(class_level=True)
    door.feed(*walk_in(door))
    door.settle()
    assert door.verdicts() == {"crossed_in": 1}
    assert door.moved() == ["receive"]


# ---- the beam gate ---------------------------------------------------------------------


def test_with_a_beam_a_pass_counts_only_if_the_beam_was_broken_during_it() -> None:
    door = Door(beam_gpi=1, beam_device="r1")
    door.rules.watch_beam("r1", 0)
    door.feed(*walk_in(door))
    door.rules.gpi("r1", 1, True, int(0.3e9))  # broken ...
    door.rules.gpi("r1", 1, False, int(0.6e9))  # ... and cleared, within the pass
    door.settle()
    assert door.moved() == ["receive"]
    assert door.ticks[0].decision.movements[0].evidence["beam"] == "broken"
    # The same walk again later with the beam never broken: RF alone says "in", the
    # beam says nobody went through the door (a tag carried past it on the outside).
    door.feed(*walk_in(door, clock_us=READER_T0_US + 10_000_000))
    door.rules.gpi("r1", 2, True, door.clock.mono_ns())  # another GPI port: not the beam
    door.settle()
    assert door.moved() == ["receive"]
    assert door.verdicts() == {"crossed_in": 1, "beam_not_broken": 1}
    assert any("beam on GPI 1 was not broken" in (t.decision.reason or "") for t in door.ticks)


def test_a_beam_broken_just_before_the_first_read_counts_within_the_margin() -> None:
    door = Door(beam_gpi=1, beam_broken="low", beam_margin_ms=500)
    door.rules.watch_beam("r1", 0)
    door.t = 1.0
    door.rules.gpi("r1", 1, False, int(0.6e9))  # low = broken, 0.4 s before the pass
    door.rules.gpi("r1", 1, True, int(0.7e9))
    door.feed(*walk_in(door))
    door.settle()
    assert door.moved() == ["receive"]


def test_passes_from_before_the_beam_was_watched_are_not_gated() -> None:
    # After a restart, rebuilt passes have lost their beam events: not dropped for it.
    door = Door(beam_gpi=1, beam_device="r1")
    door.feed(*walk_in(door))
    door.t = 0.5
    door.rules.watch_beam("r1", door.clock.mono_ns())
    door.settle()
    assert door.moved() == ["receive"]
    assert door.ticks[0].decision.movements[0].evidence["beam"] == "not watched"
    assert door.rules.beam_devices() == {"r1"}


# ---- a stalled agent: silence it did not watch is no silence ----------------------------


def _tick(door: Door) -> None:
    door.ticks.extend(door.rules.tick(int(door.t * 1e9), BOOT))


def _stall(door: Door, seconds: float) -> None:
    """The agent's loop stalls: its next tick wakes ``seconds`` late, and the daemon
    (``TickGate``) tells the rules so instead of deciding at that tick."""
    door.t += seconds
    door.rules.unwatched(int(door.t * 1e9))


def test_a_pass_the_agent_stalled_in_is_still_one_crossing() -> None:
    # The outside half of the pass is decided on time; then the agent stalls 0.9 s
    # and its first tick after the stall comes before the inside half's reports
    # (waiting in the socket) are decided. The reader was never silent: one pass.
    # (Cut at the stall, it was two one-sided halves: nothing moved, the 199 of 200.)
    door = Door(quiet_ms=600)
    reads = walk_in(door)
    for read in reads[:6]:  # outside, 0 .. 0.5 s, each decided as it comes
        door.t = (read.reader_first_seen_us - READER_T0_US) / 1e6  # type: ignore[operator]
        door.feed(dataclasses.replace(read, mono_ns=int(door.t * 1e9)))
        _tick(door)
    _stall(door, 0.9)
    door.t += 0.1
    _tick(door)  # on time, the inside half not yet decided
    assert door.ticks == []
    door.feed(*[dataclasses.replace(r, mono_ns=int(door.t * 1e9)) for r in reads[6:]])
    door.settle()
    assert door.moved() == ["receive"]
    assert door.verdicts() == {"crossed_in": 1}


def test_a_tag_parked_by_the_door_is_no_crossing_when_the_agent_stalls() -> None:
    # A tag parked outside, read there every 0.1 s, caught three times through the
    # door at about 1 s. Judged at max_track_ms (2 s) its inside reads are too few
    # against the outside's (one-sided). The agent stalls 0.8 s just after the
    # cross-reads: cut there, the piece (outside 0..1 s, then inside) had read as a
    # crossing in, a false receive. The reader's clock says the tag never went quiet.
    door = Door(quiet_ms=600, max_track_ms=2000, dedup_ms=60000)

    def on_time(antenna: int, at: float) -> None:
        door.t = max(door.t, at)
        door.feed(door.read(antenna, at))
        _tick(door)

    for i in range(11):
        on_time(1 + i % 2, 0.1 * i)
    for at in (1.02, 1.04, 1.06):
        on_time(3, at)
    _stall(door, 0.8)
    door.t += 0.1
    _tick(door)  # on time, the reports of the stall not yet decided
    late = [door.read(1 + i % 2, 1.1 + 0.1 * i) for i in range(8)]  # 1.1 .. 1.8 s
    door.feed(*late)
    for i in range(9, 30):  # on time again, 1.9 .. 3.9 s
        on_time(1 + i % 2, 1.0 + 0.1 * i)
    door.settle()
    assert door.moved() == []
    assert door.verdicts()["one_sided"] == 1, door.verdicts()
    assert not {"crossed_in", "crossed_out"} & set(door.verdicts())
