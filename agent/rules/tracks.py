"""One tag's pass through a portal: what each side (outside, inside) saw, and the verdict.

A portal reads each tag tens of times a second per antenna, so a read must cost
a dict lookup and a few integer updates: a track keeps running summaries per
side (reads, first/last seen, peak RSSI and when, the read-weighted mean time)
and a handful of read ids as evidence, never the reads themselves.

Times: one clock per track. A pass is judged on the reader's own stamps
(``reader_first_seen_us`` / ``reader_last_seen_us``) when its first read has
them: readers batch reports, and a loaded agent receives them late and
bunched, so the time a read reached the agent says little about when the tag
was under the antenna. A track whose first read has no stamps is judged on the
agent's monotonic ``mono_ns`` at receipt. The quiet window and ``max_track_ms``
are on the reader's clock where they can be (``Portal._ended``).
Replay sees the same times. Inside a reader-clock track:

- a read from a second reader of the station is moved onto the first
  reader's clock by the difference of their offsets (``reader_offset_us``,
  agent clock minus reader clock), fixed per reader for the track when it is
  first seen, so a later change of the estimate cannot reorder the pass;
- a read without stamps (or a reader whose offset is not known) is placed by
  its ``mono_ns`` relative to the track's first read.

A read that folds repeats (``seen_count`` > 1, first and last seen apart)
counts from its first stamp to its last, its weight at the middle.

The verdict (``direction``):

- each side needs ``min_reads`` reads (``seen_count`` summed), else the tag
  was seen on one side only (a cross-read, a tag parked by the door): no move;
- the weaker side needs at least a fifth of the stronger side's reads
  (``MIN_BALANCE``): a tag passing is read well on both sides, a tag staying
  on one side is read on the other only now and then, through the door;
- the side that saw the tag first must differ from the side that saw it last,
  else it came back the way it came (a turn-back) or never left: no net move;
- the read-weighted mean times of the two sides must lie in that order and
  at least a quarter of the pass apart (``MIN_SEPARATION``), else the reads
  interleave: a tag parked by the door, read on both sides for as long as
  it stays, with first and last reads on either side by chance;
- the direction is from the first side to the last; its confidence is the
  share of four orderings that agree with it: first seen, last seen, mean
  time (all three do, by the rules above) and the time of peak RSSI on each
  side. 1.0: all four agree; 0.75: the peaks are in the other order
  (0.5 cannot happen: the mean is a gate too).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from agent.model import Identity, Read

OUTSIDE, INSIDE = 0, 1
SIDES = ("outside", "inside")
MIN_BALANCE = 0.2  # the weaker side's reads, as a share of the stronger side's
MIN_SEPARATION = 0.25  # of the pass's duration, between the two sides' mean read times
IDS_KEPT = 3  # read ids kept as evidence from the head and from the tail of a pass
Direction = Literal["in", "out"]


class Side:
    """Running summary of one side's reads of one tag (``Track.add`` keeps it)."""

    __slots__ = ("antennas", "count", "first", "last", "peak", "peak_first", "peak_last", "sum_t")

    def __init__(self) -> None:
        self.count = 0
        self.first = 0
        self.last = 0
        self.peak = -1000.0
        self.peak_first = 0
        self.peak_last = 0
        self.sum_t = 0
        self.antennas: set[int] = set()

    @property
    def peak_at(self) -> float:
        """The middle of the peak: a tag passing under an antenna holds its peak a while."""
        return (self.peak_first + self.peak_last) / 2 if self.peak > -1000.0 else self.mean

    @property
    def mean(self) -> float:
        return self.sum_t / self.count if self.count else 0.0

    def evidence(self, t0: int) -> dict[str, Any]:
        if not self.count:
            return {"reads": 0}
        return {
            "reads": self.count,
            "antennas": sorted(self.antennas),
            "peak_rssi": None if self.peak <= -1000.0 else self.peak,
            "first_ms": _ms(self.first - t0),
            "last_ms": _ms(self.last - t0),
            "peak_ms": _ms(self.peak_at - t0),
            "mean_ms": _ms(self.mean - t0),
        }


class Track:
    """One tag's reads since it was first seen (or since its last verdict)."""

    __slots__ = (
        "anchor_us",
        "boot_id",
        "device",
        "first",
        "head",
        "host_shift",
        "identity",
        "last",
        "offsets",
        "reader_clock",
        "rows",
        "sides",
        "tail",
    )

    def __init__(self, read: Read, identity: Identity) -> None:
        self.identity = identity
        self.first = read
        self.last = read
        self.rows = 0
        self.sides = (Side(), Side())
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=IDS_KEPT)
        stamp = _stamp(read)
        # what the portal asks of every read's track, kept rather than looked up each time
        self.boot_id = read.boot_id
        self.device = read.device  # the first reader: its clock is the track's
        self.anchor_us = stamp  # the first read's reader stamp (µs), the pass's start
        self.reader_clock = stamp is not None
        # track time = mono_ns + host_shift for reads placed by the agent's clock
        self.host_shift = 0 if stamp is None else stamp * 1000 - read.mono_ns
        # per reader: ns to add to its stamps to put them on the first reader's clock
        self.offsets: dict[str, int | None] = {read.device: 0}

    def times(self, read: Read) -> tuple[int, int]:
        """When ``read`` saw the tag, from first to last, on this track's clock (ns)."""
        if self.reader_clock:
            last, first = read.reader_last_seen_us, read.reader_first_seen_us
            if last is not None or first is not None:
                shift = self._shift(read)
                if shift is not None:
                    lo = first if first is not None else last
                    hi = last if last is not None else first
                    assert lo is not None and hi is not None
                    if hi < lo:
                        lo, hi = hi, lo
                    return lo * 1000 + shift, hi * 1000 + shift
        t = read.mono_ns + self.host_shift
        return t, t

    def _shift(self, read: Read) -> int | None:
        offsets = self.offsets
        device = read.device
        if device in offsets:
            return offsets[device]
        base = self.first.reader_offset_us
        mine = read.reader_offset_us
        shift = None if base is None or mine is None else (mine - base) * 1000
        offsets[device] = shift
        return shift

    def add(self, read: Read, side: int) -> None:
        # ``times`` inline for a read of the first reader (its shift is 0), and the
        # side's running sums kept here rather than in a method: this runs per tag read.
        last, first = read.reader_last_seen_us, read.reader_first_seen_us
        if not self.reader_clock or (last is None and first is None):
            t0 = t1 = read.mono_ns + self.host_shift
        elif read.device is self.device or read.device == self.device:
            if first is None:
                t0 = t1 = last * 1000  # type: ignore[operator]  # one of them is set
            elif last is None:
                t0 = t1 = first * 1000
            elif last < first:
                t0, t1 = last * 1000, first * 1000
            else:
                t0, t1 = first * 1000, last * 1000
        else:
            t0, t1 = self.times(read)
        s = self.sides[side]
        n = read.seen_count or 1
        if not s.count:
            s.first, s.last = t0, t1
        else:
            if t0 < s.first:
                s.first = t0
            if t1 > s.last:
                s.last = t1
        s.count += n
        t = t0 if t0 == t1 else (t0 + t1) // 2
        s.sum_t += t * n
        rssi = read.rssi
        if rssi is not None:
            peak = s.peak
            if rssi > peak:
                s.peak, s.peak_first, s.peak_last = rssi, t, t
            elif rssi == peak and t > s.peak_last:
                s.peak_last = t
        s.antennas.add(read.antenna or 0)
        self.last = read
        self.rows += 1
        head = self.head
        if len(head) < IDS_KEPT:
            head.append(read.id)
        else:
            self.tail.append(read.id)

    @property
    def start(self) -> int:
        """The pass's first and last read, on the track's clock."""
        return min(s.first for s in self.sides if s.count)

    @property
    def end(self) -> int:
        return max(s.last for s in self.sides if s.count)

    def read_ids(self) -> list[str]:
        return [*self.head, *self.tail]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a closed track means: a direction with its confidence, or why there is none."""

    direction: Direction | None
    confidence: float
    why: str
    votes: dict[str, bool]
    # why in one word, for the metrics: crossed, too_few_reads, one_sided, no_order,
    # turned_back, interleaved (the portal adds low_confidence and beam_not_broken)
    code: str = "crossed"


def direction(track: Track, min_reads: int) -> Verdict:
    """The crossing a track shows, by the rules in this module's docstring."""
    out, inn = track.sides
    if out.count < min_reads or inn.count < min_reads:
        seen = [name for name, s in zip(SIDES, track.sides, strict=True) if s.count]
        why = (
            f"seen on the {' and '.join(seen) or 'no'} side: too few reads to cross "
            f"(outside {out.count}, inside {inn.count}, {min_reads} needed on each)"
        )
        return Verdict(None, 0.0, why, {}, "too_few_reads")
    weak, strong = sorted((out.count, inn.count))
    if weak < MIN_BALANCE * strong:
        side = SIDES[OUTSIDE if out.count < inn.count else INSIDE]
        why = (
            f"{weak} reads on the {side} against {strong} on the other side: "
            "cross-reads of a tag that stayed on one side"
        )
        return Verdict(None, 0.0, why, {}, "one_sided")
    if out.first == inn.first or out.last == inn.last:
        why = "first or last read on both sides at once: no order"
        return Verdict(None, 0.0, why, {}, "no_order")
    start = OUTSIDE if out.first < inn.first else INSIDE
    end = INSIDE if inn.last > out.last else OUTSIDE
    if start == end:
        why = f"first and last read on the {SIDES[start]}: no net crossing"
        return Verdict(None, 0.0, why, {}, "turned_back")
    a, b = track.sides[start], track.sides[end]  # from, to
    span = max(track.end - track.start, 1)
    separation = (b.mean - a.mean) / span
    if separation < MIN_SEPARATION:
        why = (
            f"the sides' reads interleave (mean times {separation:.2f} of the pass apart, "
            f"{MIN_SEPARATION} needed): a tag held in the field, not a crossing"
        )
        return Verdict(None, 0.0, why, {}, "interleaved")
    votes = {
        "first": a.first < b.first,
        "last": a.last < b.last,
        "peak": a.peak_at < b.peak_at,
        "mean": a.mean < b.mean,
    }
    confidence = sum(votes.values()) / len(votes)
    way: Direction = "in" if start == OUTSIDE else "out"
    return Verdict(way, confidence, f"crossed {way}", votes)


def evidence(track: Track, verdict: Verdict) -> dict[str, Any]:
    """Bounded evidence of one pass: read ids from its head and tail, per-side summaries."""
    t0 = track.start
    out: dict[str, Any] = {
        "read_ids": track.read_ids(),
        "reads": sum(s.count for s in track.sides),
        "report_rows": track.rows,
        "raw": track.identity.raw,
        "antennas": sorted(track.sides[0].antennas | track.sides[1].antennas),
        "clock": "reader" if track.reader_clock else "agent",
        "outside": track.sides[OUTSIDE].evidence(t0),
        "inside": track.sides[INSIDE].evidence(t0),
        "pass": {
            "boot_id": track.boot_id,
            "first_mono_ns": track.first.mono_ns,
            "last_mono_ns": track.last.mono_ns,
            "first_at": track.first.observed_at,
        },
    }
    if verdict.direction is not None:
        out["direction"] = verdict.direction
        out["confidence"] = verdict.confidence
        out["votes"] = verdict.votes
    return out


def _stamp(read: Read) -> int | None:
    """The read's reader stamp (µs) that anchors a track's clock, if any."""
    if read.reader_first_seen_us is not None:
        return read.reader_first_seen_us
    return read.reader_last_seen_us


def _ms(ns: float) -> int:
    return round(ns / 1_000_000)
