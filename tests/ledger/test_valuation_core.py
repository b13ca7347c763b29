"""The pure valuation (ledger.valuation): worked examples by hand, to the cent, and the
late-movement rule, on the in-memory `Book` that posts through the same engine as the store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.valuation.core import Event, Line, State
from ledger.valuation.events import Moved, event_time
from ledger.valuation.memory import Book
from ledger.valuation.money import ValuationError, micros, parse_cost, to_minor

D = Decimal
INV, GRNI, COGS, SHRINK, WRITEOFF = "1300", "2150", "5000", "5100", "5200"


def mv(mid: str, kind: str, qty: int, t: int, cost: str | None = None, **kw: object) -> Moved:
    loc = kw.pop("loc", "DOCK")
    where: dict[str, object] = {"to": None, "from_": None}
    where.update({"to": loc} if kind in ("receive", "return") else {"from_": loc})
    where.update(kw)  # type: ignore[arg-type]
    return Moved(
        id=mid, pos=0, kind=kind, item="A", qty=qty, reason=where.pop("reason", None),  # type: ignore[arg-type]
        observed_at=f"2026-05-01T10:{t:02d}:00Z",
        unit_cost=None if cost is None else D(cost), **where,  # type: ignore[arg-type]
    )  # fmt: skip


def lines(book: Book, mid: str) -> list[tuple[str, str | None, int]]:
    return [(ln.account, ln.location, ln.amount) for ln in book.lines_of(mid)]


def sequence() -> list[Moved]:
    return [
        mv("r1", "receive", 10, 1, "4.00"),
        mv("r2", "receive", 10, 2, "5.00"),
        mv("s1", "ship", 15, 3),
        mv("r3", "receive", 5, 4, "5.50"),
        mv("ret", "return", 2, 5, reason="restock"),
        mv("cnt", "adjust", 3, 6, reason="count-variance"),  # a count of 9 found 12
        mv("s2", "ship", 8, 7),
    ]


def test_fifo_worked_example() -> None:
    book = Book(method="fifo")
    book.post(sequence())
    assert lines(book, "r1") == [(INV, "DOCK", 4000), (GRNI, None, -4000)]
    assert lines(book, "r2") == [(INV, "DOCK", 5000), (GRNI, None, -5000)]
    # 10 @ 4.00 + 5 @ 5.00
    assert lines(book, "s1") == [(INV, "DOCK", -6500), (COGS, None, 6500)]
    assert lines(book, "r3") == [(INV, "DOCK", 2750), (GRNI, None, -2750)]
    # back at the cost it left with: 65.00 / 15 = 4.333333 a unit, 8.666666 -> 8.67
    assert lines(book, "ret") == [(INV, "DOCK", 867), (COGS, None, -867)]
    # the oldest layer: 3 @ 5.00
    assert lines(book, "cnt") == [(INV, "DOCK", -1500), (SHRINK, None, 1500)]
    # 2 @ 5.00 + 5 @ 5.50 + 1 @ 4.333333 = 41.833333; the 0.003334 rounded up on the
    # return is carried here: 41.84, so Inventory is the exact value to the cent.
    assert lines(book, "s2") == [(INV, "DOCK", -4184), (COGS, None, 4184)]
    assert book.qty(("A", "DOCK")) == 1
    assert book.value(("A", "DOCK")) == D("4.333333")
    assert book.balance(INV) == 433 == to_minor(book.value(("A", "DOCK")), 2)
    assert book.balance(COGS) == 6500 - 867 + 4184
    assert book.balance(SHRINK) == 1500
    assert book.provisional() == set()


def test_average_worked_example() -> None:
    book = Book(method="average")
    book.post(sequence())
    assert lines(book, "s1") == [(INV, "DOCK", -6750), (COGS, None, 6750)]  # 15 @ 4.50
    assert lines(book, "r3") == [(INV, "DOCK", 2750), (GRNI, None, -2750)]
    assert lines(book, "ret") == [(INV, "DOCK", 900), (COGS, None, -900)]  # 2 @ 4.50
    # 12 units worth 59.00: 3 of them 14.75
    assert lines(book, "cnt") == [(INV, "DOCK", -1475), (SHRINK, None, 1475)]
    # 9 worth 44.25: 8 of them 39.333333 -> 39.33, 4.916667 left -> 4.92
    assert lines(book, "s2") == [(INV, "DOCK", -3933), (COGS, None, 3933)]
    assert book.value(("A", "DOCK")) == D("4.916667")
    assert book.balance(INV) == 492


def test_transfer_moves_layers_with_their_cost() -> None:
    book = Book()
    book.post(
        [
            mv("r1", "receive", 2, 1, "1.00"),
            mv("r2", "receive", 2, 2, "3.00"),
            mv("t", "transfer", 3, 3, to="A-01"),
            mv("s", "ship", 2, 4, loc="A-01"),
        ]
    )
    assert lines(book, "t") == [(INV, "A-01", 500), (INV, "DOCK", -500)]
    assert lines(book, "s") == [(INV, "A-01", -200), (COGS, None, 200)]  # the oldest, 1.00 each
    assert book.balance(INV, "DOCK") == 300 and book.balance(INV, "A-01") == 300


def test_transfer_to_its_own_location_posts_nothing() -> None:
    book = Book()
    book.post([mv("r", "receive", 2, 1, "1.00"), mv("t", "transfer", 2, 2, to="DOCK")])
    assert lines(book, "t") == []
    assert book.value(("A", "DOCK")) == D("2.00")


def test_damaged_return_written_off() -> None:
    book = Book()
    book.post(
        [
            mv("r", "receive", 4, 1, "2.50"),
            mv("s", "ship", 4, 2),
            mv("ret", "return", 1, 3, reason="damaged"),
            mv("w", "adjust", 1, 4, reason="damaged"),
        ]
    )
    assert lines(book, "ret") == [(INV, "DOCK", 250), (COGS, None, -250)]
    assert lines(book, "w") == [(INV, "DOCK", -250), (WRITEOFF, None, 250)]


def test_adjust_in_at_last_cost_credits_shrinkage() -> None:
    book = Book()
    book.post([mv("r", "receive", 1, 1, "7.10"), mv("f", "adjust", 2, 2, to="DOCK", from_=None)])
    assert lines(book, "f") == [(INV, "DOCK", 1420), (SHRINK, None, -1420)]


def test_issue_from_empty_is_provisional_then_corrected_in_order() -> None:
    book = Book()
    empty = Moved("s", 0, "ship", "A", 5, "DOCK", None, None, "2026-05-01T10:01:00Z",
                  standard_cost=D("3.00"))  # fmt: skip
    book.post([empty])
    assert lines(book, "s") == [(INV, "DOCK", -1500), (COGS, None, 1500)]
    assert book.provisional() == {"s"}
    book.post([mv("r", "receive", 10, 2, "4.00")])
    # the receipt covers the 5 first, at 4.00: the ship's cost goes up by 5.00
    assert [(ln.account, ln.amount, ln.corrects) for ln in book.lines_of("r")] == [
        (INV, 4000, None), (GRNI, -4000, None), (COGS, 500, "s"), (INV, -500, "s"),
    ]  # fmt: skip
    assert book.provisional() == set()
    assert book.balance(INV) == 2000 and book.balance(COGS) == 2000


def test_late_receipt_recosts_from_its_point_with_adjusting_entries() -> None:
    book = Book()
    ship = Moved("s", 0, "ship", "A", 5, "DOCK", None, None, "2026-05-01T10:02:00Z",
                 standard_cost=D("3.00"))  # fmt: skip
    book.post([ship, mv("s2", "ship", 1, 3)])
    assert book.provisional() == {"s", "s2"}
    before = list(book.postings)
    book.post([mv("r", "receive", 10, 1, "4.00")])  # observed before the ships
    assert book.postings[: len(before)] == before  # nothing posted is rewritten
    assert lines(book, "r") == [(INV, "DOCK", 4000), (GRNI, None, -4000)]
    recost = [(p.line.account, p.line.amount) for p in book.postings if p.recost]
    assert sorted(recost) == sorted([(COGS, 500), (INV, -500), (COGS, 100), (INV, -100)])
    assert book.provisional() == set()
    assert book.balance(INV) == 1600 and book.balance(COGS) == 2400


def test_late_transfer_cost_reaches_the_destination() -> None:
    book = Book()
    book.post([mv("t", "transfer", 2, 2, to="A-01"), mv("s", "ship", 2, 3, loc="A-01")])
    assert book.balance(COGS) == 0  # nothing known: provisional at zero
    book.post([mv("r", "receive", 2, 1, "6.00")])
    assert book.balance(COGS) == 1200
    assert book.balance(INV) == 0
    assert book.provisional() == set()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("2026-05-01T10:00:00Z", "2026-05-01T10:00:00.000000Z"),
        ("2026-05-01T10:00:00.5Z", "2026-05-01T10:00:00.500000Z"),
        ("2026-05-01T12:00:00.25+02:00", "2026-05-01T10:00:00.250000Z"),
        ("2026-05-01T10:00:00", "2026-05-01T10:00:00.000000Z"),
        ("yesterday", "2026-06-01T00:00:00.000000Z"),  # not a time: when the ledger got it
    ],
)
def test_costing_order_is_utc_event_time(text: str, key: str) -> None:
    assert event_time(text, "2026-06-01T00:00:00Z") == key


def test_parse_cost_refuses_floats_and_negatives() -> None:
    assert parse_cost("4.125", "x") == D("4.125")
    for bad in (4.1, "-1", "1e3", "1.1234567", "", None):
        with pytest.raises(ValuationError, match="x: expected a decimal string"):
            parse_cost(bad, "x")


def test_line_balance_is_asserted() -> None:
    assert Line("1", None, 5).amount == 5


def test_texts_written_with_decimal_strings_read_as_micro_units() -> None:
    """States and events stored before the engine counted in micro-units (decimal
    strings) are read as the same numbers, and written back as integers."""
    old = (
        '{"m":"fifo","l":[[3,"12.500000"],[2,"9.1"]],"b":[["s1",1,"4.333333","5000",null]],'
        '"p":2160,"c":"4.333333","o":null,"n":7}'
    )
    state = State.from_json(old)
    assert state.layers == [[3, 12_500_000], [2, 9_100_000]]
    assert state.backlog[0].cost == 4_333_333 and state.last_cost == 4_333_333
    assert state.value == D("17.266667")  # 12.5 + 9.1 - 4.333333
    assert State.from_json(state.to_json()) == state
    event = Event.from_json(
        ("2026-05-01T10:00:00.000000Z", 4), "t1",
        '{"d":"in","q":2,"a":"1300","al":"A","u":null,"s":"2.5","b":"receipt","t":true,'
        '"pc":[[2,"8.666666"]],"am":867}',
    )  # fmt: skip
    assert event.standard_cost == 2_500_000 and event.pieces == ((2, 8_666_666),)
    assert Event.from_json(event.key, "t1", event.to_json()) == event


def test_micros_refuses_what_it_cannot_hold_exactly() -> None:
    assert micros(D("4.125")) == 4_125_000 and micros("0.000001") == 1
    with pytest.raises(ValuationError, match="more than 6 decimal places"):
        micros(D("1.0000001"))


def test_values_past_64_bits_are_stored_as_decimal_strings() -> None:
    """JSON integers stop at 64 bits; a stream worth more (in micro-units) still stores."""
    huge = 2**70  # micro-units: about 1.2e15 in the currency
    state = State("average", layers=[[10**9, huge]], last_cost=huge // 10**9)
    assert State.from_json(state.to_json()) == state
    assert '"1180591620717411.303424"' in state.to_json()
    event = Event(("2026-05-01T10:00:00.000000Z", 1), "t", "in", 10**9, "1300",
                  transfer=True, pieces=((10**9, huge),))  # fmt: skip
    assert Event.from_json(event.key, "t", event.to_json()) == event
