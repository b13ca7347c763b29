"""agent/model.py: JSON forms that round-trip exactly, and validation that names the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.model import _BAD_ID_CHARS, ClockStamp, Item, Movement, Read, id_text

MOVEMENT_ID = "0190f2a4-6c1e-7d3a-9b2f-3c4d5e6f7a8b"
GTIN = "09506000134352"


def make_read(**fields: Any) -> Read:
    values: dict[str, Any] = {
        "id": "0190f2a4-6c1e-7d3a-9b2f-000000000001",
        "device": "usb-Honeywell_1900-if00",
        "kind": "barcode",
        "data": b"0109506000134352\x1d10LOT42",
        "observed_at": "2026-05-01T10:00:00.000000Z",
        "mono_ns": 123_456_789,
        "boot_id": "6f1c1f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    }
    values.update(fields)
    return Read(**values)


def make_movement(**fields: Any) -> Movement:
    values: dict[str, Any] = {
        "id": MOVEMENT_ID,
        "agent": "dock-3",
        "kind": "receive",
        "item": Item(gtin=GTIN, lot="LOT42", expiry="2027-12-31"),
        "qty": 12,
        "station": "recv-1",
        "device": "scanner-1",
        "observed_at": "2026-05-01T10:00:00.000000Z",
        "clock": ClockStamp(synced=True, boot_id="boot-1", mono_ns=42),
        "seq": 7,
        "to": "DOCK-3",
        "ref": {"po": "4500012345"},
        "operator": "alice",
        "evidence": {"read_ids": ["r1", "r2"], "rssi": -61.5, "raw": "0109506000134352"},
    }
    values.update(fields)
    return Movement(**values)


def movement_dict(**fields: Any) -> dict[str, Any]:
    """A valid movement's JSON object; a field given as ``None`` is left out."""
    out = make_movement().to_dict()
    for key, value in fields.items():
        key = "from" if key == "from_" else key
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# ---- Read ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"0109506000134352\x1d10LOT42\x1d21SER1",  # GS separators
        b"\x00\x01\x02 trailing NUL \x00",
        b"\xff\xfe\x80 not UTF-8 \xc3",
        b"",
        bytes(range(256)),
    ],
    ids=["gs", "nul", "high-bytes", "empty", "every-byte"],
)
def test_read_round_trips_its_raw_bytes_exactly(data: bytes) -> None:
    read = make_read(data=data)
    again = Read.from_json(read.to_json())
    assert again == read
    assert again.data == data


def test_read_round_trips_optional_fields_and_omits_absent_ones() -> None:
    full = make_read(symbology="]C1", antenna=3, rssi=-61.5, seen_count=4, kind="tag")
    assert Read.from_json(full.to_json()) == full
    bare = make_read()
    obj = json.loads(bare.to_json())
    assert set(obj) == {"id", "device", "kind", "data_b64", "observed_at", "mono_ns", "boot_id"}
    assert Read.from_json(bare.to_json()) == bare


def test_read_json_is_canonical_text() -> None:
    read = make_read(data=b"\x1d")
    text = read.to_json()
    assert text == json.dumps(
        json.loads(text), separators=(",", ":"), sort_keys=True, ensure_ascii=False
    )
    assert json.loads(text)["data_b64"] == "HQ=="


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_b64": "not base64!"}, "read.data_b64: not valid base64"),
        ({"data_b64": 5}, "read.data_b64: expected base64 text"),
        ({"kind": "rfid"}, "read.kind: expected one of barcode, tag, got 'rfid'"),
        ({"mono_ns": -1}, "read.mono_ns: expected an integer >= 0, got -1"),
        ({"device": ""}, "read.device: required"),
        ({"antenna": "2"}, "read.antenna: expected an integer"),
        ({"rssi": "loud"}, "read.rssi: expected a number"),
    ],
)
def test_bad_read_names_the_field(change: dict[str, Any], message: str) -> None:
    obj = {**make_read().to_dict(), **change}
    with pytest.raises(ValueError) as info:
        Read.from_dict(obj)
    assert message in str(info.value)


# ---- Movement -------------------------------------------------------------------------


def test_movement_round_trips_through_json() -> None:
    movement = make_movement()
    again = Movement.from_json(movement.to_json())
    assert again == movement
    assert again.to_json() == movement.to_json()


def test_movement_without_seq_round_trips_and_with_seq_numbers_it() -> None:
    movement = make_movement(seq=None)
    assert json.loads(movement.to_json())["seq"] is None
    assert Movement.from_json(movement.to_json()) == movement
    numbered = movement.with_seq(3)
    assert numbered.seq == 3
    assert Movement.from_json(numbered.to_json()) == numbered


def test_movement_json_uses_the_wire_names() -> None:
    movement = make_movement(kind="transfer", from_="DOCK-3", to="A-01")
    obj = json.loads(movement.to_json())
    assert obj["from"] == "DOCK-3"
    assert "from_" not in obj
    assert obj["item"] == {"gtin": GTIN, "lot": "LOT42", "expiry": "2027-12-31"}
    assert obj["clock"] == {"synced": True, "boot_id": "boot-1", "mono_ns": 42}


def test_movement_defaults_uom_to_each() -> None:
    movement = Movement.from_dict(movement_dict(uom=None))
    assert movement.uom == "EA"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"qty": 0}, "movement.qty: expected an integer >= 1, got 0"),
        ({"qty": -3}, "movement.qty: expected an integer >= 1, got -3"),
        ({"qty": "3"}, "movement.qty: expected an integer, got '3'"),
        ({"qty": True}, "movement.qty: expected an integer, got True"),
        ({"qty": 1.5}, "movement.qty: expected an integer, got 1.5"),
        ({"to": None}, "movement.to: a receive needs a 'to' location"),
        ({"kind": "ship", "to": None}, "movement.from: a ship needs a 'from' location"),
        ({"kind": "transfer", "from_": "DOCK-3", "to": None}, "movement.to: a transfer needs"),
        ({"kind": "transfer", "to": "A-01"}, "movement.from: a transfer needs a 'from'"),
        ({"kind": "count", "to": ""}, "movement.to: a count needs a 'to' location"),
        (
            {"kind": "adjust", "from_": "A-01", "to": "A-02"},
            "an adjust needs exactly one of from (remove) or to (add)",
        ),
        (
            {"kind": "adjust", "from_": None, "to": None},
            "an adjust needs exactly one of from (remove) or to (add)",
        ),
        ({"qtty": 5}, "movement: unknown field 'qtty'"),
        ({"item": {"gtin": GTIN, "colour": "red"}}, "movement.item: unknown field 'colour'"),
        ({"id": "not-a-uuid"}, "movement.id: expected a lowercase UUID string"),
        ({"id": MOVEMENT_ID.upper()}, "movement.id: expected a lowercase UUID string"),
        ({"id": None}, "movement.id: required"),
        ({"id": 12}, "movement.id: expected a string, got int"),
        ({"kind": "steal"}, "movement.kind: expected one of receive, ship, transfer"),
        ({"item": {}}, "movement.item: expected at least one of gtin, sku, sscc, epc"),
        ({"item": {"lot": "L1"}}, "movement.item: expected at least one of gtin, sku, sscc, epc"),
        ({"item": {"gtin": 9506000134352}}, "movement.item.gtin: expected a string, got int"),
        ({"item": "09506000134352"}, "movement.item: expected an object"),
        ({"seq": 0}, "movement.seq: expected an integer >= 1"),
        ({"clock": None}, "movement.clock: expected an object"),
        (
            {"clock": {"synced": "yes", "boot_id": "b", "mono_ns": 1}},
            "movement.clock.synced: expected true or false, got 'yes'",
        ),
        (
            {"clock": {"synced": True, "boot_id": "b", "mono_ns": -1}},
            "movement.clock.mono_ns: expected an integer >= 0",
        ),
        ({"station": None}, "movement.station: required"),
        ({"agent": ""}, "movement.agent: required"),
        ({"ref": {"po": 4500012345}}, "movement.ref.po: expected a string"),
        ({"operator": "x" * 513}, "movement.operator: longer than 512 characters"),
        ({"evidence": ["r1"]}, "movement.evidence: expected an object"),
    ],
)
def test_bad_movement_names_the_field(fields: dict[str, Any], message: str) -> None:
    obj = movement_dict(**fields)
    with pytest.raises(ValueError) as info:
        Movement.from_dict(obj)
    assert message in str(info.value)
    with pytest.raises(ValueError) as info:
        Movement.from_json(json.dumps(obj))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "movement: not JSON"),
        ("[1, 2]", "movement: expected a JSON object"),
        ('"a string"', "movement: expected a JSON object"),
    ],
)
def test_movement_from_json_refuses_what_is_not_an_object(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Movement.from_json(text)


def test_adjust_with_exactly_one_location_is_valid() -> None:
    add = Movement.from_dict(movement_dict(kind="adjust", to="A-01", reason="found"))
    remove = Movement.from_dict(movement_dict(kind="adjust", from_="A-01", to=None))
    assert (add.from_, add.to) == (None, "A-01")
    assert (remove.from_, remove.to) == ("A-01", None)


# ---- property: any valid movement round-trips ---------------------------------------------

_text = st.text(min_size=1, max_size=40)
# Item and location ids: NFC, without controls or bidi marks (agent.model.id_text)
_id = _text.filter(lambda t: not _BAD_ID_CHARS.search(t) and id_text(t, "id") == t)
_I64 = 2**63 - 1  # the JSON form holds 64-bit integers
_EXACT = 2**53 - 1  # what every JSON reader holds exactly: qty and seq stay below it
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-_I64 - 1, max_value=_I64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_uuid = st.uuids().map(str)
_locations: dict[str, Callable[[st.DrawFn], tuple[str | None, str | None]]] = {
    "receive": lambda draw: (draw(st.none() | _id), draw(_id)),
    "ship": lambda draw: (draw(_id), draw(st.none() | _id)),
    "transfer": lambda draw: (draw(_id), draw(_id)),
    "return": lambda draw: (draw(st.none() | _id), draw(_id)),
    "count": lambda draw: (draw(st.none() | _id), draw(_id)),
    "adjust": lambda draw: draw(st.sampled_from([(draw(_id), None), (None, draw(_id))])),
}


@st.composite
def movements(draw: st.DrawFn) -> Movement:
    kind = draw(st.sampled_from(sorted(_locations)))
    from_, to = _locations[kind](draw)
    key_field = draw(st.sampled_from(["gtin", "sku", "sscc", "epc"]))
    item_fields = draw(
        st.dictionaries(
            st.sampled_from(["gtin", "sku", "lot", "serial", "expiry", "epc", "sscc"]),
            _id,
            max_size=7,
        )
    )
    item_fields[key_field] = draw(_id)
    return Movement(
        id=draw(_uuid),
        agent=draw(_text),
        kind=kind,  # type: ignore[arg-type]
        item=Item(**item_fields),
        qty=draw(st.integers(min_value=1, max_value=_EXACT)),
        station=draw(_text),
        device=draw(_text),
        observed_at=draw(_text),
        clock=ClockStamp(
            synced=draw(st.booleans()),
            boot_id=draw(_text),
            mono_ns=draw(st.integers(min_value=0, max_value=_I64)),
        ),
        seq=draw(st.none() | st.integers(min_value=1, max_value=_EXACT)),
        uom=draw(_text),
        from_=from_,
        to=to,
        reason=draw(st.none() | _text),
        operator=draw(st.none() | _text),
        ref=draw(st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3)),
        evidence=draw(st.dictionaries(st.text(max_size=10), _json, max_size=4)),
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"qty": 2**70},
        {"seq": 2**64},
        {"clock": {"synced": True, "boot_id": "b", "mono_ns": 2**64}},
        {"evidence": {"count": 2**70}},
        {"evidence": {"confidence": float("inf")}},
        {"lot_surrogate": True},
    ],
    ids=["qty", "seq", "mono_ns", "evidence-big-int", "evidence-infinity", "lone-surrogate"],
)
def test_what_from_json_accepts_can_be_written_back(fields: dict[str, Any]) -> None:
    """The JSON forms round-trip exactly: a movement read from JSON can be written as JSON,
    or else reading it is refused with the field named."""
    if fields.pop("lot_surrogate", False):
        fields["item"] = {"gtin": GTIN, "lot": "L\ud800"}
    text = json.dumps(movement_dict(**fields))
    try:
        movement = Movement.from_json(text)
    except ValueError as exc:
        assert str(exc).startswith("movement."), exc
        return
    assert Movement.from_json(movement.to_json()) == movement


def test_what_read_from_json_accepts_can_be_written_back() -> None:
    text = json.dumps({**make_read().to_dict(), "rssi": float("-inf")})
    try:
        read = Read.from_json(text)
    except ValueError as exc:
        assert str(exc).startswith("read.rssi"), exc
        return
    assert Read.from_json(read.to_json()) == read


@given(movements())
def test_any_valid_movement_round_trips(movement: Movement) -> None:
    text = movement.to_json()
    again = Movement.from_json(text)
    assert again == movement
    assert again.to_json() == text


@given(
    data=st.binary(max_size=300),
    symbology=st.none() | st.sampled_from(["]C1", "]d2", "]Q3", "]E0"]),
    antenna=st.none() | st.integers(min_value=1, max_value=64),
    rssi=st.none() | st.floats(min_value=-120, max_value=0),
)
def test_any_read_round_trips(
    data: bytes, symbology: str | None, antenna: int | None, rssi: float | None
) -> None:
    read = make_read(data=data, symbology=symbology, antenna=antenna, rssi=rssi)
    assert Read.from_json(read.to_json()) == read
