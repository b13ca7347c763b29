"""RFID zone: tags arrive at, move between and depart from the locations antennas watch.

The model is EdgeX's RFID inventory service (app-rfid-llrp-inventory), so a
site that tuned it can reuse its numbers:

- each antenna watches a location (``antenna_locations = ["1=SHELF-A", ...]``);
  a tag keeps, per location, the mean RSSI of its last 20 reads and when it
  was last read there;
- the first read of a tag not present is **Arrived** at that location;
- a present tag **Moved** when a read at another location (with at least 2
  reads there) has a mean RSSI above the current location's mean plus the
  mobility offset: ``threshold`` dB while the current location's last read is
  under ``holdoff`` ms old, then falling by ``slope`` dB per ms (EdgeX:
  offset = min(threshold, slope * age + threshold - slope * holdoff));
- a present tag not read for ``departed_after_ms`` has **Departed** (decided
  on the clock tick).

Movements: Arrived is a ``transfer`` from ``zone_from_location`` to the
location, or a ``receive`` when that is unset (a transfer needs a from);
Moved is a ``transfer`` between the two; Departed is a ``transfer`` to
``departed_location``, or a ``ship`` from the last location when that is unset.

State: one row per present tag (``at:<epc>`` -> location), written only when
it arrives, moves or departs, so a restart neither re-arrives the stock nor
forgets it; a restored tag counts as read at the first tick after the start.
Memory: one small record per present tag, at most ``max_tracks``; past it new
tags are kept as reads, signalled good with the reason, counted, not tracked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from agent.clock import utc_iso
from agent.config import StationSettings, parse_antenna_location
from agent.model import Identity, Movement, Read
from agent.rules.base import Closed, Context, Decision, Station

AT = "at:"  # state key prefix: at:<epc URI> -> location
WINDOW = 20  # RSSI values averaged per location (EdgeX's tagStatsWindowSize)
SEEN = Decision(reason="tracked")


class _Stats:
    """The last WINDOW RSSI values of a tag at one location, and its last read there."""

    __slots__ = ("last_ns", "ring", "sum")

    def __init__(self) -> None:
        self.ring: list[float] = []
        self.sum = 0.0
        self.last_ns = 0

    def add(self, rssi: float | None, t: int) -> None:
        self.last_ns = t
        if rssi is None:
            return
        ring = self.ring
        if len(ring) >= WINDOW:
            self.sum -= ring.pop(0)
        ring.append(rssi)
        self.sum += rssi

    @property
    def count(self) -> int:
        return len(self.ring)

    @property
    def mean(self) -> float:
        return self.sum / len(self.ring) if self.ring else -1000.0


class _Tag:
    __slots__ = ("boot_id", "identity", "last", "last_ns", "location", "stats")

    def __init__(self, identity: Identity, location: str | None) -> None:
        self.identity = identity
        self.location = location
        self.stats: dict[str, _Stats] = {}
        self.last: Read | None = None  # the latest read (None: restored, not read since)
        self.last_ns: int | None = None
        self.boot_id: str | None = None


class Zone(Station):
    kind = "zone"
    ticks = True

    def __init__(self, settings: StationSettings, ctx: Context) -> None:
        super().__init__(settings, ctx)
        self._where: dict[int, str] = {}
        for text in settings.antenna_locations:
            parsed = parse_antenna_location(text)
            assert parsed is not None  # config check
            self._where[parsed[0]] = parsed[1]
        self._departed = settings.departed_after_ms * 1_000_000
        self._threshold = settings.mobility_threshold_dbm
        self._holdoff_ms = float(settings.mobility_holdoff_ms)
        self._slope = settings.mobility_slope
        self._intercept = self._threshold - self._slope * self._holdoff_ms
        self._tags: dict[str, _Tag] = {}
        self.counts: Counter[str] = Counter()
        self._watched_from = 0  # mono_ns: silence before this was not watched (a stall)

    def restore(self, state: Mapping[str, Any]) -> None:
        """Present tags come back from their rows; their read statistics start afresh."""
        self._tags = {}
        for key, location in state.items():
            if key.startswith(AT) and isinstance(location, str):
                epc = key[len(AT) :]
                self._tags[epc] = _Tag(Identity(kind="epc", raw=epc, epc=epc), location)

    def unwatched(self, until_ns: int) -> None:
        """A stalled agent has reports waiting unread: a tag departs only after
        ``departed_after_ms`` of silence the agent watched, from ``until_ns`` at the
        earliest, or every tag present would depart at the stall and arrive again."""
        if until_ns > self._watched_from:
            self._watched_from = until_ns

    def offset(self, age_ms: float) -> float:
        """EdgeX's mobility offset (dB) for a current location last read ``age_ms`` ago."""
        return min(self._threshold, self._slope * age_ms + self._intercept)

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind != "epc" or read.kind != "tag":
            return self.not_here(identity)
        here = self._where.get(read.antenna)  # type: ignore[arg-type]  # None: unmapped
        if here is None:
            self.counts["other_antenna"] += 1
            return Decision(reason=f"ignored: antenna {read.antenna} watches no location")
        epc = identity.epc
        assert epc is not None
        tag = self._tags.get(epc)
        if tag is None:
            if len(self._tags) >= self.settings.max_tracks:
                self.counts["untracked"] += 1
                return Decision(reason=f"not tracked: {len(self._tags)} tags present (max_tracks)")
            tag = self._tags[epc] = _Tag(identity, None)
        now = read.mono_ns
        if tag.boot_id != read.boot_id:  # restored, or a new boot: old times mean nothing
            tag.stats.clear()
            tag.boot_id = read.boot_id
        stats = tag.stats.get(here)
        if stats is None:
            stats = tag.stats[here] = _Stats()
        stats.add(read.rssi, now)
        tag.last, tag.last_ns = read, now
        previous = tag.location
        if previous is None:
            tag.location = here
            self.counts["arrived"] += 1
            return self._arrived(tag, read, here)
        if previous == here:
            return SEEN
        current = tag.stats.get(previous)
        if stats.count < 2:
            moved = False  # EdgeX: two reads at the new location before a move
        elif current is None or current.count == 0:
            moved = True  # restored (statistics start afresh) or no RSSI there
        else:
            offset = self.offset((now - current.last_ns) / 1e6)
            moved = stats.mean > current.mean + offset
        if not moved:
            return SEEN
        tag.location = here
        self.counts["moved"] += 1
        evidence = self._evidence(tag, read, previous, here)
        movement = self.movement(
            "transfer", read, identity.item(), 1, from_=previous, to=here, evidence=evidence
        )
        return Decision(
            movements=(movement,), reason=f"moved {previous} -> {here}", state={AT + epc: here}
        )

    def _arrived(self, tag: _Tag, read: Read, here: str) -> Decision:
        source = self.settings.zone_from_location
        evidence = {"event": "arrived", **self._evidence(tag, read, None, here)}
        item = tag.identity.item()
        if source:
            movement = self.movement(
                "transfer", read, item, 1, from_=source, to=here, evidence=evidence
            )
        else:
            movement = self.movement("receive", read, item, 1, to=here, evidence=evidence)
        epc = tag.identity.epc
        return Decision(
            movements=(movement,), reason=f"arrived at {here}", state={f"{AT}{epc}": here}
        )

    def _evidence(self, tag: _Tag, read: Read, was: str | None, here: str) -> dict[str, Any]:
        stats = {
            loc: {"mean_rssi": round(s.mean, 1), "reads": s.count}
            for loc, s in tag.stats.items()
            if s.count
        }
        out: dict[str, Any] = {
            "event": "moved" if was else "arrived",
            "raw": tag.identity.raw,
            "antenna": read.antenna,
            "rssi": read.rssi,
            "locations": stats,
        }
        if was is not None and was in tag.stats:
            age_ms = (read.mono_ns - tag.stats[was].last_ns) / 1e6
            out["mobility"] = {"offset_db": round(self.offset(age_ms), 2), "age_ms": round(age_ms)}
        return out

    def tick(
        self, now_ns: int, boot_id: str, state: Mapping[str, Any], final: bool = False
    ) -> list[Closed]:
        out: list[Closed] = []
        if final:
            return out  # a replay's end is not a departure: the tags may still be there
        gone: list[str] = []
        for epc, tag in self._tags.items():
            if tag.boot_id != boot_id:  # restored: count it as read now
                tag.boot_id, tag.last_ns = boot_id, now_ns
                tag.stats.clear()
            elif (
                tag.last_ns is not None
                and now_ns - max(tag.last_ns, self._watched_from) >= self._departed
            ):
                gone.append(epc)
        for epc in gone:
            tag = self._tags.pop(epc)
            self.counts["departed"] += 1
            if tag.location is not None:
                out.append(self._departure(tag, tag.location, now_ns, boot_id))
        return out

    def _departure(self, tag: _Tag, where: str, now_ns: int, boot_id: str) -> Closed:
        """A transfer to ``departed_location``, else a ship. A tag restored at a start and
        not read since departs too: its movement is stamped with the tick's time."""
        epc = tag.identity.epc
        last = tag.last
        if last is None:
            device = self.settings.devices[0] if self.settings.devices else self.name
            last = Read(
                id=self.ctx.ids.new(),
                device=device,
                kind="tag",
                data=b"",
                observed_at=utc_iso(self.ctx.clock.wall()),
                mono_ns=now_ns,
                boot_id=boot_id,
            )
        to = self.settings.departed_location
        evidence = {
            "event": "departed",
            "raw": tag.identity.raw,
            "read_ids": [tag.last.id] if tag.last is not None else [],
            "quiet_ms": round((now_ns - (tag.last_ns or now_ns)) / 1e6),
            "departed_after_ms": self.settings.departed_after_ms,
        }
        item = tag.identity.item()
        movement: Movement
        if to:
            movement = self.movement(
                "transfer", last, item, 1, from_=where, to=to, evidence=evidence
            )
        else:
            movement = self.movement("ship", last, item, 1, from_=where, evidence=evidence)
        return Closed(
            last.device,
            Decision(
                movements=(movement,),
                reason=f"{epc} departed {where}",
                state={f"{AT}{epc}": None},
            ),
        )

    def status(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().status(state), "present": len(self._tags), **self.counts}
