"""The lost-GS guard: flag what a dropped separator looks like, leave real lots alone.

biip reads ``10ABC123`` + ``21XYZ`` without the GS between them as lot
"ABC12321XYZ" and no serial, silently. identify flags it; policy ``reject``
makes it an unknown naming the suspicion, ``accept`` keeps biip's reading with
the warning.
"""

from __future__ import annotations

import pytest
from identify_kit import GLN, GS, GTIN, read

from agent.identify import Identifier, IdentifySettings

REJECT = Identifier(IdentifySettings(missing_separator="reject"))
ACCEPT = Identifier(IdentifySettings(missing_separator="accept"))


# (data, what biip reads as lot / serial, a part the warning must name)
LOST: list[tuple[str, str | None, str | None, str]] = [
    # lot then serial, GS lost: the example of the issue
    (f"01{GTIN}10ABC12321XYZ", "ABC12321XYZ", None, "may contain AI 21 'XYZ' from position 6"),
    # serial then lot
    (f"01{GTIN}21SER110LOTA", None, "SER110LOTA", "may contain AI 10 'LOTA'"),
    # lot then an expiry date: strong evidence even in an all-digit lot
    (f"01{GTIN}10ABC12317271231", "ABC12317271231", None, "AI 17 '271231'"),
    (f"01{GTIN}1012345617271231", "12345617271231", None, "AI 17 '271231'"),
    # lot then expiry then serial, all separators lost
    (f"01{GTIN}10ABC1231727123121XYZ", "ABC1231727123121XYZ", None, "AI 17 '271231' AI 21"),
    # serial then a GLN with a valid check digit
    (f"01{GTIN}21ABC414{GLN}", None, f"ABC414{GLN}", f"AI 414 '{GLN}'"),
    # a lot at its full 20 characters followed straight by the next AI
    (f"01{GTIN}10ABCDEFGHIJKLMNOPQRST21XYZ", "ABCDEFGHIJKLMNOPQRST", "XYZ", "without a GS"),
]


@pytest.mark.parametrize(("data", "lot", "serial", "named"), LOST)
def test_lost_separator_is_rejected_by_default(
    data: str, lot: str | None, serial: str | None, named: str
) -> None:
    got = REJECT.identify(read(data))
    assert got.kind == "unknown"
    assert got.error is not None and "possible lost GS separator" in got.error
    assert named in got.error
    assert got.warnings and named in got.warnings[0]
    assert got.raw == data


@pytest.mark.parametrize(("data", "lot", "serial", "named"), LOST)
def test_lost_separator_accepted_keeps_biips_reading_and_the_warning(
    data: str, lot: str | None, serial: str | None, named: str
) -> None:
    got = ACCEPT.identify(read(data))
    assert got.kind == "gtin" and got.gtin == GTIN and got.error is None
    assert (got.lot, got.serial) == (lot, serial)
    assert len(got.warnings) == 1 and named in got.warnings[0]


def test_the_same_code_with_its_gs_is_clean() -> None:
    got = REJECT.identify(read(f"01{GTIN}10ABC123{GS}21XYZ"))
    assert (got.kind, got.lot, got.serial, got.warnings) == ("gtin", "ABC123", "XYZ", ())
    full = REJECT.identify(read(f"01{GTIN}10ABCDEFGHIJKLMNOPQRST{GS}21XYZ", "]C1"))
    assert (full.kind, full.lot, full.serial, full.warnings) == (
        "gtin",
        "ABCDEFGHIJKLMNOPQRST",
        "XYZ",
        (),
    )


# Lots and serials as printed on real labels: none of them may warn.
CLEAN = [
    f"01{GTIN}10ABC123",
    f"01{GTIN}10B12345A",
    f"01{GTIN}10230512",  # date-coded lot
    f"01{GTIN}1012AB34",
    f"01{GTIN}10W2023-45",
    f"01{GTIN}10LOT-2024-11",
    f"01{GTIN}10LOT2101",  # holds "21" + digits: digit runs are not serials
    f"01{GTIN}10LOT210315",
    f"01{GTIN}10L2105A",
    f"01{GTIN}10L2310X",  # holds "10X": a second lot is impossible in one message
    f"01{GTIN}10A1017",
    f"01{GTIN}10ABC3012",  # holds "30" + digits: counts have no check, never flagged
    f"01{GTIN}10L23037",
    f"01{GTIN}10A9912",  # holds "99" + digits: internal AIs are not flagged
    f"01{GTIN}10AB17271341",  # "17" + 271341 is no date
    f"01{GTIN}10AB17999999",
    f"01{GTIN}21S2110",
    f"01{GTIN}21123012",
    f"01{GTIN}21XYZ10",
    f"01{GTIN}211234567890",  # numeric serials
    f"01{GTIN}2100000000012345",
    f"01{GTIN}17271231{GS}10ABC123{GS}21XYZ",
    f"01{GTIN}1727123110ABC123{GS}21XYZ",
    f"01{GTIN}10 12345",  # not valid GS1 (space): an unknown, but no lost-GS warning
]


# Random 20-character serials (the full length of AI 21), as pharmaceutical packs carry
# them: "10" + a letter inside is chance, not a lost lot (about 1 in 100 of them).
FULL_SERIALS = ["CU1WQD10YWSV2P7JDVH6", "HTTX10SZ55JQWZCTJTTK", "KA210IMAWJY0KKGMVQ8B"]
CLEAN += [f"01{GTIN}21{serial}" for serial in FULL_SERIALS]


@pytest.mark.parametrize("data", CLEAN)
def test_ordinary_lots_and_serials_do_not_warn(data: str) -> None:
    got = REJECT.identify(read(data))
    assert got.warnings == ()
    assert got.error is None or "lost GS" not in got.error


def test_a_tail_whose_ai_is_already_in_the_message_is_text() -> None:
    # GS1 allows each AI once per message: with 21 given, "21XYZ" in the lot is text.
    got = REJECT.identify(read(f"01{GTIN}17271231{GS}21S1{GS}10ABC12321XYZ"))
    assert (got.kind, got.lot, got.warnings) == ("gtin", "ABC12321XYZ", ())
    assert REJECT.identify(read(f"01{GTIN}10ABC12321XYZ")).kind == "unknown"


def test_data_that_carries_a_gs_is_only_checked_for_structure() -> None:
    # The scanner sends GS, so "21XYZ" inside the serial-less lot is the lot's text...
    kept = REJECT.identify(read(f"01{GTIN}3012{GS}10ABC12321XYZ"))
    assert (kept.kind, kept.lot, kept.qty, kept.warnings) == ("gtin", "ABC12321XYZ", 12, ())
    # ...but a full-length lot run straight into the next AI is still caught.
    cut = REJECT.identify(read(f"01{GTIN}3012{GS}10ABCDEFGHIJKLMNOPQRST21XYZ"))
    assert cut.kind == "unknown" and cut.error is not None and "without a GS" in cut.error


def test_hri_and_digital_link_are_delimited_and_never_warn() -> None:
    hri = REJECT.identify(read(f"(01){GTIN}(10)ABC12321XYZ"))
    assert (hri.kind, hri.lot, hri.warnings) == ("gtin", "ABC12321XYZ", ())
    link = REJECT.identify(read(f"https://id.gs1.org/01/{GTIN}/10/ABC12321XYZ"))
    assert (link.kind, link.lot, link.warnings) == ("gtin", "ABC12321XYZ", ())


def test_a_full_length_serial_still_shows_a_hidden_date_or_key() -> None:
    # Weak evidence (10 + a letter) is not enough in a full-length serial; a valid
    # date or check digit is, at any length.
    dated = REJECT.identify(read(f"01{GTIN}21ABCDEFGHIJKL17271231"))
    assert dated.kind == "unknown" and dated.error is not None and "AI 17 '271231'" in dated.error


def test_a_full_length_lot_still_shows_a_hidden_serial() -> None:
    # Lots are not issued at a fixed width: a lot and a serial joined into 20 characters.
    got = REJECT.identify(read(f"01{GTIN}10ABCDEFGH21XYZ1234567"))
    assert got.kind == "unknown" and got.error is not None and "AI 21 'XYZ1234567'" in got.error


def test_a_serial_and_a_lot_joined_into_20_characters_are_a_full_length_serial() -> None:
    """Why the guard lets these through (bench.guard's ``joined_full``): a GTIN + serial
    + lot label whose GS before AI 10 is lost, serial and lot 18 characters together,
    is byte for byte a GTIN + one 20-character serial, which GS1 allows (AI 21: X..20,
    character set 82, no check digit, no order of AIs fixed, the last element needs no
    GS). Lot and serial share that character set, so nothing GS1 fixes tells them
    apart: whatever flags the one flags the other, a real pack's serial."""
    serial, lot = "ABCDEFGH", "XYZ1234567"  # 8 + "10" + 10 = 20
    printed = f"01{GTIN}21{serial}{GS}10{lot}"
    lost = printed.replace(GS, "")  # a wedge that drops FNC1
    issued = f"01{GTIN}21ABCDEFGH10XYZ1234567"  # a randomised full-length pack serial
    assert lost.encode() == issued.encode()
    got = REJECT.identify(read(issued))
    assert (got.kind, got.serial, got.lot, got.warnings) == (
        "gtin",
        "ABCDEFGH10XYZ1234567",
        None,
        (),
    )
    with_gs = REJECT.identify(read(printed))
    assert (with_gs.serial, with_gs.lot) == (serial, lot)
    # One character more and the joined value breaks AI 21's limit: not read at all.
    longer = REJECT.identify(read(f"{lost}8"))
    assert longer.kind == "unknown"
    # One fewer: not a full-length serial, so "10" + a letter inside is flagged.
    shorter = REJECT.identify(read(f"01{GTIN}21{serial[:-1]}10{lot}"))
    assert shorter.kind == "unknown" and shorter.error is not None
    assert f"AI 10 '{lot}'" in shorter.error
