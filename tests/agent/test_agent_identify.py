"""agent/identify: raw read data -> Identity, as a table of codes; never raises."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from identify_kit import GTIN, read

from agent.identify import MAX_DATA, identify
from agent.model import Identity


def gtin(raw: str, value: str = GTIN, **fields: Any) -> dict[str, Any]:
    return {"kind": "gtin", "raw": raw, "gtin": value, **fields}


def unknown(raw: str, error: str) -> dict[str, Any]:
    return {"kind": "unknown", "raw": raw, "error": error}


# (data, the Identity fields that must be set; every other field must be its default).
# The GS1 table lives in test_agent_identify_gs1_table.py; these are the codes
# around it: commands, location labels and what is not a code at all.
CODES: list[tuple[bytes, dict[str, Any]]] = [
    (b"96385074", gtin("96385074", "00000096385074", element_string="(01)00000096385074")),
    (b"96385075", unknown("96385075", "Invalid GTIN check digit for '96385075'")),
    # commands
    (
        b"PO:4500012345",
        {"kind": "command", "raw": "PO:4500012345", "command": "PO", "argument": "4500012345"},
    ),
    (
        b"ORDER:SO-2026-0042",
        {
            "kind": "command",
            "raw": "ORDER:SO-2026-0042",
            "command": "ORDER",
            "argument": "SO-2026-0042",
        },
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
    (
        b"DISP:restock",
        {"kind": "command", "raw": "DISP:restock", "command": "DISP", "argument": "restock"},
    ),
    (
        b"DISP:damaged",
        {"kind": "command", "raw": "DISP:damaged", "command": "DISP", "argument": "damaged"},
    ),
    (
        b"DISP:quarantine",
        {
            "kind": "command",
            "raw": "DISP:quarantine",
            "command": "DISP",
            "argument": "quarantine",
        },
    ),
    (
        b"]C0PAIR:recv-1",
        {"kind": "command", "raw": "]C0PAIR:recv-1", "command": "PAIR", "argument": "recv-1"},
    ),
    (
        b"DISP:broken",
        unknown("DISP:broken", "DISP: expected one of restock, damaged, quarantine, got 'broken'"),
    ),
    (b"DISP:Damaged", unknown("DISP:Damaged", "expected one of restock, damaged, quarantine")),
    (b"QTY:0", unknown("QTY:0", "QTY: needs a whole number 1..1000000")),
    (b"QTY:abc", unknown("QTY:abc", "QTY: needs a whole number 1..1000000")),
    (b"QTY:-3", unknown("QTY:-3", "QTY: needs a whole number 1..1000000")),
    (b"QTY:1000001", unknown("QTY:1000001", "QTY: needs a whole number 1..1000000")),
    # a digit Python's isdigit() accepts but int() does not
    ("QTY:³".encode(), unknown("QTY:³", "QTY: needs a whole number 1..1000000")),
    (b"QTY:", unknown("QTY:", "QTY: needs a value after the colon")),
    (b"PO:", unknown("PO:", "PO: needs a value after the colon")),
    (b"PO", unknown("PO", "PO: needs a value after the colon")),
    (b"PO: 4500", unknown("PO: 4500", "PO: expected no leading or trailing space")),
    (b"PO:45\x1d00", unknown("PO:45\x1d00", "PO: expected printable characters")),
    (b"OP:" + b"x" * 65, unknown("OP:" + "x" * 65, "OP: expected at most 64 characters, got 65")),
    (b"END:x", unknown("END:x", "END: takes no value")),
    (b"CANCEL:", unknown("CANCEL:", "CANCEL: takes no value")),
    # command names are exact: anything else is not a command
    (b"end", unknown("end", "not a GS1 code or a command")),
    (b"POTATO", unknown("POTATO", "not a GS1 code or a command")),
    # location labels (default prefix LOC:)
    (b"LOC:A-01-02", {"kind": "location", "raw": "LOC:A-01-02", "location": "A-01-02"}),
    (b"]C0LOC:DOCK-3", {"kind": "location", "raw": "]C0LOC:DOCK-3", "location": "DOCK-3"}),
    (b"LOC:", unknown("LOC:", "location label: needs a code after 'LOC:'")),
    (b"LOC:A 1 ", unknown("LOC:A 1 ", "location label: expected no leading or trailing space")),
    # what is not a code at all
    (b"", unknown("", "empty read")),
    (b"\xff\xfe\x00", unknown("fffe00", "not UTF-8 text")),
    (b"9" * (MAX_DATA + 1), unknown("39" * 64, "read longer than 4096 bytes")),
    (b"0109506000134352\x0010A", unknown("0109506000134352\x0010A", "control characters")),
    (b"0109506000134352\r", unknown("0109506000134352\r", "control characters")),
    (b"PO:12\x7f", unknown("PO:12\x7f", "control characters")),
    (b"hello world", unknown("hello world", "not a GS1 code or a command")),
    (b"]", unknown("]", "not a GS1 code or a command")),  # a lone symbology-identifier bracket
    (b"]Y", unknown("]Y", "not a GS1 code or a command")),
    (b"]C0hello", unknown("]C0hello", "symbology ]C0 carries no GS1 data")),
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
