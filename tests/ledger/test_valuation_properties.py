"""Property tests of the valuation: any sequence of movements, delivered in any order and
any batches, balances, ends non-negative once the receipts are in, and ends the same."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.valuation.core import Method
from ledger.valuation.events import Moved
from ledger.valuation.memory import Book
from ledger.valuation.money import div_even

T0 = datetime(2026, 5, 1, tzinfo=UTC)
LOCS = ("DOCK", "A-01")
ITEMS = ("A", "B")

op = st.tuples(
    st.sampled_from(
        ["receive", "ship", "transfer", "return", "adjust-in", "adjust-out", "damaged"]
    ),
    st.sampled_from(ITEMS),
    st.sampled_from(LOCS),
    st.integers(1, 20),
    st.one_of(st.none(), st.decimals("0", "99.999999", places=6).map(str)),
)


def moved(i: int, o: tuple[str, str, str, int, str | None], minute: int) -> Moved:
    kind, item, loc, qty, cost = o
    other = LOCS[1] if loc == LOCS[0] else LOCS[0]
    to = from_ = reason = None
    if kind in ("receive", "return", "adjust-in"):
        to = loc
    elif kind == "transfer":
        from_, to = loc, other
    else:
        from_ = loc
    if kind == "damaged":
        reason = "damaged"
    if kind == "return":
        reason = "restock"
    return Moved(
        id=f"m{i}", pos=0, kind=kind.split("-")[0].replace("damaged", "adjust"), item=item,
        qty=qty, from_=from_, to=to, reason=reason,
        observed_at=(T0 + timedelta(minutes=minute)).isoformat(),
        unit_cost=None if cost is None or kind != "receive" else Decimal(cost),
        standard_cost=Decimal("2.50") if item == "A" else None,
    )  # fmt: skip


def deliver(method: Method, places: int, batches: list[list[Moved]]) -> Book:
    book = Book(method=method, places=places)
    for batch in batches:
        book.post(batch)
        # debits = credits, always, for every movement's lines so far
        per_movement = Counter[str]()
        for p in book.postings:
            per_movement[p.movement] += p.line.amount
        assert set(per_movement.values()) <= {0}
    return book


def snapshot(book: Book) -> tuple[object, ...]:
    balances = Counter[tuple[str, str | None]]()
    for p in book.postings:
        balances[(p.line.account, p.line.location)] += p.line.amount
    heads = {s: (st_.qty, st_.value, st_.posted) for s, (st_, _) in book.heads.items()}
    return ({k: v for k, v in balances.items() if v}, heads, book.provisional())


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(op, min_size=1, max_size=25),
    data=st.data(),
    method=st.sampled_from(["fifo", "average"]),
    places=st.sampled_from([0, 2, 3]),
)
def test_any_delivery_order_ends_in_the_same_valuation(
    ops: list[tuple[str, str, str, int, str | None]],
    data: st.DataObject,
    method: Method,
    places: int,
) -> None:
    minutes = data.draw(st.permutations(range(len(ops))), label="event times")
    movements = [moved(i, o, minutes[i]) for i, o in enumerate(ops)]
    in_time = sorted(movements, key=lambda m: m.observed_at)
    reference = deliver(method, places, [in_time])
    order = data.draw(st.permutations(movements), label="delivery order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1))), label="batch cuts"))
    bounds = [0, *cuts, len(order)]
    batches = [order[a:b] for a, b in itertools.pairwise(bounds) if order[a:b]]
    other = deliver(method, places, batches)
    assert snapshot(other) == snapshot(reference)
    for state, _ in other.heads.values():
        if state.qty >= 0:
            assert not state.backlog and state.value >= 0
    # Inventory holds exactly what the streams say they posted
    assert other.balance("1300") == sum(s.posted for s, _ in other.heads.values())


@settings(max_examples=100, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=30), method=st.sampled_from(["fifo", "average"]))
def test_value_is_not_negative_once_all_receipts_are_in(
    ops: list[tuple[str, str, str, int, str | None]], method: Method
) -> None:
    """Receipts first (enough for every issue), then the rest: nothing is ever provisional."""
    rest = [moved(i + 1, o, i + 10) for i, o in enumerate(ops)]
    need = sum(m.qty for m in rest)
    receipts = [
        Moved(f"r-{item}-{loc}", 0, "receive", item, need, None, loc, None,
              T0.isoformat(), unit_cost=Decimal("1.234567"))
        for item in ITEMS for loc in LOCS
    ]  # fmt: skip
    book = deliver(method, 2, [receipts, rest])
    for state, _ in book.heads.values():
        assert state.qty >= 0 and state.value >= 0 and not state.backlog
    assert book.provisional() == set()


@given(st.integers(-(10**20), 10**20), st.integers(1, 10**9))
@example(5, 2)  # ties: to the even neighbour, either sign
@example(7, 2)
@example(-5, 2)
@example(-7, 2)
@example(15_000_000, 10_000)
def test_integer_rounding_is_decimal_half_even(n: int, d: int) -> None:
    """The engine's integer division rounds exactly as `Decimal` quantize half to even."""
    exact = (Decimal(n) / Decimal(d)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert div_even(n, d) == int(exact)
