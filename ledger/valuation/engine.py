"""Valuing a batch of new events across streams, late ones included, with no SQL.

The order used for costing is the event key: the movement's ``observed_at``
(UTC), then its journal position (the order the ledger received it). It does
not depend on the order of delivery, so the same set of movements, delivered
in any order, ends in the same valuation.

In order (the common case: every new event of a stream is after the stream's
last one) a stream is one `core.apply` per event on its current state. A late
event (before the stream's last) makes the stream replay from the state kept
just before it: every later event is valued again, and where its lines differ
from what was posted for it, the *difference* is posted as adjusting lines
(posted entries are never rewritten). A transfer re-valued on its out side
hands its new cost to the destination stream, which is then replayed from the
transfer on; nothing before the late point is touched.

A `Source` gives the stored side (the store's SQL, or `Memory` in tests).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from ledger.valuation.core import Ctx, Event, Key, Line, Method, Outcome, Piece, State, apply

StreamId = tuple[str, str]  # (item, location)
Posted = dict[tuple[str, str | None, str | None], int]  # (account, location, corrects) -> net


@dataclass(slots=True)
class Stored:
    event: Event
    posted: Posted = field(default_factory=dict)


class Written(NamedTuple):
    """An event valued (again): its state after, and what it posts now (what it posted
    before plus these is what it has posted in all)."""

    stream: StreamId
    event: Event
    state: str | None  # the state after it (`State.to_json`), every ``snapshot_every``-th
    lines: tuple[Line, ...]  # posted now: all of a new event's, the difference of an old one
    new: bool


@dataclass(frozen=True, slots=True)
class Run:
    written: list[Written]
    heads: dict[StreamId, tuple[State, Key]]  # each touched stream's state after its last event


class Source(Protocol):
    def head(self, stream: StreamId) -> tuple[State, Key] | None:
        """The stream's current state and last key, or None if it has no events."""

    def before(self, stream: StreamId, key: Key) -> State | None:
        """The state after the stream's last event before ``key``."""

    def stored_from(self, stream: StreamId, key: Key) -> list[Stored]:
        """The stream's stored events at or after ``key``, in key order."""


def run(
    source: Source,
    new: Sequence[tuple[StreamId, Event]],
    ctx: Callable[[StreamId], Ctx],
    method: Callable[[str], Method],
    snapshot_every: int = 1,
) -> Run:
    """Value the ``new`` events (and whatever they make late) in key order."""
    heap: list[tuple[Key, int, int, StreamId, Stored, bool]] = []
    states: dict[StreamId, State] = {}
    starts: dict[StreamId, Key] = {}
    lasts: dict[StreamId, Key] = {}
    tick = 0

    def push(stream: StreamId, stored: Stored, is_new: bool) -> None:
        nonlocal tick
        tick += 1
        order = 0 if stored.event.direction == "out" else 1
        heapq.heappush(heap, (stored.event.key, order, tick, stream, stored, is_new))

    def activate(stream: StreamId, start: Key) -> None:
        """Make ``stream`` replay from ``start`` (earlier than any start it had)."""
        old = starts.get(stream)
        head = source.head(stream)
        if head is not None:
            lasts.setdefault(stream, head[1])
        if old is None and (head is None or head[1] < start):
            states[stream] = head[0] if head is not None else State(method(stream[0]))
        else:
            before = source.before(stream, start)
            states[stream] = before if before is not None else State(method(stream[0]))
            for stored in source.stored_from(stream, start):
                if old is None or stored.event.key < old:
                    push(stream, stored, False)
        starts[stream] = start

    by_stream: dict[StreamId, list[Event]] = {}
    for stream, ev in new:
        by_stream.setdefault(stream, []).append(ev)
    for stream, events in by_stream.items():
        activate(stream, min(e.key for e in events))
        for ev in events:
            push(stream, Stored(ev), True)

    ctxs: dict[StreamId, Ctx] = {}
    handed: dict[str, tuple[tuple[Piece, ...], int]] = {}
    written: list[Written] = []
    while heap:
        key, _, _, stream, stored, is_new = heapq.heappop(heap)
        ev = stored.event
        if ev.transfer and ev.direction == "in" and ev.movement in handed:
            pieces, amount = handed[ev.movement]
            ev = ev._replace(pieces=pieces, amount=amount)
        state = states[stream]
        c = ctxs.get(stream)
        if c is None:
            c = ctxs[stream] = ctx(stream)
        outcome = apply(state, ev, c)
        if ev.transfer and ev.direction == "out":
            handed[ev.movement] = (outcome.pieces, outcome.amount)
            assert ev.counter_location is not None
            dest = (stream[0], ev.counter_location)
            late = dest not in starts or starts[dest] > key
            if late and (is_new or _changed(source, dest, key, ev.movement, outcome)):
                activate(dest, key)
        if not stored.posted:  # a new event (the common case): all its lines are new
            snap = state.to_json() if state.n % snapshot_every == 0 else None
            written.append(Written(stream, ev, snap, outcome.lines, is_new))
            lasts[stream] = max(lasts.get(stream, key), key)
            continue
        expected: Posted = {}
        for line in outcome.lines:
            k = (line.account, line.location, line.corrects)
            expected[k] = expected.get(k, 0) + line.amount
        diff = [
            Line(a, loc, amount - stored.posted.get((a, loc, c), 0), c)
            for (a, loc, c), amount in expected.items()
            if amount != stored.posted.get((a, loc, c), 0)
        ] + [
            Line(a, loc, -amount, c)
            for (a, loc, c), amount in stored.posted.items()
            if (a, loc, c) not in expected and amount
        ]
        snap = state.to_json() if state.n % snapshot_every == 0 else None
        written.append(Written(stream, ev, snap, tuple(diff), is_new))
        lasts[stream] = max(lasts.get(stream, key), key)
    return Run(written, {s: (states[s], lasts[s]) for s in states if s in lasts})


def _changed(source: Source, dest: StreamId, key: Key, movement: str, outcome: Outcome) -> bool:
    """Whether the destination's stored transfer-in differs from what the out side hands now."""
    for stored in source.stored_from(dest, key):
        if stored.event.movement == movement and stored.event.direction == "in":
            ev = stored.event
            return ev.pieces != outcome.pieces or ev.amount != outcome.amount
        if stored.event.key > key:
            break
    return True
