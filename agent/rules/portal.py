"""RFID portal: tags crossing a dock door become receive/ship (or transfer) movements.

Antennas form two groups, ``outside_antennas`` and ``inside_antennas``. Each
tag read only updates that tag's track (``agent.rules.tracks``): the read is
stored and signalled good ("tracked"), and moves nothing. A pass is decided
when the tag has been quiet for ``quiet_ms`` (or read without pause for
``max_track_ms``, both on the reader's clock where reads carry its stamps),
on the engine's clock tick: outside -> inside is ``in``
(``receive`` into ``location``, or a ``transfer`` from ``outside_location``),
inside -> outside is ``out`` (``ship`` from ``location``, or a ``transfer`` to
``outside_location``). One side only, a turn-back, or a confidence below
``min_confidence`` moves nothing (``tracks.direction`` says how); every closed
track's verdict goes out as ``Decision.verdict`` (the daemon counts it per
station and logs the reason of each that moved nothing at debug).

Serial dedup: each decided crossing is one state row per tag and direction
(``crossed:<in|out>:<epc>``) stored with its movement. Crossing the same way
again within ``dedup_ms``, with no crossing back between, moves nothing (a
second reader on the same door, a restart that rebuilt a decided pass). Rows
are pruned after ``dedup_ms``. With ``class_level``, the crossings of one GTIN
that close within ``quiet_ms`` of each other become one movement with a qty.

Beam gate (``beam_gpi``): a beam sensor across the door on a reader's GPI
makes a pass count only if the beam was broken at some time from
``beam_margin_ms`` before its first read to as long after its last (on the
agent's clock: GPI events and reads are both stamped on arrival). A tag
carried past the door on the outside, or a pallet parked by it, then moves
nothing (verdict ``beam_not_broken``). Passes that began before the daemon
was listening to the GPI (rebuilt after a restart) are not gated: their beam
events are gone, and a crossing is not dropped for it.

Memory: a track per tag in the field, dropped once decided; at ``max_tracks``
the longest-open track is decided early with what it has (counted as
``evicted`` in status). Restart: open tracks are not decided at SIGTERM (they
would be guesses); the daemon hands the tag reads of the last window back
through ``resume``, and the next tick decides what is due. Reads of another
boot (a reboot) are closed at once: their times cannot be compared with ours.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.config import StationSettings
from agent.model import Identity, Item, Movement, MovementKind, Read
from agent.rules.base import Closed, Context, Decision, Station
from agent.rules.tracks import INSIDE, OUTSIDE, Direction, Track, Verdict, direction, evidence

CROSSED = "crossed:"  # state key prefix: crossed:<in|out>:<epc URI> -> when
TRACKED = Decision(reason="tracked")
EPCS_KEPT = 1000  # EPCs listed in a class-level movement's evidence
BATCH_MAX = 10000  # crossings in one class-level movement
PRUNE_EVERY_NS = 60 * 1_000_000_000


@dataclass(slots=True)
class _Batch:
    """Class level: decided crossings of one GTIN one way, waiting for the pallet to pass."""

    tracks: list[tuple[Track, Verdict]] = field(default_factory=list)
    joined_ns: int = 0


class Portal(Station):
    kind = "portal"
    ticks = True

    def __init__(self, settings: StationSettings, ctx: Context) -> None:
        super().__init__(settings, ctx)
        self._side = {a: OUTSIDE for a in settings.outside_antennas}
        self._side.update({a: INSIDE for a in settings.inside_antennas})
        self._quiet = settings.quiet_ms * 1_000_000
        self._max_age = settings.max_track_ms * 1_000_000
        self._dedup = settings.dedup_ms * 1_000_000
        self._tracks: dict[bytes, Track] = {}
        # per reader: its newest last-seen stamp (µs, its clock) and when the agent decided it
        self._progress: dict[str, tuple[int, int]] = {}
        self._now = ctx.clock.mono_ns
        self._watched_from = 0  # mono_ns: silence before this was not watched (a stall)
        self._due: list[Track] = []  # ended in the read path; decided at the next tick
        self._batches: dict[tuple[Direction, str], _Batch] = {}
        self._held: dict[str, Direction] = {}  # epc -> way, decided and waiting in a batch
        self._next_prune = 0
        self.counts: Counter[str] = Counter()
        beam = settings.beam
        self._beam_device, self._beam_port = beam if beam is not None else ("", 0)
        self._beam_high = settings.beam_broken == "high"
        self._beam_margin = settings.beam_margin_ms * 1_000_000
        self._beam_since: int | None = None  # listening to the GPI since (mono_ns)
        self._broken: deque[list[int | None]] = deque()  # [from, until or None], oldest first
        inside = settings.location
        assert inside is not None  # config check: required for a portal
        outside = settings.outside_location
        self._kinds: dict[Direction, tuple[MovementKind, str | None, str | None]] = {
            "in": ("transfer", outside, inside) if outside else ("receive", None, inside),
            "out": ("transfer", inside, outside) if outside else ("ship", inside, None),
        }

    # ---- the read path: one dict lookup and a few additions per read ----------------

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind != "epc" or read.kind != "tag":
            return self.not_here(identity)
        side = self._side.get(read.antenna)  # type: ignore[arg-type]  # None: no side
        if side is None:
            self.counts["other_antenna"] += 1
            return Decision(
                reason=f"ignored: antenna {read.antenna} is on neither side of this portal"
            )
        stamp = read.reader_last_seen_us
        if stamp is not None:
            seen = self._progress.get(read.device)
            if seen is None or stamp >= seen[0]:
                # when the agent decided it, not when it arrived: a loaded agent decides
                # reads long after they arrived, and that is not a silent reader
                self._progress[read.device] = (stamp, self._now())
        key = read.data
        track = self._tracks.get(key)
        if track is None or self._ended(track, read.mono_ns, read.boot_id):
            if track is not None:
                self._due.append(self._tracks.pop(key))
            elif len(self._tracks) >= self.settings.max_tracks:
                self._evict()
            track = self._tracks[key] = Track(read, identity)
        track.add(read, side)
        return TRACKED

    def foreign(self, read: Read, identity: Identity) -> Decision | None:
        if read.kind != "tag" or read.fault is not None:
            return None  # a barcode, or a report the driver found broken: bad
        self.counts["foreign"] += 1
        return Decision(reason=f"ignored: {identity.error or 'not an EPC'}")

    def resume(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> bool:
        """Reads already part of a decided crossing stay out of the rebuilt tracks."""
        if identity.kind != "epc" or read.antenna not in self._side:
            return False
        for way in ("in", "out"):
            row = state.get(f"{CROSSED}{way}:{identity.epc}")
            if row and row.get("boot") == read.boot_id and read.mono_ns <= row.get("last", -1):
                return False
        self.decide(read, identity, state)
        return True

    def _ended(self, track: Track, now: int, boot_id: str) -> bool:
        """Whether a pass is over: quiet for ``quiet_ms``, or open for ``max_track_ms``.

        Both on the reader's clock when the reads have its stamps: quiet once the
        reader has since reported other tags ``quiet_ms`` later (an agent that
        falls behind sees the reader's time advance as slowly as it decodes, so a
        pass is not cut in two by the agent's own lag), or the agent has decided no
        read of that reader for ``quiet_ms`` of its time (the field emptied; counted
        from the decision, not the arrival: reads that waited in a loaded agent's
        queues are no silence); open too long
        once the reader's time is ``max_track_ms`` past the pass's first stamp (a
        loaded agent receives a one-second pass over many seconds: that is not a
        tag parked in the field). Else both are on the agent's clock, from the
        reads' arrival. Silence on the agent's clock never counts from before a
        stall of the agent (``unwatched``).
        """
        if track.boot_id != boot_id:
            return True
        last = track.last
        stamp = last.reader_last_seen_us
        seen = self._progress.get(last.device) if stamp is not None else None
        watched = self._watched_from
        if seen is None or stamp is None:
            return (
                now - max(last.mono_ns, watched) >= self._quiet
                or now - track.first.mono_ns >= self._max_age
            )
        newest, arrived = seen
        if (newest - stamp) * 1000 >= self._quiet or now - max(arrived, watched) >= self._quiet:
            return True
        anchor = track.anchor_us  # the first read's first (else last) stamp
        reader = self._progress.get(track.device) if anchor is not None else None
        if reader is None or anchor is None:
            return now - track.first.mono_ns >= self._max_age
        return (reader[0] - anchor) * 1000 >= self._max_age

    def unwatched(self, until_ns: int) -> None:
        """Silence on the agent's clock counts from ``until_ns`` at the earliest: a stalled
        agent (or, in a test, an emulator sharing its loop) has reports waiting unread,
        and a tick that came first would cut every open pass at the stall. Cut, a pass
        is two one-sided halves (a lost crossing), and a tag parked by the door a short
        piece that can look like one (a false crossing)."""
        if until_ns > self._watched_from:
            self._watched_from = until_ns

    def _evict(self) -> None:
        oldest = next(iter(self._tracks))
        self._due.append(self._tracks.pop(oldest))
        self.counts["evicted"] += 1

    # ---- the beam sensor -------------------------------------------------------------

    def inputs(self) -> frozenset[str]:
        return frozenset((self._beam_device,)) if self._beam_device else frozenset()

    def watch_inputs(self, mono_ns: int) -> None:
        """The agent listens to the beam from ``mono_ns`` (a daemon start). What an earlier
        start saw is dropped, as a new process has none of it: a replay of a recording
        that spans restarts then judges each run's passes as that run did."""
        self._beam_since = mono_ns
        self._broken.clear()

    def gpi(self, device: str, port: int, high: bool, mono_ns: int) -> None:
        if device != self._beam_device or port != self._beam_port:
            return
        broken = high == self._beam_high
        last = self._broken[-1] if self._broken else None
        if broken and (last is None or last[1] is not None):
            self._broken.append([mono_ns, None])
        elif not broken and last is not None and last[1] is None:
            last[1] = mono_ns
        keep = self._max_age + self._quiet + 2 * self._beam_margin
        while len(self._broken) > 1 and (self._broken[0][1] or mono_ns) < mono_ns - keep:
            self._broken.popleft()

    def _beam(self, track: Track) -> str | None:
        """How the beam judged a pass: "broken", "not broken", "not watched"; None: no beam."""
        if not self._beam_device:
            return None
        if self._beam_since is None or track.first.mono_ns < self._beam_since:
            return "not watched"
        lo = track.first.mono_ns - self._beam_margin
        hi = track.last.mono_ns + self._beam_margin
        for start, end in self._broken:
            assert start is not None
            if start <= hi and (end is None or end >= lo):
                return "broken"
        return "not broken"

    # ---- the clock path -------------------------------------------------------------

    def tick(
        self, now_ns: int, boot_id: str, state: Mapping[str, Any], final: bool = False
    ) -> list[Closed]:
        due, self._due = self._due, []
        if final:
            due.extend(self._tracks.values())
            self._tracks.clear()
        elif self._tracks:
            ended = [k for k, t in self._tracks.items() if self._ended(t, now_ns, boot_id)]
            due.extend(self._tracks.pop(k) for k in ended)
        out: list[Closed] = []
        if not due and not self._batches and (final or now_ns < self._next_prune):
            return out
        changes: dict[str, Any] = {}

        def get(key: str) -> Any:
            return changes[key] if key in changes else state.get(key)

        for track in due:
            self._close(track, get, changes, out)
        for bkey in list(self._batches):
            batch = self._batches[bkey]
            old = batch.tracks[0][0].boot_id != boot_id
            # Twice quiet_ms: every pass that could still join has ended by then, so
            # the batches do not depend on when the ticks came (replay = live).
            if final or old or now_ns - batch.joined_ns >= 2 * self._quiet:
                del self._batches[bkey]
                out.append(self._flush(bkey, batch, changes))
        if not final and now_ns >= self._next_prune:
            self._next_prune = now_ns + min(PRUNE_EVERY_NS, self._dedup)
            gone = self._expired(state, now_ns, boot_id)
            if gone:
                out.append(Closed("", Decision(state=gone)))
        return out

    def _close(self, track: Track, get: Any, changes: dict[str, Any], out: list[Closed]) -> None:
        verdict = direction(track, self.settings.min_reads)
        way = verdict.direction
        epc = track.identity.epc
        assert epc is not None
        if way is not None and verdict.confidence < self.settings.min_confidence:
            code = "low_confidence"
            why = f"confidence {verdict.confidence} below {self.settings.min_confidence}"
            verdict = Verdict(None, verdict.confidence, why, verdict.votes, code)
            way = None
        beam = self._beam(track) if way is not None else None
        if beam == "not broken":
            why = f"the beam on GPI {self._beam_port} was not broken during the pass"
            verdict = Verdict(None, verdict.confidence, why, verdict.votes, "beam_not_broken")
            way = None
        if way is None:
            self.counts["no_move"] += 1
            self.counts[f"no_move_{verdict.code}"] += 1
            decision = Decision(reason=f"{epc}: {verdict.why}", verdict=verdict.code)
            out.append(Closed(track.last.device, decision))
            return
        if self._duplicate(epc, way, track, get):
            self.counts["duplicate"] += 1
            fields = {"station": self.name, "epc": epc, "direction": way}
            reason = f"{epc} already crossed {way}"
            decision = Decision(
                reason=reason, log=(("portal_duplicate", fields),), verdict="duplicate"
            )
            out.append(Closed(track.last.device, decision))
            return
        self.counts[f"crossed_{way}"] += 1
        gtin = track.identity.gtin
        if self.settings.class_level and gtin:
            bkey: tuple[Direction, str] = (way, gtin)
            batch = self._batches.get(bkey)
            if batch is not None and (
                batch.tracks[0][0].boot_id != track.boot_id
                or track.last.mono_ns - batch.joined_ns >= self._quiet
            ):  # the next pallet of the same item: the last one is complete
                del self._batches[bkey]
                out.append(self._flush(bkey, batch, changes))
                batch = None
            if batch is None:
                batch = self._batches[bkey] = _Batch()
            batch.tracks.append((track, verdict))
            batch.joined_ns = max(batch.joined_ns, track.last.mono_ns)
            self._held[epc] = way
            counted = Decision(reason=f"{epc} crossed {way}", verdict=f"crossed_{way}")
            out.append(Closed(track.last.device, counted))
            if len(batch.tracks) >= BATCH_MAX:
                del self._batches[bkey]
                out.append(self._flush(bkey, batch, changes))
            return
        row = _row(track)
        changes[f"{CROSSED}{way}:{epc}"] = row
        kind, from_, to = self._kinds[way]
        shown = evidence(track, verdict)
        if beam is not None:
            shown["beam"] = beam
        movement = self.movement(
            kind,
            track.last,
            track.identity.item(),
            1,
            from_=from_,
            to=to,
            evidence=shown,
        )
        decision = Decision(
            movements=(movement,),
            reason=f"{epc} crossed {way}",
            state={_key(way, epc): row},
            verdict=f"crossed_{way}",
        )
        out.append(Closed(track.last.device, decision))

    def _flush(self, bkey: tuple[Direction, str], batch: _Batch, changes: dict[str, Any]) -> Closed:
        way, gtin = bkey
        rows: dict[str, Any] = {}
        epcs: list[str] = []
        for track, _ in batch.tracks:
            epc = track.identity.epc
            assert epc is not None
            self._held.pop(epc, None)
            rows[_key(way, epc)] = _row(track)
            if len(epcs) < EPCS_KEPT:
                epcs.append(epc)
        changes.update(rows)
        first, last = batch.tracks[0][0], batch.tracks[-1][0]
        kind, from_, to = self._kinds[way]
        n = len(batch.tracks)
        movement: Movement = self.movement(
            kind,
            last.last,
            Item(gtin=gtin),
            n,
            from_=from_,
            to=to,
            evidence={
                "read_ids": [*first.read_ids(), *last.read_ids()],
                "raw": f"{n} tags of GTIN {gtin}",
                "epcs": epcs,
                "tags": n,
                "reads": sum(s.count for t, _ in batch.tracks for s in t.sides),
                "antennas": sorted(
                    {a for t, _ in batch.tracks for s in t.sides for a in s.antennas}
                ),
                "direction": way,
                "confidence": min(v.confidence for _, v in batch.tracks),
                "first_at": first.first.observed_at,
            },
        )
        return Closed(
            last.last.device,
            Decision(movements=(movement,), reason=f"{n} × {gtin} crossed {way}", state=rows),
        )

    def _duplicate(self, epc: str, way: Direction, track: Track, get: Any) -> bool:
        """Crossed the same way before, within ``dedup_ms``, and not back since."""
        if self._held.get(epc) == way:
            return True
        mine = get(_key(way, epc))
        if not mine:
            return False
        back = get(_key("out" if way == "in" else "in", epc))
        if back and _later(back, mine):
            return False
        if mine.get("boot") == track.boot_id:
            return track.first.mono_ns - int(mine.get("last", 0)) < self._dedup
        return _wall(track.first) - float(mine.get("wall", 0.0)) < self._dedup / 1e9

    def _expired(self, state: Mapping[str, Any], now_ns: int, boot_id: str) -> dict[str, None]:
        wall = self.ctx.clock.wall()
        out: dict[str, None] = {}
        for key, row in state.items():
            if not key.startswith(CROSSED) or not isinstance(row, dict):
                continue
            if row.get("boot") == boot_id:
                old = now_ns - int(row.get("last", 0)) >= self._dedup
            else:
                old = wall - float(row.get("wall", 0.0)) >= self._dedup / 1e9
            if old:
                out[key] = None
        return out

    def status(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().status(state), "tracks": len(self._tracks), **self.counts}


def _key(way: Direction, epc: str) -> str:
    return f"{CROSSED}{way}:{epc}"


def _row(track: Track) -> dict[str, Any]:
    """When a crossing was decided: comparable by mono time within a boot, by wall across."""
    return {
        "boot": track.boot_id,
        "first": track.first.mono_ns,
        "last": track.last.mono_ns,
        "wall": _wall(track.last),
    }


def _later(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.get("boot") == b.get("boot"):
        return int(a.get("last", 0)) > int(b.get("last", 0))
    return float(a.get("wall", 0.0)) > float(b.get("wall", 0.0))


def _wall(read: Read) -> float:
    try:
        return datetime.fromisoformat(read.observed_at).timestamp()
    except ValueError:
        return 0.0
