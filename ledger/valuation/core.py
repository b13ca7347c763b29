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
from typing import Any, Literal

import orjson

from ledger.valuation.money import to_minor, unit

Method = Literal["fifo", "average"]
METHODS: tuple[str, ...] = ("fifo", "average")
Key = tuple[str, int]  # (observed_at as UTC text, journal position): the costing order
Piece = tuple[int, Decimal]  # (qty, exact value): a layer, or what an issue took from one
Basis = Literal["receipt", "restock", "found"]


@dataclass(slots=True)
class Backlog:
    """Part of an issue made from empty stock: provisional until an inbound covers it."""

    issue: str  # the movement id
    qty: int
    cost: Decimal  # the provisional unit cost
    account: str  # where the issue's cost went, so the correction goes there too
    location: str | None


@dataclass(slots=True)
class State:
    method: Method
    layers: list[list[Any]] = field(default_factory=list)  # [qty, value]; average: at most one
    backlog: list[Backlog] = field(default_factory=list)
    posted: int = 0  # minor units posted to Inventory for this stream
    n: int = 0  # events applied: the store keeps the state after every SNAPSHOT-th one
    last_cost: Decimal | None = None  # of the last inbound or issue
    last_out_cost: Decimal | None = None  # the unit cost the last issue left with

    @property
    def qty(self) -> int:
        return int(sum(q for q, _ in self.layers)) - sum(b.qty for b in self.backlog)

    @property
    def value(self) -> Decimal:
        held = sum((v for _, v in self.layers), Decimal(0))
        return held - sum((b.qty * b.cost for b in self.backlog), Decimal(0))

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "m": self.method,
                "l": [[q, str(v)] for q, v in self.layers],
                "b": [[b.issue, b.qty, str(b.cost), b.account, b.location] for b in self.backlog],
                "p": self.posted,
                "c": None if self.last_cost is None else str(self.last_cost),
                "o": None if self.last_out_cost is None else str(self.last_out_cost),
                "n": self.n,
            },
        ).decode()

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
            layers=[[int(q), Decimal(v)] for q, v in d["l"]],
            backlog=[Backlog(i, int(q), Decimal(c), a, loc) for i, q, c, a, loc in d["b"]],
            posted=int(d["p"]),
            last_cost=None if d["c"] is None else Decimal(d["c"]),
            last_out_cost=None if d["o"] is None else Decimal(d["o"]),
            n=int(d["n"]),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One movement's effect on one stream (a transfer is two events, out then in).

    ``counter``/``counter_location``: the account (and its location, for
    Inventory) of the other leg. For a transfer-out, ``counter`` is the
    account a later correction of its provisional part goes to (the stock has
    moved on at the provisional cost).
    """

    key: Key
    movement: str
    direction: Literal["in", "out"]
    qty: int
    counter: str
    counter_location: str | None = None
    unit_cost: Decimal | None = None  # given on the movement (receipts, returns)
    standard_cost: Decimal | None = None  # the item list's, when the movement was recorded
    basis: Basis = "receipt"
    transfer: bool = False
    pieces: tuple[Piece, ...] = ()  # transfer-in: what the out side took, with its cost
    amount: int = 0  # transfer-in: the minor units the out side released

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "d": self.direction, "q": self.qty, "a": self.counter, "al": self.counter_location,
                "u": None if self.unit_cost is None else str(self.unit_cost),
                "s": None if self.standard_cost is None else str(self.standard_cost),
                "b": self.basis, "t": self.transfer,
                "pc": [[q, str(v)] for q, v in self.pieces], "am": self.amount,
            },
        ).decode()  # fmt: skip

    @classmethod
    def from_json(cls, key: Key, movement: str, text: str) -> Event:
        d = orjson.loads(text)
        return cls(
            key=key, movement=movement, direction=d["d"], qty=int(d["q"]), counter=d["a"],
            counter_location=d["al"],
            unit_cost=None if d["u"] is None else Decimal(d["u"]),
            standard_cost=None if d["s"] is None else Decimal(d["s"]),
            basis=d["b"], transfer=bool(d["t"]),
            pieces=tuple((int(q), Decimal(v)) for q, v in d["pc"]), amount=int(d["am"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a journal entry: ``amount`` > 0 is a debit, < 0 a credit (minor units)."""

    account: str
    location: str | None
    amount: int
    corrects: str | None = None  # the provisional issue this line corrects


@dataclass(frozen=True, slots=True)
class Outcome:
    lines: tuple[Line, ...]
    pieces: tuple[Piece, ...] = ()  # an issue: what it took (a transfer-out hands these on)
    amount: int = 0  # a transfer-out: the minor units it released
    value: Decimal = Decimal(0)  # the exact value that moved in or out


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
    pieces = list(ev.pieces) if ev.pieces else [(ev.qty, ev.qty * _in_cost(state, ev))]
    corrections: dict[tuple[str, str, str | None], Decimal] = {}
    layers: list[Piece] = []
    for qty, value in pieces:
        left_q, left_v = qty, value
        while left_q and state.backlog:
            b = state.backlog[0]
            take = min(b.qty, left_q)
            true = left_v if take == left_q else unit(left_v * take / left_q)
            key = (b.issue, b.account, b.location)
            corrections[key] = corrections.get(key, Decimal(0)) + true - take * b.cost
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
    total_v = sum((v for _, v in pieces), Decimal(0))
    state.last_cost = unit(total_v / ev.qty)
    lines: list[Line] = []
    corrected = 0
    for (issue, account, loc), exact in corrections.items():
        c = to_minor(exact, ctx.places)
        if c:
            lines += [
                Line(account, loc, c, issue),
                Line(ctx.inventory, ctx.location, -c, issue),
            ]
            corrected += c
    main = ev.amount if ev.pieces else to_minor(state.value, ctx.places) - state.posted + corrected
    if main:
        lines = [
            Line(ctx.inventory, ctx.location, main),
            Line(ev.counter, ev.counter_location, -main),
            *lines,
        ]
    state.posted += main - corrected
    return Outcome(tuple(lines), value=total_v)


def _in_cost(state: State, ev: Event) -> Decimal:
    """An inbound's unit cost: the movement's, else by its basis (see the README)."""
    if ev.unit_cost is not None:
        return ev.unit_cost
    order: tuple[Decimal | None, ...]
    if ev.basis == "restock":
        order = (state.last_out_cost, state.last_cost, ev.standard_cost)
    elif ev.basis == "found":
        order = (state.last_cost, ev.standard_cost)
    else:
        order = (ev.standard_cost, state.last_cost)
    return next((c for c in order if c is not None), Decimal(0))


def _issue(state: State, ev: Event, ctx: Ctx) -> Outcome:
    taken: list[Piece] = []
    need = ev.qty
    while need and state.layers:
        layer = state.layers[0]
        q, v = layer
        take = min(q, need)
        value = v if take == q else unit(v * take / q)
        taken.append((take, value))
        need -= take
        if take == q:
            state.layers.pop(0)
        else:
            layer[0], layer[1] = q - take, v - value
    if need:
        cost = next((c for c in (state.last_cost, ev.standard_cost) if c is not None), Decimal(0))
        state.backlog.append(Backlog(ev.movement, need, cost, ev.counter, ev.counter_location))
        taken.append((need, need * cost))
    total_v = sum((v for _, v in taken), Decimal(0))
    state.last_out_cost = state.last_cost = unit(total_v / ev.qty)
    delta = to_minor(state.value, ctx.places) - state.posted  # <= 0: what leaves Inventory
    state.posted += delta
    if ev.transfer:
        return Outcome((), tuple(taken), -delta, total_v)
    lines = (
        (Line(ctx.inventory, ctx.location, delta), Line(ev.counter, ev.counter_location, -delta))
        if delta
        else ()
    )
    return Outcome(lines, tuple(taken), -delta, total_v)
