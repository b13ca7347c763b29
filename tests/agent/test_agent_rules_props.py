"""Properties of the rules over arbitrary reads: never raise, never a movement the ledger
would refuse (qty <= 0, no id, a kind without its locations)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_desk import Desk, gtin14, sgtin, station

from agent.model import Movement

CODES = st.one_of(
    st.sampled_from(["END", "CANCEL", "DISP:damaged", "DISP:quarantine", "DISP:restock"]),
    st.builds(lambda n: gtin14(n), st.integers(0, 5)),
    st.builds(lambda n, s: sgtin(n, s), st.integers(0, 3), st.sampled_from(["A", "B", "C"])),
    st.just("376104250021234569"),
    st.builds(lambda n: f"QTY:{n}", st.integers(-2, 2_000_000)),
    st.builds(
        lambda c, a: f"{c}:{a}",
        st.sampled_from(["PO", "ORDER", "OP", "PAIR", "LOC", "DISP"]),
        st.sampled_from(["", "1", "rcv", "cc", "hh", "A-01", "STAGING", "x" * 200, "a b"]),
    ),
    st.text(max_size=30),
    st.binary(max_size=40),
)
READS = st.lists(
    st.tuples(
        st.sampled_from(["d1", "d2", "d3", "d4", "d5", "loose"]), CODES, st.integers(0, 2000)
    ),
    max_size=60,
)


def desk() -> Desk:
    return Desk(
        [
            station("rcv", "receiving", devices=("d1",), debounce_ms=200),
            station("shp", "shipping", devices=("d2",), unknown="accept-as-sku"),
            station("ret", "returns", devices=("d3",), require_operator=True),
            station("hh", "putaway", devices=("d4",)),
            station("cc", "count", devices=("d5",)),
        ]
    )


def valid(m: Movement) -> None:
    assert m.qty > 0 and m.id
    Movement.from_dict({**m.to_dict(), "seq": 1})  # what the ledger checks, by the same code


@settings(max_examples=300, deadline=None)
@given(READS)
def test_rules_never_raise_and_never_make_a_bad_movement(
    reads: list[tuple[str, object, int]],
) -> None:
    d = desk()
    for device, code, gap in reads:
        ruling = d.scan(code, device, gap)  # type: ignore[arg-type]
        decision = ruling.decision
        for m in decision.movements:
            valid(m)
        for target in decision.cancel:
            if target.reversal is not None:
                valid(target.reversal)
        if decision.feedback == "bad":
            assert decision.reason and not decision.movements
