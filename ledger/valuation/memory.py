"""A whole ledger's valuation in memory: the reference the tests and the bench compare with.

It keeps what the store keeps (each stream's events with their state after and
what they posted, and the posted lines) in dicts, and posts through the same
`engine.run` as the store, so a test can value a sequence by hand and see the
same lines the store writes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.valuation.accounts import Accounts
from ledger.valuation.core import Ctx, Key, Line, Method, State
from ledger.valuation.engine import Run, Source, Stored, StreamId, run
from ledger.valuation.events import Moved, event_time, stream_events


@dataclass(frozen=True, slots=True)
class Posting:
    movement: str
    stream: StreamId
    line: Line
    recost: bool


@dataclass
class Book(Source):
    method: Method = "fifo"
    places: int = 2
    accounts: Accounts = field(default_factory=Accounts)
    methods: dict[str, Method] = field(default_factory=dict)  # per item
    streams: dict[StreamId, list[tuple[Key, Stored, str | None]]] = field(default_factory=dict)
    heads: dict[StreamId, tuple[State, Key]] = field(default_factory=dict)
    postings: list[Posting] = field(default_factory=list)
    pos: int = 0

    # -- Source ------------------------------------------------------------------
    def head(self, stream: StreamId) -> tuple[State, Key] | None:
        h = self.heads.get(stream)
        return None if h is None else (State.from_json(h[0].to_json()), h[1])

    def before(self, stream: StreamId, key: Key) -> State | None:
        rows = self.streams.get(stream, [])
        i = bisect.bisect_left([k for k, _, _ in rows], key)
        if i == 0:
            return None
        state = rows[i - 1][2]
        assert state is not None  # the book keeps every state
        return State.from_json(state)

    def stored_from(self, stream: StreamId, key: Key) -> list[Stored]:
        rows = self.streams.get(stream, [])
        i = bisect.bisect_left([k for k, _, _ in rows], key)
        return [Stored(s.event, dict(s.posted)) for _, s, _ in rows[i:]]

    # -- posting -----------------------------------------------------------------
    def post(self, moved: Iterable[Moved]) -> Run:
        """Journal ``moved`` (one batch, in the order given) and value it."""
        new = []
        for m in moved:
            self.pos += 1
            key = (event_time(m.observed_at, ""), self.pos)
            new += stream_events(m, key, self.accounts)
        result = run(self, new, self._ctx, self._method)
        for w in result.written:
            rows = self.streams.setdefault(w.stream, [])
            keys = [(k, s.event.direction) for k, s, _ in rows]
            i = bisect.bisect_left(keys, (w.event.key, w.event.direction))
            found = i < len(rows) and keys[i] == (w.event.key, w.event.direction)
            posted = dict(rows[i][1].posted) if found else {}
            for ln in w.lines:  # what it posted before, and now
                k = (ln.account, ln.location, ln.corrects)
                posted[k] = posted.get(k, 0) + ln.amount
            posted = {k: v for k, v in posted.items() if v}
            entry = (w.event.key, Stored(w.event, posted), w.state)
            if found:
                rows[i] = entry
            else:
                rows.insert(i, entry)
            self.postings += [Posting(w.event.movement, w.stream, ln, not w.new) for ln in w.lines]
        self.heads.update(result.heads)
        return result

    def _ctx(self, stream: StreamId) -> Ctx:
        return Ctx(stream[1], self.accounts.inventory, self.places)

    def _method(self, item: str) -> Method:
        return self.methods.get(item, self.method)

    # -- reading -----------------------------------------------------------------
    def balance(self, account: str, location: str | None = None) -> int:
        return sum(
            p.line.amount
            for p in self.postings
            if p.line.account == account and (location is None or p.line.location == location)
        )

    def value(self, stream: StreamId) -> Decimal:
        h = self.heads.get(stream)
        return Decimal(0) if h is None else h[0].value

    def qty(self, stream: StreamId) -> int:
        h = self.heads.get(stream)
        return 0 if h is None else h[0].qty

    def provisional(self) -> set[str]:
        return {b.issue for state, _ in self.heads.values() for b in state.backlog}

    def lines_of(
        self, movement: str, keep: Callable[[Posting], bool] = lambda p: True
    ) -> list[Line]:
        return [p.line for p in self.postings if p.movement == movement and keep(p)]
