"""GS1 codes as scanners deliver them -> Identity, as one table.

Real-world codes: the GTIN/EAN/UPC examples of the GS1 General Specifications
and of the symbologies' references, the GS1 example GTIN 09506000134352 and
SSCC 376104250021234569, ISBNs, with valid and wrong check digits, GS1-128
with and without GS, every date rule, measures, GLN locations, HRI and Digital
Link, and the AIM symbology ids that decide what data may be.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from identify_kit import GLN, GS, GTIN, SSCC, read

from agent.identify import identify
from agent.model import Identity


def gtin(value: str = GTIN, hri: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"kind": "gtin", "gtin": value, "element_string": hri or f"(01){value}", **fields}


def unknown(error: str) -> dict[str, Any]:
    return {"kind": "unknown", "error": error}


def dates(*pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return pairs


# (data, AIM symbology id or None, the fields that must be set; every other field
# must be its default and ``raw`` must be the data as received)
TABLE: list[tuple[str, str | None, dict[str, Any]]] = [
    # --- bare GTINs: EAN-8, UPC-A, EAN-13, ISBN, GTIN-14, each normalised to GTIN-14
    ("96385074", None, gtin("00000096385074")),
    ("96385075", None, unknown("Invalid GTIN check digit for '96385075'")),
    ("036000291452", None, gtin("00036000291452")),
    ("036000291453", None, unknown("Invalid GTIN check digit")),
    ("5901234123457", None, gtin("05901234123457")),
    ("5901234123458", None, unknown("Expected 7, got 8")),
    ("4006381333931", None, gtin("04006381333931")),
    ("9780306406157", None, gtin("09780306406157")),  # ISBN-13: still a GTIN
    ("9790260000438", None, gtin("09790260000438")),  # ISMN (979-0)
    (GTIN, None, gtin()),
    ("09506000134353", None, unknown("Invalid GTIN check digit")),
    ("10012345678902", None, gtin("10012345678902")),
    ("1234567", None, unknown("not a GS1 code or a command")),
    # --- the symbology decides
    ("5901234123457", "]E0", gtin("05901234123457")),
    ("04252614", "]E0", gtin("00042100005264")),  # UPC-E, expanded to UPC-A
    ("96385074", "]E4", gtin("00000096385074")),  # EAN-8
    ("10012345678902", "]I1", gtin("10012345678902")),  # ITF-14
    ("978030640615712", "]E3", gtin("09780306406157", warnings=("EAN add-on '12' not kept",))),
    ("5901234123458", "]E0", unknown("Expected 7, got 8")),
    ("0109506000134352", "]E0", unknown("GS1: Failed to parse '0109506000134352' as GTIN")),
    (GTIN, "]C0", unknown("symbology ]C0 carries no GS1 data")),  # plain Code 128
    ("5901234123457", "]A0", unknown("symbology ]A0 carries no GS1 data")),  # Code 39
    (f"]E0{GTIN[1:]}", None, gtin()),  # AIM id left in the data by the driver
    (f"]C0{GTIN}", None, unknown("symbology ]C0 carries no GS1 data")),
    # --- GS1-128 / DataMatrix element strings, FNC1 as GS
    (
        f"01{GTIN}1727123110LOT42{GS}21S123",
        None,
        gtin(
            hri=f"(01){GTIN}(17)271231(10)LOT42(21)S123",
            lot="LOT42",
            serial="S123",
            expiry="2027-12-31",
            dates=dates(("17", "2027-12-31")),
        ),
    ),
    (
        f"01{GTIN}1727123110LOT42",
        "]C1",
        gtin(
            hri=f"(01){GTIN}(17)271231(10)LOT42",
            lot="LOT42",
            expiry="2027-12-31",
            dates=dates(("17", "2027-12-31")),
        ),
    ),
    (
        f"]C101{GTIN}1727123110LOT42",
        None,
        gtin(
            hri=f"(01){GTIN}(17)271231(10)LOT42",
            lot="LOT42",
            expiry="2027-12-31",
            dates=dates(("17", "2027-12-31")),
        ),
    ),
    (  # GS1 DataMatrix: the symbology says element strings
        f"01{GTIN}21ABC{GS}10LOT7{GS}17270615",
        "]d2",
        gtin(
            hri=f"(01){GTIN}(21)ABC(10)LOT7(17)270615",
            serial="ABC",
            lot="LOT7",
            expiry="2027-06-15",
            dates=dates(("17", "2027-06-15")),
        ),
    ),
    (f"01{GTIN}", "]e0", gtin()),  # GS1 DataBar
    # day 00: the last day of the month, leap years included
    (
        f"01{GTIN}1727120010L1",
        None,
        gtin(
            hri=f"(01){GTIN}(17)271200(10)L1",
            lot="L1",
            expiry="2027-12-31",
            dates=dates(("17", "2027-12-31")),
        ),
    ),
    (
        f"01{GTIN}17280200",
        None,
        gtin(hri=f"(01){GTIN}(17)280200", expiry="2028-02-29", dates=dates(("17", "2028-02-29"))),
    ),
    (f"01{GTIN}17271331", None, unknown("GS1: Failed to match '17271331' with GS1 AI (17)")),
    (f"01{GTIN}17270230", None, unknown("Failed to parse GS1 AI (17) date")),
    # 15 best before is the expiry when there is no 17; 16 sell by never is
    (
        f"01{GTIN}11200101152601{'01'}",
        None,
        gtin(
            hri=f"(01){GTIN}(11)200101(15)260101",
            expiry="2026-01-01",
            dates=dates(("11", "2020-01-01"), ("15", "2026-01-01")),
        ),
    ),
    (
        f"01{GTIN}1527010117261231",
        None,
        gtin(
            hri=f"(01){GTIN}(15)270101(17)261231",
            expiry="2026-12-31",
            dates=dates(("15", "2027-01-01"), ("17", "2026-12-31")),
        ),
    ),
    (
        f"01{GTIN}16261231",
        None,
        gtin(hri=f"(01){GTIN}(16)261231", dates=dates(("16", "2026-12-31"))),
    ),
    # counts (30, 37) are quantities; 0 is refused
    (f"01{GTIN}3012", None, gtin(hri=f"(01){GTIN}(30)12", qty=12)),
    (f"02{GTIN}3724", None, gtin(hri=f"(02){GTIN}(37)24", qty=24)),
    (f"01{GTIN}{GS}3012{GS}10L1", None, gtin(hri=f"(01){GTIN}(30)12(10)L1", lot="L1", qty=12)),
    (f"01{GTIN}3000", None, unknown("a count of 0 (AI 30/37)")),
    # measures (310n-369n) are kept as decimal strings, never quantities
    (
        f"01{GTIN}3103000150",
        None,
        gtin(hri=f"(01){GTIN}(3103)000150", measures=(("3103", "0.150"),)),
    ),
    (
        f"01{GTIN}3202001000{GS}10B7",
        None,
        gtin(hri=f"(01){GTIN}(3202)001000(10)B7", lot="B7", measures=(("3202", "10.00"),)),
    ),
    (f"01{GTIN}{GS}", None, gtin()),
    (f"{GS}01{GTIN}", None, gtin()),  # FNC1 in first position, sent as GS
    (
        f"{GS}01{GTIN}10ABC12321XYZ",
        "]C1",
        {
            **unknown("GS1: possible lost GS separator: AI 10 value 'ABC12321XYZ'"),
            "warnings": (
                "possible lost GS separator: AI 10 value 'ABC12321XYZ' "
                "may contain AI 21 'XYZ' from position 6",
            ),
        },
    ),
    (f"01{GTIN[:-1]}3", None, unknown("GS1: AI 01: Invalid GTIN check digit")),
    (f"01{GTIN}10A{GS}10B", None, unknown("GS1: AI 10 twice with different values")),
    (f"10LOT42{GS}21S1", None, unknown("GS1 data without a GTIN, SSCC or location GLN")),
    # --- SSCC: bare, AI 00, HRI, wrong check digit; a pallet label with its content
    (SSCC, None, {"kind": "sscc", "sscc": SSCC, "element_string": f"(00){SSCC}"}),
    (f"00{SSCC}", None, {"kind": "sscc", "sscc": SSCC, "element_string": f"(00){SSCC}"}),
    (f"(00){SSCC}", None, {"kind": "sscc", "sscc": SSCC, "element_string": f"(00){SSCC}"}),
    ("376104250021234560", None, unknown("Invalid SSCC check digit")),
    (f"00{SSCC[:-1]}0", None, unknown("GS1: AI 00: Invalid SSCC check digit")),
    (
        f"00{SSCC}02{GTIN}3724",
        "]C1",
        gtin(hri=f"(00){SSCC}(02){GTIN}(37)24", sscc=SSCC, qty=24),
    ),
    # --- GLN location labels: AI 414, with 254 as the extension
    (
        f"414{GLN}",
        "]C1",
        {"kind": "location", "location": GLN, "gln": GLN, "element_string": f"(414){GLN}"},
    ),
    (
        f"414{GLN}254A1",
        None,
        {
            "kind": "location",
            "location": f"{GLN}.A1",
            "gln": GLN,
            "element_string": f"(414){GLN}(254)A1",
        },
    ),
    (f"414{GLN[:-1]}4", None, unknown("GS1: AI 414: Invalid GLN check digit")),
    # --- HRI, with parentheses
    (
        f"(01){GTIN}(17)271231(10)LOT42",
        None,
        gtin(
            hri=f"(01){GTIN}(17)271231(10)LOT42",
            lot="LOT42",
            expiry="2027-12-31",
            dates=dates(("17", "2027-12-31")),
        ),
    ),
    (f"(01){GTIN}(21)ABC", None, gtin(hri=f"(01){GTIN}(21)ABC", serial="ABC")),
    (
        f"(414){GLN}(254)A1",
        None,
        {
            "kind": "location",
            "location": f"{GLN}.A1",
            "gln": GLN,
            "element_string": f"(414){GLN}(254)A1",
        },
    ),
    ("(01)1234", None, unknown("GS1 HRI: ")),
    (f"(01){GTIN}(10)AB C", None, unknown("GS1 HRI: whitespace")),
    (f"(01){GTIN}(99)x", None, gtin(hri=f"(01){GTIN}(99)x")),
    # --- GS1 Digital Link: any domain; a URL that is not one is unknown
    (
        f"https://id.gs1.org/01/{GTIN}/10/LOT42/21/S1?17=271231",
        None,
        gtin(
            hri=f"(01){GTIN}(10)LOT42(21)S1(17)271231",
            lot="LOT42",
            serial="S1",
            expiry="2027-12-31",
            dates=dates(("17", "2027-12-31")),
        ),
    ),
    (f"https://example.com/01/{GTIN}", None, gtin()),
    (f"https://example.com/01/{GTIN}", "]Q1", gtin()),  # plain QR: Digital Link's home
    (f"https://id.gs1.org/01/{GTIN}/10/B1", "]Q3", gtin(hri=f"(01){GTIN}(10)B1", lot="B1")),
    (
        f"https://id.gs1.org/00/{SSCC}",
        None,
        {"kind": "sscc", "sscc": SSCC, "element_string": f"(00){SSCC}"},
    ),
    (
        f"https://id.gs1.org/414/{GLN}/254/A1",
        None,
        {
            "kind": "location",
            "location": f"{GLN}.A1",
            "gln": GLN,
            "element_string": f"(414){GLN}(254)A1",
        },
    ),
    ("https://example.com/products/123", None, unknown("not a GS1 Digital Link URI")),
    (f"https://id.gs1.org/01/{GTIN[:-1]}3", None, unknown("Invalid GTIN check digit")),
]


@pytest.mark.parametrize(
    ("data", "symbology", "expected"),
    TABLE,
    ids=[f"{s or ''}{d[:48]!r}" for d, s, _ in TABLE],
)
def test_gs1_table(data: str, symbology: str | None, expected: dict[str, Any]) -> None:
    got = asdict(identify(read(data, symbology)))
    defaults = asdict(Identity(kind="unknown", raw=""))
    assert got["raw"] == data
    for name, value in got.items():
        if name == "raw":
            continue
        if name == "error" and "error" in expected:
            assert value is not None and expected["error"] in value, value
        elif name in expected:
            assert value == expected[name], name
        else:
            assert value == defaults[name], (name, value)


def test_the_table_is_real_sized() -> None:
    assert len(TABLE) >= 40
    assert sum(1 for _, _, e in TABLE if e["kind"] == "unknown") >= 10


def test_gln_location_off_makes_a_gln_label_unknown() -> None:
    from agent.identify import Identifier, IdentifySettings

    off = Identifier(IdentifySettings(gln_is_location=False))
    got = off.identify(read(f"414{GLN}254A1"))
    assert got.kind == "unknown"
    assert got.error is not None and "gln_is_location is off" in got.error
    # a GTIN next to a GLN is still the GTIN, with the GLN kept
    item = off.identify(read(f"01{GTIN}414{GLN}"))
    assert (item.kind, item.gtin, item.gln) == ("gtin", GTIN, GLN)


def test_item_of_a_gs1_code_is_what_the_ledger_keeps() -> None:
    got = identify(read(f"01{GTIN}1727123110LOT42{GS}21S123"))
    assert got.item().to_dict() == {
        "gtin": GTIN,
        "lot": "LOT42",
        "serial": "S123",
        "expiry": "2027-12-31",
    }
    pallet = identify(read(f"00{SSCC}"))
    assert pallet.item().key() == SSCC
