"""Properties of identify: whatever arrives, it answers, and what it answers holds.

Arbitrary bytes and text (barcode and tag, with and without AIM symbology
ids) never raise and always give an Identity of an allowed kind with a reason
when unknown; a GTIN built with its check digit always identifies as that
GTIN-14; element strings built with GS separators give back their lot and
serial; every SGTIN identity is consistent with its own GTIN and serial.
"""

from __future__ import annotations

from typing import get_args, get_type_hints

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.identify import Identifier, IdentifySettings, identify
from agent.model import Identity, Read

KINDS = set(get_args(get_type_hints(Identity)["kind"]))
ALLOWED = {"gtin", "sscc", "epc", "location", "command", "sku", "unknown"}
SYMBOLOGIES = [None, "]C1", "]C0", "]E0", "]E3", "]E4", "]I1", "]d2", "]Q3", "]Q1", "]e0", "]A0"]
# GS1's 82-character set (CSET 82), what lots and serials are made of
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
SITE = Identifier(
    IdentifySettings(sku_patterns=[r"SKU-[0-9]{4,8}", r"[A-Z]{3}[0-9]{5}"]), epc_cache=64
)


def make(data: bytes, kind: str = "barcode", symbology: str | None = None) -> Read:
    return Read(
        id="0190f2a4-6c1e-7d3a-9b2f-000000000001",
        device="d",
        kind="tag" if kind == "tag" else "barcode",
        data=data,
        observed_at="2026-05-01T10:00:00.000000Z",
        mono_ns=1,
        boot_id="b",
        symbology=symbology,
    )


def check_digit(payload: str) -> str:
    """GS1 mod-10: weights 3,1,3... from the right of the payload."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return str((10 - total % 10) % 10)


def assert_sound(identity: Identity) -> None:
    assert isinstance(identity, Identity)
    assert identity.kind in ALLOWED
    if identity.kind == "unknown":
        assert identity.error
    else:
        assert identity.error is None
    if identity.kind == "gtin":
        assert identity.gtin is not None and len(identity.gtin) == 14
        assert identity.gtin[-1] == check_digit(identity.gtin[:-1])
    if identity.kind == "epc":
        assert identity.epc is not None and identity.epc.startswith("urn:epc:id:")


def test_the_allowed_kinds_are_the_models() -> None:
    assert KINDS == ALLOWED


@example(b"]", "barcode", None)
@example(b"]Y", "barcode", None)
@example(b"]Y9", "barcode", None)
@example(b"(01)", "barcode", None)
@example(b"\x1d", "barcode", "]C1")
@example(b"http", "barcode", None)
@example(b"urn:epc:", "tag", None)
@example(b"3D", "tag", None)
@example(b"\xe2", "tag", None)
@given(
    st.binary(max_size=200),
    st.sampled_from(["barcode", "tag"]),
    st.sampled_from(SYMBOLOGIES),
)
def test_arbitrary_bytes_never_raise(data: bytes, kind: str, symbology: str | None) -> None:
    assert_sound(identify(make(data, kind, symbology)))
    assert_sound(SITE.identify(make(data, kind, symbology)))


@given(st.text(max_size=120), st.sampled_from(SYMBOLOGIES))
def test_arbitrary_text_never_raises(text: str, symbology: str | None) -> None:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes a scanner cannot send
        return
    assert_sound(identify(make(data, "barcode", symbology)))
    assert_sound(SITE.identify(make(data, "barcode", symbology)))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                *("01", "02", "00", "10", "17", "21", "30", "37", "414", "254", "3103", "15"),
                *("(", ")", "\x1d", "09506000134352", "271231", "271200", "ABC", "12", "0"),
                *("https://", "id.gs1.org/", "/", "?17=", "PO:", "QTY:", "LOC:", "DISP:"),
                "urn:epc:id:sgtin:",
            ]
        ),
        max_size=12,
    ).map("".join),
    st.sampled_from(SYMBOLOGIES),
)
def test_code_shaped_text_never_raises(text: str, symbology: str | None) -> None:
    assert_sound(identify(make(text.encode(), "barcode", symbology)))


@given(st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=80))
def test_hex_tag_data_never_raises(hex_text: str) -> None:
    assert_sound(identify(make(hex_text.encode(), "tag")))
    assert_sound(SITE.identify(make(hex_text.encode(), "tag")))


@given(
    st.sampled_from([7, 11, 12, 13]),
    st.data(),
    st.sampled_from([None, "]E0", "]E4", "]I1"]),
)
def test_a_gtin_with_its_check_digit_is_that_gtin_14(
    payload_length: int, data: st.DataObject, symbology: str | None
) -> None:
    payload = data.draw(
        st.text(alphabet="0123456789", min_size=payload_length, max_size=payload_length)
    )
    code = payload + check_digit(payload)
    if (symbology == "]E4" and len(code) != 8) or (symbology == "]I1" and len(code) != 14):
        symbology = None
    if symbology == "]E0" and len(code) == 8:
        symbology = "]E4"  # 8 digits under ]E0 are UPC-E, a different encoding
    got = identify(make(code.encode(), "barcode", symbology))
    assert (got.kind, got.gtin, got.error) == ("gtin", code.zfill(14), None)
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    bad = identify(make(wrong.encode(), "barcode", symbology))
    assert bad.kind == "unknown" and bad.error is not None and "check digit" in bad.error


@given(
    st.text(alphabet="0123456789", min_size=13, max_size=13),
    st.text(alphabet=CSET82, min_size=1, max_size=20),
    st.text(alphabet=CSET82, min_size=1, max_size=20),
)
def test_element_strings_with_their_gs_give_back_lot_and_serial(
    payload: str, lot: str, serial: str
) -> None:
    gtin = payload + check_digit(payload)
    data = f"01{gtin}10{lot}\x1d21{serial}"
    got = identify(make(data.encode(), "barcode", "]C1"))
    assert (got.kind, got.gtin, got.lot, got.serial, got.warnings) == (
        "gtin",
        gtin,
        lot,
        serial,
        (),
    )
    hri = f"(01){gtin}(10){lot}(21){serial}"
    assert got.element_string == hri


@given(
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.integers(min_value=0, max_value=2**38 - 1),
)
def test_sgtin_uris_agree_with_their_gtin_and_serial(company: str, item: str, serial: int) -> None:
    uri = f"urn:epc:id:sgtin:{company}.{item}.{serial}"
    got = identify(make(uri.encode(), "tag"))
    assert (got.kind, got.epc, got.serial) == ("epc", uri, str(serial))
    payload = item[0] + company + item[1:]
    assert got.gtin == payload + check_digit(payload)
    assert got.element_string == f"(01){got.gtin}(21){serial}"
