"""agent/identify: raw read data -> Identity, as a table of codes; never raises."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent.identify import MAX_DATA, identify
from agent.model import Identity, Read

GTIN = "09506000134352"
SSCC = "376104250021234569"


def read(data: bytes) -> Read:
    return Read(
        id="0190f2a4-6c1e-7d3a-9b2f-000000000001",
        device="scanner-1",
        kind="barcode",
        data=data,
        observed_at="2026-05-01T10:00:00.000000Z",
        mono_ns=1,
        boot_id="b",
    )


def gtin(raw: str, value: str = GTIN, **fields: Any) -> dict[str, Any]:
    return {"kind": "gtin", "raw": raw, "gtin": value, **fields}


def unknown(raw: str, error: str) -> dict[str, Any]:
    return {"kind": "unknown", "raw": raw, "error": error}


# (data, the Identity fields that must be set; every other field must be its default)
CODES: list[tuple[bytes, dict[str, Any]]] = [
    # bare GTINs, valid and with a wrong check digit
    (b"96385074", gtin("96385074", "00000096385074")),
    (b"96385075", unknown("96385075", "Invalid GTIN check digit for '96385075'")),
    (b"036000291452", gtin("036000291452", "00036000291452")),
    (b"036000291453", unknown("036000291453", "Invalid GTIN check digit")),
    (b"5901234123457", gtin("5901234123457", "05901234123457")),
    (b"5901234123458", unknown("5901234123458", "Expected 7, got 8")),
    (b"09506000134352", gtin("09506000134352")),
    (b"09506000134353", unknown("09506000134353", "Invalid GTIN check digit")),
    (b"10012345678902", gtin("10012345678902", "10012345678902")),
    # GS1-128 element strings, FNC1 as GS (0x1D)
    (
        b"01095060001343521727123110LOT42\x1d21S123",
        gtin(
            "01095060001343521727123110LOT42\x1d21S123",
            lot="LOT42",
            serial="S123",
            expiry="2027-12-31",
        ),
    ),
    (
        b"]C101095060001343521727123110LOT42",
        gtin("]C101095060001343521727123110LOT42", lot="LOT42", expiry="2027-12-31"),
    ),
    (b"01095060001343523012", gtin("01095060001343523012", qty=12)),
    (b"02095060001343523724", gtin("02095060001343523724", qty=24)),
    (
        b"0109506000134352\x1d3012\x1d10L1",
        gtin("0109506000134352\x1d3012\x1d10L1", lot="L1", qty=12),
    ),
    (b"0109506000134352\x1d", gtin("0109506000134352\x1d")),
    # HRI, with parentheses
    (
        b"(01)09506000134352(17)271231(10)LOT42",
        gtin("(01)09506000134352(17)271231(10)LOT42", lot="LOT42", expiry="2027-12-31"),
    ),
    (b"(01)09506000134352(21)ABC", gtin("(01)09506000134352(21)ABC", serial="ABC")),
    (b"(01)1234", unknown("(01)1234", "not a GS1 code or a command")),
    # GS1 Digital Link
    (
        b"https://id.gs1.org/01/09506000134352/10/LOT42/21/S1?17=271231",
        gtin(
            "https://id.gs1.org/01/09506000134352/10/LOT42/21/S1?17=271231",
            lot="LOT42",
            serial="S1",
            expiry="2027-12-31",
        ),
    ),
    (
        b"https://example.com/01/09506000134352",
        gtin("https://example.com/01/09506000134352"),
    ),
    # SSCC: bare, with AI 00, HRI, wrong check digit
    (SSCC.encode(), {"kind": "sscc", "raw": SSCC, "sscc": SSCC}),
    (b"00" + SSCC.encode(), {"kind": "sscc", "raw": "00" + SSCC, "sscc": SSCC}),
    (b"(00)" + SSCC.encode(), {"kind": "sscc", "raw": "(00)" + SSCC, "sscc": SSCC}),
    (
        b"376104250021234560",
        unknown("376104250021234560", "Invalid SSCC check digit"),
    ),
    # commands
    (
        b"PO:4500012345",
        {"kind": "command", "raw": "PO:4500012345", "command": "PO", "argument": "4500012345"},
    ),
    (
        b"QTY:12",
        {"kind": "command", "raw": "QTY:12", "command": "QTY", "argument": "12", "qty": 12},
    ),
    (
        b"QTY:1000000",
        {
            "kind": "command",
            "raw": "QTY:1000000",
            "command": "QTY",
            "argument": "1000000",
            "qty": 1_000_000,
        },
    ),
    (b"END", {"kind": "command", "raw": "END", "command": "END"}),
    (b"CANCEL", {"kind": "command", "raw": "CANCEL", "command": "CANCEL"}),
    (
        b"PAIR:recv-1",
        {"kind": "command", "raw": "PAIR:recv-1", "command": "PAIR", "argument": "recv-1"},
    ),
    (b"OP:alice", {"kind": "command", "raw": "OP:alice", "command": "OP", "argument": "alice"}),
    (b"QTY:0", unknown("QTY:0", "QTY: needs a whole number 1..1000000")),
    (b"QTY:abc", unknown("QTY:abc", "QTY: needs a whole number 1..1000000")),
    (b"QTY:-3", unknown("QTY:-3", "QTY: needs a whole number 1..1000000")),
    (b"QTY:1000001", unknown("QTY:1000001", "QTY: needs a whole number 1..1000000")),
    # a digit Python's isdigit() accepts but int() does not
    ("QTY:³".encode(), unknown("QTY:³", "QTY: needs a whole number 1..1000000")),
    (b"QTY:", unknown("QTY:", "QTY: needs a value after the colon")),
    (b"PO:", unknown("PO:", "PO: needs a value after the colon")),
    (b"END:x", unknown("END:x", "not a GS1 code or a command")),
    # what is not a code at all
    (b"", unknown("", "empty read")),
    (b"\xff\xfe\x00", unknown("fffe00", "not UTF-8 text")),
    (b"9" * (MAX_DATA + 1), unknown("39" * 64, "read longer than 4096 bytes")),
    (b"0109506000134352\x0010A", unknown("0109506000134352\x0010A", "control characters")),
    (b"0109506000134352\r", unknown("0109506000134352\r", "control characters")),
    (b"hello world", unknown("hello world", "not a GS1 code or a command")),
    (b"]", unknown("]", "")),  # a lone symbology-identifier bracket
]


@pytest.mark.parametrize(("data", "expected"), CODES, ids=[repr(c[:40]) for c, _ in CODES])
def test_identify(data: bytes, expected: dict[str, Any]) -> None:
    got = asdict(identify(read(data)))
    defaults = asdict(Identity(kind="unknown", raw=""))
    error_part = expected.get("error")
    for name, value in got.items():
        if name == "error" and error_part is not None:
            assert value is not None and error_part in value, value
        elif name in expected:
            assert value == expected[name], name
        else:
            assert value == defaults[name], name


def test_exactly_max_data_bytes_is_still_looked_at() -> None:
    data = b"0109506000134352" + b"\x1d10" + b"A" * (MAX_DATA - 19)
    assert len(data) == MAX_DATA
    identity = identify(read(data))
    assert identity.error != "read longer than 4096 bytes"


def test_identity_item_carries_the_gs1_fields() -> None:
    identity = identify(read(b"01095060001343521727123110LOT42\x1d21S123"))
    assert identity.item().to_dict() == {
        "gtin": GTIN,
        "lot": "LOT42",
        "serial": "S123",
        "expiry": "2027-12-31",
    }
    assert identity.item().key() == GTIN


@example(b"]")
@example("QTY:³".encode())
@example(b"(01)")
@example(b"\x1d")
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    identity = identify(read(data))
    assert isinstance(identity, Identity)
    if identity.kind == "unknown":
        assert identity.error


@given(st.text(alphabet="0123456789()\x1d:QTYPOENDAB/.?=htps", max_size=60))
def test_code_like_text_never_raises(text: str) -> None:
    identity = identify(read(text.encode()))
    assert isinstance(identity, Identity)
    if identity.kind == "unknown":
        assert identity.error
