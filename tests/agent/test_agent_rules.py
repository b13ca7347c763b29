"""Each station kind from scans to movements, and the rules that hold everywhere (DESIGN §3)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from rules_desk import Desk, gtin14, on_hand, open_outbox, sgtin, station

from agent.model import Movement
from agent.rules.engine import Ruling

G1, G2, G3 = gtin14(1), gtin14(2), gtin14(3)
SSCC = "376104250021234569"


def kinds(ms: list[Movement]) -> list[tuple[str, str | None, int, str | None, str | None]]:
    return [(m.kind, m.item.key(), m.qty, m.from_, m.to) for m in ms]


# ---- receiving --------------------------------------------------------------------


def test_receiving_po_qty_and_serials() -> None:
    desk = Desk([station("dock", "receiving", location="DOCK-1")])
    ms = desk.moves("PO:4500", G1, "QTY:12", G2, G2, sgtin(3, "S1"), sgtin(3, "S2"))
    assert kinds(ms) == [
        ("receive", G1, 1, None, "DOCK-1"),
        ("receive", G2, 12, None, "DOCK-1"),
        ("receive", G2, 1, None, "DOCK-1"),  # QTY applies to the next item only
        ("receive", G3, 1, None, "DOCK-1"),
        ("receive", G3, 1, None, "DOCK-1"),
    ]
    assert all(m.ref == {"po": "4500"} for m in ms)
    assert ms[3].item.serial == "S1" and ms[0].evidence["raw"] == G1
    dup = desk.scan(sgtin(3, "S1"))
    assert dup.decision.feedback == "bad" and not dup.decision.movements
    assert "duplicate serial" in (dup.decision.reason or "") and "S1" in (dup.decision.reason or "")
    # A new PO is a new session: the same unit may be received again under it.
    desk.scan("END")
    (again,) = desk.moves(sgtin(3, "S1"))
    assert again.ref == {}


def test_receiving_refuses_qty_before_a_serialised_unit_and_non_items() -> None:
    desk = Desk([station("dock", "receiving")])
    desk.scan("QTY:5")
    r = desk.scan(SSCC)
    assert r.decision.feedback == "bad" and "serialised" in (r.decision.reason or "")
    assert desk.scan("LOC:A-01").decision.feedback == "bad"
    assert "DISP is not used" in (desk.scan("DISP:damaged").decision.reason or "")


def test_receiving_asn_line_costs_ride_on_the_receipts(tmp_path: Path) -> None:
    asn = tmp_path / "asn.json"
    lines = {G1: {"qty": 2, "unit_cost": "4.25", "currency": "EUR"}, G2: 1}
    asn.write_text(json.dumps({"PO-1": lines}))
    desk = Desk([station("dock", "receiving", asn_file=asn)])
    ms = desk.moves("PO:PO-1", G1, G2, "PO:PO-9", G1)
    assert [(m.unit_cost, m.currency) for m in ms] == [("4.25", "EUR"), (None, None), (None, None)]
    assert ms[0].to_dict()["unit_cost"] == "4.25" and "unit_cost" not in ms[1].to_dict()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"qty": 1, "unit_cost": 4.25}, 'unit_cost: expected a decimal string such as "4.25"'),
        ({"qty": 1, "unit_cost": "4", "currency": "eur"}, "currency: expected an ISO 4217"),
        ({"qty": 1, "price": "4"}, "unknown key 'price'"),
    ],
)
def test_asn_line_cost_errors_name_the_line(tmp_path: Path, line: object, message: str) -> None:
    from agent.rules.asn import AsnError, load_asn_lines

    asn = tmp_path / "asn.json"
    asn.write_text(json.dumps({"PO-1": {G1: line}}))
    with pytest.raises(AsnError, match=f"PO 'PO-1', {G1}: .*" + re.escape(message)):
        load_asn_lines(asn)


def test_receiving_asn_over_short(tmp_path: Path) -> None:
    asn = tmp_path / "asn.json"
    asn.write_text(json.dumps({"PO-1": {G1: 3, G2[1:]: 2, G3: 1}}))  # GTIN-13 normalised
    desk = Desk([station("dock", "receiving", asn_file=asn)])
    ms = desk.moves("PO:PO-1", G1, G1, "QTY:2", G1, G2, G3)
    assert [m.ref["asn"] for m in ms] == [
        "expected:3;received:1",
        "expected:3;received:2",
        "expected:3;received:4",
        "expected:2;received:1",
        "expected:1;received:1",
    ]
    end = desk.scan("END")
    d = end.decision
    assert d.feedback == "alarm"
    assert d.reason == f"PO PO-1: over:{G1}+1;short:{G2}-1"
    assert d.log == (
        ("asn_over_short", {"station": "dock", "po": "PO-1", "over_short": {G1: 1, G2: -1}}),
    )
    summary = desk.rules.status()["stations"]["dock"]["asn_summary"]
    assert summary["over_short"] == {G1: 1, G2: -1}
    # The report rides on the station's next movement to the ledger, once.
    nxt, after = desk.moves("PO:PO-2", G1, G1)[0:2]
    assert nxt.ref["asn_closed"] == f"PO-1 over:{G1}+1;short:{G2}-1"
    assert "asn_closed" not in after.ref
    assert "asn" not in nxt.ref  # PO-2 has no ASN


def test_receiving_asn_as_expected_is_not_an_alarm(tmp_path: Path) -> None:
    asn = tmp_path / "asn.json"
    asn.write_text(json.dumps({"PO-1": {G1: 2}}))
    desk = Desk([station("dock", "receiving", asn_file=asn)])
    desk.moves("PO:PO-1", G1, G1)
    d = desk.scan("PO:PO-9").decision  # a new PO closes the open one
    assert d.feedback == "good" and d.reason == "PO PO-1: as expected"


# ---- shipping ---------------------------------------------------------------------


def test_shipping_order_and_sscc_once_per_order() -> None:
    desk = Desk([station("out", "shipping", location="DOCK-9")])
    ms = desk.moves("ORDER:SO-1", SSCC, "QTY:3", G1)
    assert kinds(ms) == [("ship", SSCC, 1, "DOCK-9", None), ("ship", G1, 3, "DOCK-9", None)]
    assert ms[0].ref == {"order": "SO-1"}
    assert desk.scan(SSCC).decision.feedback == "bad"
    (again,) = desk.moves("ORDER:SO-2", SSCC)
    assert again.ref == {"order": "SO-2"}


# ---- returns ----------------------------------------------------------------------


def test_returns_dispositions() -> None:
    desk = Desk([station("rma", "returns", location="RET", quarantine_location="QUAR")])
    ms = desk.moves(G1, "DISP:damaged", "QTY:2", G2, "DISP:quarantine", G3, "END", G1)
    assert [(m.kind, m.item.key(), m.qty, m.from_, m.to, m.reason) for m in ms] == [
        ("return", G1, 1, None, "RET", "restock"),
        ("return", G2, 2, None, "RET", "damaged"),
        ("adjust", G2, 2, "RET", None, "damaged"),
        ("return", G3, 1, None, "QUAR", "quarantine"),
        ("return", G1, 1, None, "RET", "restock"),  # END: back to the default disposition
    ]
    assert ms[2].evidence["write_off_of"] == ms[1].id
    assert on_hand(ms) == {f"RET/{G1}": 2, f"QUAR/{G3}": 1}


# ---- putaway ----------------------------------------------------------------------


def test_putaway_location_then_items() -> None:
    desk = Desk([station("hh", "putaway", staging="STAGE")])
    first = desk.scan(G1)
    assert first.decision.feedback == "bad" and "location" in (first.decision.reason or "")
    assert desk.scan("LOC:STAGE").decision.feedback == "bad"
    ms = desk.moves("LOC:A-01", G1, "QTY:4", G2, sgtin(3, "X"), "LOC:B-02", sgtin(3, "X"))
    assert kinds(ms) == [
        ("transfer", G1, 1, "STAGE", "A-01"),
        ("transfer", G2, 4, "STAGE", "A-01"),
        ("transfer", G3, 1, "STAGE", "A-01"),
        ("transfer", G3, 1, "STAGE", "B-02"),  # a new location is a new session
    ]


# ---- count ------------------------------------------------------------------------


def test_count_session_across_a_restart(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    try:
        desk = Desk([station("cc", "count")], outbox=box)
        assert desk.scan(G1).decision.feedback == "bad"  # no location yet
        assert desk.moves("LOC:A-01", G1, G1, "QTY:5", G2, sgtin(3, "S1")) == []
        desk.restart()  # everything above is only in the outbox's station state
        assert desk.scan(sgtin(3, "S1")).decision.feedback == "bad"  # still this session
        other = desk.scan("LOC:B-02").decision
        assert other.feedback == "bad" and "A-01" in (other.reason or "")
        desk.moves(G1)
        desk.restart()
        ms = desk.moves("END")
        assert kinds(ms) == [
            ("count", G1, 3, None, "A-01"),
            ("count", G2, 5, None, "A-01"),
            ("count", G3, 1, None, "A-01"),
            ("count_close", None, 3, None, "A-01"),  # last: A-01 holds nothing else
        ]
        assert ms[-1].evidence["counted"] == [G1, G2, G3]
        assert len({m.ref["count_session"] for m in ms}) == 1
        assert all(m.item.serial is None for m in ms)
        assert desk.scan("END").decision.feedback == "bad"  # no count open any more
        state = box.station_state().get("cc", {})
        assert not [k for k in state if k.startswith(("cnt:", "seen:"))]
    finally:
        box.close()


def test_count_default_location() -> None:
    desk = Desk([station("cc", "count", location="SHELF-1")])
    ms = desk.moves(G1, G1, "END")
    assert kinds(ms) == [
        ("count", G1, 2, None, "SHELF-1"),
        ("count_close", None, 1, None, "SHELF-1"),
    ]


def test_an_empty_location_counted_closes_with_nothing_counted() -> None:
    """Scan the location, find nothing, END: the ledger takes all it holds there to 0."""
    desk = Desk([station("cc", "count")])
    (close,) = desk.moves("LOC:B-07", "END")
    assert (close.kind, close.qty, close.to, close.item.to_dict()) == ("count_close", 0, "B-07", {})
    assert close.evidence["counted"] == []


# ---- rules everywhere ---------------------------------------------------------------


def test_debounce_uses_the_monotonic_clock_and_the_device() -> None:
    desk = Desk([station("dock", "receiving", devices=("d1", "d2"), debounce_ms=300)])
    assert desk.scan(G1, gap_ms=1000).decision.movements
    double = desk.scan(G1, gap_ms=100)
    assert double.double and double.decision.feedback == "good"
    assert double.decision.reason == "double read" and not double.decision.movements
    assert desk.scan(G1, device="d2", gap_ms=10).decision.movements  # another device
    assert desk.scan(G1, gap_ms=500).decision.movements  # a new trigger pull
    desk.boot = "boot-2"  # mono_ns of another boot is not comparable
    assert desk.scan(G1, gap_ms=1).decision.movements


def test_unknown_codes_rejected_or_accepted_as_sku() -> None:
    desk = Desk(
        [
            station("strict", "receiving", devices=("d1",)),
            station("lax", "receiving", devices=("d2",), unknown="accept-as-sku"),
        ]
    )
    r = desk.scan("WIDGET-7", "d1")
    assert r.decision.feedback == "bad" and r.decision.reason.startswith("unknown code")  # type: ignore[union-attr]
    (m,) = desk.scan("WIDGET-7", "d2").decision.movements
    assert m.item.sku == "WIDGET-7" and m.item.key() == "WIDGET-7"
    # a bad check digit, a bad command, a control character, an AIM id with junk, and GS1
    # whose separator was lost (identify refuses it): misreads, never house SKUs
    for misread in (
        "09506000134353",
        "QTY:x",
        "bad\x07bell",
        "]C1junk",
        "010950600013435210ABC12321XYZ",
    ):
        assert desk.scan(misread, "d2").decision.feedback == "bad", misread


def test_raw_tag_ids_are_house_item_keys_only_where_the_station_says() -> None:
    desk = Desk(
        [
            station("strict", "receiving", devices=("d1",), location="DOCK-1"),
            station("assets", "receiving", devices=("d2",), location="DOCK-2", raw_tag_ids=True),
        ]
    )
    tid = bytes.fromhex("E2801160600002054CC2096F")

    def tag(device: str, data: bytes = tid) -> Ruling:
        read = dataclasses.replace(desk.read(data, device), kind="tag")
        return desk.rules.decide(device, read)

    r = tag("d1")
    assert r.identity.kind == "unknown" and r.identity.raw == tid.hex().upper()
    assert r.decision.feedback == "bad" and "a TID" in (r.decision.reason or "")
    (m,) = tag("d2").decision.movements
    assert (m.kind, m.to, m.item.epc) == (
        "receive",
        "DOCK-2",
        "urn:epc:raw:96.x" + tid.hex().upper(),
    )
    again = tag("d2")  # one asset, one unit: a second read is a duplicate, not a second receive
    assert again.decision.feedback == "bad" and "duplicate" in (again.decision.reason or "")
    # A GS1 header that does not decode is a misread, never a house key.
    corrupt = tag("d2", bytes.fromhex("3674257BF7194E4000001A85"))
    assert corrupt.decision.feedback == "bad" and not corrupt.decision.movements
    # A barcode is never a raw tag id.
    assert desk.scan("E2801160600002054CC2096F", "d2").decision.feedback == "bad"


def test_operator_badge_and_required_operator() -> None:
    desk = Desk([station("dock", "receiving", require_operator=True)])
    r = desk.scan(G1)
    assert r.decision.feedback == "bad" and "badge" in (r.decision.reason or "")
    (m,) = desk.moves("OP:B-117", G1)
    assert m.operator == "B-117"


def test_pairing_survives_restart_and_replug(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    try:
        desk = Desk(
            [
                station("dock", "receiving", devices=("fixed",)),
                station("hh", "putaway", devices=()),
            ],
            outbox=box,
        )
        lonely = desk.scan(G1, device="handheld")
        assert lonely.decision.feedback == "bad" and "PAIR" in (lonely.decision.reason or "")
        nope = desk.scan("PAIR:nowhere", device="handheld").decision
        assert nope.feedback == "bad" and "'nowhere'" in (nope.reason or "")
        assert desk.scan("PAIR:hh", device="fixed").decision.feedback == "bad"  # config wins
        assert desk.scan("PAIR:hh", device="handheld").decision.reason == "paired with hh"
        desk.moves("LOC:A-01", G1, device="handheld")
        desk.restart()  # unplugged, daemon restarted, plugged back: same stable id
        (m,) = desk.moves(G2, device="handheld")
        assert (m.kind, m.to, m.station) == ("transfer", "A-01", "hh")
        assert desk.rules.status()["pairings"] == {"handheld": "hh"}
    finally:
        box.close()


def test_a_station_can_refuse_pairing() -> None:
    desk = Desk([station("dock", "receiving", devices=(), pairing=False)])
    assert "does not take" in (desk.scan("PAIR:dock", device="x").decision.reason or "")


def test_cancel_without_outbox_restores_state() -> None:
    desk = Desk([station("cc", "count")])
    desk.moves("LOC:A-01", G1, G1)
    c = desk.scan("CANCEL").decision
    assert c.feedback == "good" and c.cancel == ()
    assert desk.scan("CANCEL").decision.feedback == "bad"  # one level of undo
    assert kinds(desk.moves("END")) == [
        ("count", G1, 1, None, "A-01"),
        ("count_close", None, 1, None, "A-01"),
    ]


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("receiving", ["PO:1", sgtin(1, "A")]),
        ("shipping", ["ORDER:1", SSCC]),
        ("returns", ["DISP:damaged", sgtin(1, "A")]),
        ("putaway", ["LOC:A-01", sgtin(1, "A")]),
    ],
)
def test_cancel_prepares_reversals_that_net_to_zero(kind: str, codes: list[str]) -> None:
    desk = Desk([station("st", kind)])
    ms = desk.moves(*codes)
    d = desk.scan("CANCEL").decision
    assert [t.movement_id for t in d.cancel] == [m.id for m in ms]
    reversals = [t.reversal for t in d.cancel]
    assert all(r is not None and r.reason == "cancel" for r in reversals)
    assert on_hand(ms + reversals) == {}  # type: ignore[operator]
    assert all(r.ref["reverses"] == m.id for r, m in zip(reversals, ms, strict=True))  # type: ignore[union-attr]
    # The serial is no longer seen: it can be scanned again.
    assert desk.moves(codes[-1])


# ---- station config ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("station_toml", "key", "expected"),
    [
        ('kind = "putaway"', "stations[0].staging", "required for a putaway station"),
        ('kind = "shipping"', "stations[0].location", "required for a shipping station"),
        ('kind = "count"\nasn_file = "asn.json"', "stations[0].asn_file", "only for a receiving"),
        (
            'kind = "receiving"\nlocation = "D"\nasn_file = "asn.json"',
            "stations[0].asn_file",
            "'PO-1': '123' is not a GTIN",
        ),
    ],
)
def test_station_config_errors(tmp_path: Path, station_toml: str, key: str, expected: str) -> None:
    from agent.config import load_config
    from agent.errors import ConfigError

    (tmp_path / "asn.json").write_text(json.dumps({"PO-1": {"123": 1}}))
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[agent]\nid = "a"\n[sync]\nurl = "http://127.0.0.1:1"\ntoken_file = "t"\n'
        f'[[stations]]\nname = "s"\n{station_toml}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.key == key and expected in info.value.expected
