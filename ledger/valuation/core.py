"""The valuation of one stream (an item at a location), with no SQL: cost layers, the
moving average, what each movement posts, and the provisional cost of issues from empty.

A stream is valued by replaying its events in costing order (the movement's
``observed_at``, then the ledger's journal position). `apply` takes one event
and returns the journal lines it posts; the store keeps the stream's state
after every event, so a late event is valued by replaying from the state just
before it (see ``ledger.valuation.post``), and the common in-order case is one
`apply` on the current state.

How an amount is found (and the rounding residue carried): the state holds the
stream's exact value (6 places) and ``posted``, the integer minor units posted
to Inventory for it so far. An event posts the change of the *rounded* exact
value, ``round(value_after) - posted``, so the Inventory balance of a stream is
always its exact value to the cent, whatever the rounding of earlier lines.

Numbers: values and unit costs are integers of micro-units (``money.MICRO``: 6
places, as a `Decimal` quantized to 6 places would be, rounded half to even in the
same places), so the arithmetic of a movement needs no decimal context. The stored
texts (`State.to_json`, `Event.to_json`) keep them as integers; texts written
before, with decimal strings, read the same.

Issues from empty: the part of an issue the layers cannot cover is costed at
the stream's last known unit cost, else the item's standard cost, else zero,
and kept as a *backlog* part (negative stock, flagged provisional). The next
inbound event covers the backlog first, at its own cost, and posts the
difference to the account the issue hit (COGS, shrinkage...) as a separate
correcting line: the provisional cost is corrected, never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, NamedTuple

import orjson

from ledger.valuation.money import div_even, from_micros, micros, minor_of

Method = Literal["fifo", "average"]
METHODS: tuple[str, ...] = ("fifo", "average")
Key = tuple[str, int]  # (observed_at as UTC text, journal position): the costing order
Piece = tuple[int, int]  # (qty, exact value in micro-units): a layer, or what an issue took
Basis = Literal["receipt", "restock", "found"]


def _m(v: Any) -> int:
    """A stored number: micro-units (an int), or a decimal string as texts were written
    before the engine counted in micro-units."""
    return v if isinstance(v, int) else micros(str(v))


def _m_or_none(v: Any) -> int | None:
    return None if v is None else _m(v)


_JSON_INT = 2**63  # orjson writes integers of 64 bits at most


def _wide(v: int | None) -> int | str | None:
    """A value for JSON: past 64 bits (a stream worth 9.2e12 in its currency: rare, but
    a batch that can never be written would stop an agent for good) as a decimal string,
    which `_m` reads back."""
    if v is None or -_JSON_INT <= v < _JSON_INT:
        return v
    return str(from_micros(v))


@dataclass(slots=True)
class Backlog:
    """Part of an issue made from empty stock: provisional until an inbound covers it."""

    issue: str  # the movement id
    qty: int
    cost: int  # the provisional unit cost, micro-units
    account: str  # where the issue's cost went, so the correction goes there too
    location: str | None


@dataclass(slots=True)
class State:
    method: Method
    layers: list[list[int]] = field(default_factory=list)  # [qty, value]; average: at most one
    backlog: list[Backlog] = field(default_factory=list)
    posted: int = 0  # minor units posted to Inventory for this stream
    n: int = 0  # events applied: the store keeps the state after every SNAPSHOT-th one
    last_cost: int | None = None  # of the last inbound or issue
    last_out_cost: int | None = None  # the unit cost the last issue left with

    @property
    def qty(self) -> int:
        held = 0
        for layer in self.layers:
            held += layer[0]
        for b in self.backlog:
            held -= b.qty
        return held

    @property
    def micros(self) -> int:
        """The exact value, in micro-units."""
        value = 0
        for layer in self.layers:
            value += layer[1]
        for b in self.backlog:
            value -= b.qty * b.cost
        return value

    @property
    def value(self) -> Decimal:
        return from_micros(self.micros)

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "m": self.method,
            "l": self.layers,
            "b": [[b.issue, b.qty, b.cost, b.account, b.location] for b in self.backlog],
            "p": self.posted,
            "c": self.last_cost,
            "o": self.last_out_cost,
            "n": self.n,
        }
        try:
            return orjson.dumps(d).decode()
        except orjson.JSONEncodeError:  # a value past 64 bits: those as decimal strings
            d["l"] = [[q, _wide(v)] for q, v in self.layers]
            d["b"] = [[b.issue, b.qty, _wide(b.cost), b.account, b.location] for b in self.backlog]
            d["c"], d["o"] = _wide(self.last_cost), _wide(self.last_out_cost)
            return orjson.dumps(d).decode()

    def copy(self) -> State:
        return State(
            method=self.method,
            layers=[[q, v] for q, v in self.layers],
            backlog=[Backlog(b.issue, b.qty, b.cost, b.account, b.location) for b in self.backlog],
            posted=self.posted,
            n=self.n,
            last_cost=self.last_cost,
            last_out_cost=self.last_out_cost,
        )

    @classmethod
    def from_json(cls, text: str) -> State:
        d = orjson.loads(text)
        return cls(
            method=d["m"],
            layers=[[int(q), _m(v)] for q, v in d["l"]],
            backlog=[Backlog(i, int(q), _m(c), a, loc) for i, q, c, a, loc in d["b"]],
            posted=int(d["p"]),
            last_cost=_m_or_none(d["c"]),
            last_out_cost=_m_or_none(d["o"]),
            n=int(d["n"]),
        )


class Event(NamedTuple):
    """One movement's effect on one stream (a transfer is two events, out then in).

    ``counter``/``counter_location``: the account (and its location, for
    Inventory) of the other leg. For a transfer-out, ``counter`` is the
    account a later correction of its provisional part goes to (the stock has
    moved on at the provisional cost). A named tuple, not a dataclass: one is
    made for every event valued, and a frozen dataclass costs a call per field.
    """

    key: Key
    movement: str
    direction: Literal["in", "out"]
    qty: int
    counter: str
    counter_location: str | None = None
    unit_cost: int | None = None  # given on the movement (receipts, returns), micro-units
    standard_cost: int | None = None  # the item list's, when the movement was recorded
    basis: Basis = "receipt"
    transfer: bool = False
    pieces: tuple[Piece, ...] = ()  # transfer-in: what the out side took, with its cost
    amount: int = 0  # transfer-in: the minor units the out side released

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "d": self.direction, "q": self.qty, "a": self.counter, "al": self.counter_location,
            "u": self.unit_cost, "s": self.standard_cost, "b": self.basis, "t": self.transfer,
            "pc": self.pieces, "am": self.amount,
        }  # fmt: skip
        try:
            return orjson.dumps(d).decode()
        except orjson.JSONEncodeError:  # a value past 64 bits: as `State.to_json`
            d["pc"] = [[q, _wide(v)] for q, v in self.pieces]
            return orjson.dumps(d).decode()

    @classmethod
    def from_json(cls, key: Key, movement: str, text: str) -> Event:
        d = orjson.loads(text)
        return cls(
            key=key, movement=movement, direction=d["d"], qty=int(d["q"]), counter=d["a"],
            counter_location=d["al"], unit_cost=_m_or_none(d["u"]),
            standard_cost=_m_or_none(d["s"]), basis=d["b"], transfer=bool(d["t"]),
            pieces=tuple((int(q), _m(v)) for q, v in d["pc"]), amount=int(d["am"]),
        )  # fmt: skip


class Line(NamedTuple):
    """One line of a journal entry: ``amount`` > 0 is a debit, < 0 a credit (minor units)."""

    account: str
    location: str | None
    amount: int
    corrects: str | None = None  # the provisional issue this line corrects


class Outcome(NamedTuple):
    lines: tuple[Line, ...]
    pieces: tuple[Piece, ...] = ()  # an issue: what it took (a transfer-out hands these on)
    amount: int = 0  # a transfer-out: the minor units it released
    value: int = 0  # the exact value that moved in or out, micro-units


@dataclass(frozen=True, slots=True)
class Ctx:
    """What an event needs besides the state: the stream's place and the books' shape."""

    location: str
    inventory: str  # the Inventory account code
    places: int  # the currency's minor units


def apply(state: State, ev: Event, ctx: Ctx) -> Outcome:
    """Value ``ev`` on ``state`` (changed in place); the lines it posts always balance."""
    out = _inbound(state, ev, ctx) if ev.direction == "in" else _issue(state, ev, ctx)
    state.n += 1
    assert sum(line.amount for line in out.lines) == 0, (ev, out)
    return out


def _inbound(state: State, ev: Event, ctx: Ctx) -> Outcome:
    pieces = ev.pieces or ((ev.qty, ev.qty * _in_cost(state, ev)),)
    corrections: dict[tuple[str, str, str | None], int] = {}
    layers: list[Piece] = []
    for qty, value in pieces:
        left_q, left_v = qty, value
        while left_q and state.backlog:
            b = state.backlog[0]
            take = min(b.qty, left_q)
            true = left_v if take == left_q else div_even(left_v * take, left_q)
            key = (b.issue, b.account, b.location)
            corrections[key] = corrections.get(key, 0) + true - take * b.cost
            left_q, left_v = left_q - take, left_v - true
            b.qty -= take
            if not b.qty:
                state.backlog.pop(0)
        if left_q:
            layers.append((left_q, left_v))
    for qty, value in layers:
        last = state.layers[-1] if state.layers else None
        # The average keeps one layer; FIFO merges a layer at the same unit cost as the
        # newest (so a stream that only receives at one price stays one layer).
        if last is not None and (state.method == "average" or last[1] * qty == value * last[0]):
            last[0] += qty
            last[1] += value
        else:
            state.layers.append([qty, value])
    total_v = 0
    for _, value in pieces:
        total_v += value
    state.last_cost = div_even(total_v, ev.qty)
    lines: list[Line] = []
    corrected = 0
    for (issue, account, loc), exact in corrections.items():
        c = minor_of(exact, ctx.places)
        if c:
            lines += [
                Line(account, loc, c, issue),
                Line(ctx.inventory, ctx.location, -c, issue),
            ]
            corrected += c
    # a transfer-in takes what the out side released; else the change of the rounded value
    main = ev.amount if ev.pieces else minor_of(state.micros, ctx.places) - state.posted + corrected
    if main:
        lines = [
            Line(ctx.inventory, ctx.location, main),
            Line(ev.counter, ev.counter_location, -main),
            *lines,
        ]
    state.posted += main - corrected
    return Outcome(tuple(lines), (), 0, total_v)


def _in_cost(state: State, ev: Event) -> int:
    """An inbound's unit cost: the movement's, else by its basis (see the README)."""
    if ev.unit_cost is not None:
        return ev.unit_cost
    order: tuple[int | None, ...]
    if ev.basis == "restock":
        order = (state.last_out_cost, state.last_cost, ev.standard_cost)
    elif ev.basis == "found":
        order = (state.last_cost, ev.standard_cost)
    else:
        order = (ev.standard_cost, state.last_cost)
    for c in order:
        if c is not None:
            return c
    return 0


def _issue(state: State, ev: Event, ctx: Ctx) -> Outcome:
    taken: list[Piece] = []
    need = ev.qty
    total_v = 0
    layers = state.layers
    while need and layers:
        layer = layers[0]
        q, v = layer
        take = min(q, need)
        value = v if take == q else div_even(v * take, q)
        taken.append((take, value))
        total_v += value
        need -= take
        if take == q:
            layers.pop(0)
        else:
            layer[0], layer[1] = q - take, v - value
    if need:
        cost = state.last_cost
        if cost is None:
            cost = ev.standard_cost if ev.standard_cost is not None else 0
        state.backlog.append(Backlog(ev.movement, need, cost, ev.counter, ev.counter_location))
        taken.append((need, need * cost))
        total_v += need * cost
    state.last_out_cost = state.last_cost = div_even(total_v, ev.qty)
    delta = minor_of(state.micros, ctx.places) - state.posted  # <= 0: what leaves Inventory
    state.posted += delta
    if ev.transfer:
        return Outcome((), tuple(taken), -delta, total_v)
    lines = (
        (Line(ctx.inventory, ctx.location, delta), Line(ev.counter, ev.counter_location, -delta))
        if delta
        else ()
    )
    return Outcome(lines, tuple(taken), -delta, total_v)
