"""Properties of the rules over arbitrary reads: never raise, never a movement the ledger
would refuse (qty below the kind's least, no id, a kind without its locations)."""

from __future__ import annotations

import dataclasses
import json
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rules_desk import Desk, gtin14, sgtin, station

from agent.model import Movement, Read
from agent.rules import Ruling

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
    # a count may find none, and a count_close of an empty location counts nothing
    assert m.qty >= (0 if m.kind in ("count", "count_close") else 1) and m.id
    Movement.from_dict({**m.to_dict(), "seq": 1})  # what the ledger checks, by the same code


@settings(max_examples=300, deadline=None)
@given(READS)
@example([("d5", "LOC:0", 0), ("d5", "END", 0)])  # closes an empty location: qty 0
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


TAG_READS = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2"]),  # p1: a portal's reader; p2 starts in no station
        st.one_of(
            st.builds(lambda s: ("tag", sgtin96_of(s)), st.integers(0, 5)),
            st.just(("tag", bytes.fromhex("e2801105200074cf085c0943"))),  # a TID: foreign
            st.just(("tag", b"")),
            st.sampled_from([("barcode", b"PAIR:door"), ("barcode", b"PAIR:rcv")]),
            st.builds(lambda n: ("barcode", gtin14(n).encode()), st.integers(0, 3)),
        ),
        st.integers(1, 4),  # antenna
        st.booleans(),  # a new report (decide_all's run ends) before this read
    ),
    max_size=80,
)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sgtin96_of(serial: int) -> bytes:
    from drivers.llrp_emulator import sgtin96

    return sgtin96("00614141123452", 1000 + serial, 7)


@settings(max_examples=200, deadline=None)
@given(TAG_READS)
def test_deciding_a_devices_reads_together_is_deciding_them_one_by_one(
    reads: list[tuple[str, tuple[str, bytes], int, bool]],
) -> None:
    """``Rules.decide_all`` (the daemon's path for a report's tags) rules each read as
    ``decide`` would, whatever the mix: tags, foreign tags, barcodes, a PAIR that moves
    the device to another station in the middle of a run."""
    _same_either_way(reads)


def _same_either_way(reads: list[tuple[str, tuple[str, bytes], int, bool]]) -> None:

    def desk() -> Desk:
        return Desk(
            [
                station(
                    "door",
                    "portal",
                    devices=("p1",),
                    location="DOCK-7",
                    outside_antennas=[1, 2],
                    inside_antennas=[3],
                ),
                station("rcv", "receiving", devices=("d1",)),
            ]
        )

    one, together = desk(), desk()
    made: list[tuple[str, Read]] = []
    for device, (kind, data), antenna, _ in reads:
        read = dataclasses.replace(one.read(data, device, 100), kind=kind, antenna=antenna)  # type: ignore[arg-type]
        made.append((device, read))
    singly = [one.rules.decide(device, read) for device, read in made]
    runs: list[list[tuple[str, Read]]] = []
    for (device, read), (_, _, _, cut) in zip(made, reads, strict=True):
        if not runs or cut or runs[-1][-1][0] != device:
            runs.append([])
        runs[-1].append((device, read))
    batched = [r for run in runs for r in together.rules.decide_all(run[0][0], [x for _, x in run])]

    def shape(r: Ruling) -> tuple[object, ...]:
        d = r.decision
        moves = [(m.kind, m.item, m.qty, m.from_, m.to) for m in d.movements]
        changes = UUID.sub("<id>", json.dumps(r.changes, sort_keys=True))  # fresh ids
        return (r.station, r.identity, d.feedback, d.reason, moves, r.double, changes)

    assert [shape(r) for r in batched] == [shape(r) for r in singly]


def test_a_pair_in_the_middle_of_a_run_moves_the_rest_of_the_run() -> None:
    reads = [
        ("p2", ("barcode", b"PAIR:door"), 1, True),
        ("p2", ("tag", sgtin96_of(1)), 1, True),
        ("p2", ("barcode", b"PAIR:rcv"), 1, False),
        ("p2", ("tag", sgtin96_of(2)), 1, False),
    ]
    _same_either_way(reads)
