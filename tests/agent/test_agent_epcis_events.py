"""Movements as EPCIS 2.0 ObjectEvents: every kind, validated against GS1's JSON Schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.epcis import (
    EpcisPlaces,
    MappingError,
    document,
    item_from_class,
    item_from_epc,
    to_event,
)
from agent.epcis.identifiers import gtin_class_uri, lgtin_uri, sgtin_uri
from agent.model import Movement
from tests.epcis_schema import errors

GTIN = "00614141123452"  # GS1's example: company prefix 0614141 (7 digits)
DOCK_SGLN = "urn:epc:id:sgln:0614141.00777.0"
PLACES = EpcisPlaces(
    stations={"recv-1": DOCK_SGLN},
    default_read_point="urn:epc:id:sgln:0614141.00001.0",
    timezone="Europe/Paris",
)
CREATED = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def mv(
    kind: str, qty: int = 1, item: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "agent": "dock-1",
        "seq": 7,
        "kind": kind,
        "item": {"gtin": GTIN} if item is None else item,
        "qty": qty,
        "uom": "EA",
        "station": "recv-1",
        "device": "scanner-1",
        "observed_at": "2026-07-01T10:00:00.123456Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": 1},
        "ref": {},
        "evidence": {},
        **{("from" if k == "from_" else k): v for k, v in fields.items()},
    }
    Movement.from_dict(out)  # every fixture is a movement the agent could make
    return out


def valid(event: dict[str, Any]) -> dict[str, Any]:
    doc = document([event], CREATED)
    assert errors(doc) == []
    standalone = {"@context": doc["@context"], **event}
    assert errors(standalone) == []
    return event


CASES = [
    ("receive", {"to": "DOCK"}, "ADD", "receiving", "in_progress"),
    ("ship", {"from": "DOCK"}, "OBSERVE", "shipping", "in_transit"),
    ("return", {"to": "DOCK", "reason": "restock"}, "ADD", "receiving", "sellable_accessible"),
    ("return", {"to": "DOCK", "reason": "damaged"}, "ADD", "receiving", "damaged"),
    ("return", {"to": "DOCK", "reason": "quarantine"}, "ADD", "receiving", "non_sellable_other"),
    ("return", {"to": "DOCK"}, "ADD", "receiving", "returned"),
    ("transfer", {"from": "DOCK", "to": "A-01"}, "OBSERVE", "storing", "sellable_accessible"),
    ("count", {"to": "A-01"}, "OBSERVE", "cycle_counting", None),
    ("adjust", {"from": "A-01", "reason": "scrap"}, "DELETE", "destroying", "destroyed"),
    ("adjust", {"to": "A-01", "reason": "found"}, "ADD", "stocking", "sellable_accessible"),
]


@pytest.mark.parametrize(("kind", "fields", "action", "step", "disposition"), CASES)
def test_every_kind_maps_and_validates(
    kind: str, fields: dict[str, str], action: str, step: str, disposition: str | None
) -> None:
    m = mv(kind, 5, **fields)
    event = valid(to_event(m, PLACES))
    assert (event["action"], event["bizStep"], event.get("disposition")) == (
        action,
        step,
        disposition,
    )
    assert event["eventID"] == f"urn:uuid:{m['id']}"
    assert event["quantityList"] == [{"epcClass": gtin_class_uri(GTIN), "quantity": 5}]
    assert event["readPoint"] == {"id": DOCK_SGLN}
    # where the goods are after the event: none for what left (shipped, destroyed)
    assert ("bizLocation" in event) == (action != "DELETE" and kind != "ship")
    ext = event["edgetally:movement"]
    assert (ext["kind"], ext.get("from"), ext.get("to")) == (kind, m.get("from"), m.get("to"))


def test_time_and_offset_follow_the_site_zone() -> None:
    summer = to_event(mv("receive", to="D"), PLACES)
    winter = to_event(mv("receive", to="D", observed_at="2026-01-10T10:00:00Z"), PLACES)
    assert summer["eventTime"] == "2026-07-01T10:00:00.123456Z"
    assert (summer["eventTimeZoneOffset"], winter["eventTimeZoneOffset"]) == ("+02:00", "+01:00")
    ny = to_event(mv("receive", to="D"), EpcisPlaces(timezone="America/New_York"))
    assert ny["eventTimeZoneOffset"] == "-04:00"
    with pytest.raises(MappingError, match="Mars/Olympus"):
        to_event(mv("receive", to="D"), EpcisPlaces(timezone="Mars/Olympus"))


def test_serialised_units_go_in_epc_list() -> None:
    sgtin = valid(to_event(mv("receive", item={"gtin": GTIN, "serial": "S/1"}, to="D"), PLACES))
    assert sgtin["epcList"] == ["urn:epc:id:sgtin:0614141.012345.S%2F1"]
    assert "quantityList" not in sgtin
    assert item_from_epc(sgtin["epcList"][0]) == {
        "gtin": GTIN,
        "serial": "S/1",
        "epc": "urn:epc:id:sgtin:0614141.012345.S%2F1",
    }
    sscc = valid(to_event(mv("ship", item={"sscc": "106141412345678908"}, from_="D"), PLACES))
    assert sscc["epcList"] == ["urn:epc:id:sscc:0614141.1234567890"]
    grai = "urn:epc:id:grai:0614141.12345.400"
    raw = valid(to_event(mv("transfer", item={"epc": grai}, **{"from": "A", "to": "B"}), PLACES))
    assert raw["epcList"] == [grai]


def test_counted_goods_with_a_lot_use_lgtin() -> None:
    event = valid(to_event(mv("receive", 12, item={"gtin": GTIN, "lot": "L42"}, to="D"), PLACES))
    assert event["quantityList"] == [{"epcClass": lgtin_uri(GTIN, "L42"), "quantity": 12}]
    assert item_from_class(lgtin_uri(GTIN, "L42")) == {"gtin": GTIN, "lot": "L42"}
    kg = valid(to_event(mv("receive", 3, uom="KGM", to="D"), PLACES))
    assert kg["quantityList"][0]["uom"] == "KGM"


def test_sku_only_items_get_a_private_class() -> None:
    event = valid(to_event(mv("receive", 2, item={"sku": "BOLT M6/20"}, to="D"), PLACES))
    assert event["quantityList"][0]["epcClass"] == "urn:edgetally:sku:BOLT%20M6%2F20"
    assert item_from_class(event["quantityList"][0]["epcClass"]) == {"sku": "BOLT M6/20"}


def test_a_portal_pass_lists_its_epcs_and_a_zone_move_is_transporting() -> None:
    epcs = [sgtin_uri(GTIN, str(n)) for n in range(3)]
    m = mv(
        "receive",
        3,
        to="D",
        evidence={"epcs": epcs, "antennas": [1, 2], "direction": "in"},
    )
    event = valid(to_event(m, PLACES))
    assert (event["action"], event["epcList"]) == ("ADD", epcs)
    moved = valid(
        to_event(
            mv(
                "transfer",
                item={"gtin": GTIN, "serial": "9"},
                evidence={"antennas": [3]},
                **{"from": "A", "to": "B"},
            ),
            PLACES,
        )
    )
    assert (moved["bizStep"], moved["disposition"]) == ("transporting", "in_transit")


def test_a_count_close_is_an_empty_observation() -> None:
    m = mv("count_close", 2, item={}, to="A-01", evidence={"counted": [GTIN, "SKU-1"]})
    event = valid(to_event(m, PLACES))
    assert event["epcList"] == [] and event["bizStep"] == "cycle_counting"
    assert event["edgetally:movement"]["counted"] == [GTIN, "SKU-1"]


def test_references_become_business_transactions_and_places_fall_back() -> None:
    m = mv(
        "receive", to="D", station="elsewhere", ref={"po": "4500 01", "asn": "A1", "session": "x"}
    )
    event = valid(to_event(m, PLACES))
    assert event["bizTransactionList"] == [
        {"type": "desadv", "bizTransaction": "urn:edgetally:ref:asn:A1"},
        {"type": "po", "bizTransaction": "urn:edgetally:ref:po:4500%2001"},
    ]
    assert event["readPoint"] == event["bizLocation"] == {"id": PLACES.default_read_point}
    bare = valid(to_event(mv("receive", to="D"), EpcisPlaces()))
    assert "readPoint" not in bare and "bizLocation" not in bare


@pytest.mark.parametrize(
    ("item", "qty", "why"),
    [
        ({"sscc": "106141412345678908"}, 2, "unit-level identity"),
        ({"gtin": "123"}, 1, "GTIN '123'"),
        ({"gtin": GTIN, "lot": "bad lot"}, 1, "no LGTIN"),
    ],
)
def test_what_cannot_be_an_event_says_why(item: dict[str, str], qty: int, why: str) -> None:
    with pytest.raises(MappingError, match=why):
        to_event(mv("receive", qty, item=item, to="D"), PLACES)


def test_the_schema_check_can_fail() -> None:
    event = to_event(mv("receive", to="D"), PLACES)
    bad = {**event, "bizStep": "urn:epcglobal:cbv:bizstep:receiving", "eventTime": "noon"}
    found = errors(document([bad], CREATED))
    assert any("eventTime" in e for e in found) and any("bizStep" in e for e in found)


# -- random valid movements always give schema-valid events ----------------------------

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
)
_serial = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdef0123456789-/._", min_size=1, max_size=20)
_gtin = st.sampled_from(["00614141123452", "04012345123456", "09506000134352", "00000012345670"])


@st.composite
def movements(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["receive", "ship", "transfer", "return", "count", "adjust"]))
    shape = draw(st.sampled_from(["gtin", "lot", "serial", "sscc", "sku"]))
    item: dict[str, str] = {
        "gtin": {"gtin": draw(_gtin)},
        "lot": {"gtin": draw(_gtin), "lot": draw(_serial)},
        "serial": {"gtin": draw(_gtin), "serial": draw(_serial)},
        "sscc": {"sscc": "106141412345678908"},
        "sku": {"sku": draw(_text)},
    }[shape]
    unit = shape in ("serial", "sscc")
    qty = 1 if unit and shape == "sscc" else draw(st.integers(0 if kind == "count" else 1, 10**6))
    locations: dict[str, str] = {
        "receive": {"to": "D"},
        "ship": {"from": "D"},
        "transfer": {"from": "D", "to": "A"},
        "return": {
            "to": "D",
            "reason": draw(st.sampled_from(["restock", "damaged", "quarantine", "x"])),
        },
        "count": {"to": "A"},
        "adjust": draw(st.sampled_from([{"from": "A"}, {"to": "A"}])),
    }[kind]
    when = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)))
    return mv(
        kind,
        qty,
        item=item,
        station=draw(st.sampled_from(["recv-1", "other"])),
        observed_at=when.isoformat() + "Z",
        ref=draw(
            st.dictionaries(st.sampled_from(["po", "asn", "order", "note"]), _text, max_size=3)
        ),
        uom=draw(st.sampled_from(["EA", "KGM", "MTR"])),
        **locations,
    )


@settings(max_examples=150, deadline=None)
@given(movements(), st.sampled_from(["UTC", "Europe/Paris", "Asia/Kolkata", "America/St_Johns"]))
def test_random_movements_always_give_valid_events(m: dict[str, Any], zone: str) -> None:
    event = to_event(m, EpcisPlaces(stations={"recv-1": DOCK_SGLN}, timezone=zone))
    assert errors(document([event], CREATED)) == []
    assert event["eventID"] == f"urn:uuid:{m['id']}"
    item = m["item"]
    if "epcList" in event and item.get("serial"):
        back = item_from_epc(event["epcList"][0])
        assert (back["gtin"], back["serial"]) == (item["gtin"], item["serial"])
    elif "quantityList" in event:
        back = item_from_class(event["quantityList"][0]["epcClass"])
        assert back == {k: v for k, v in item.items() if k in ("gtin", "lot", "sku")} or (
            back == {"gtin": item["gtin"]} and "serial" in item
        )
