"""The ledger's reading of EPCIS events, with no store: EdgeTally's own events come back
as the movements they were made from; anything else is a reason, never a crash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.epcis import EpcisPlaces, to_event
from agent.model import Movement
from ledger.epcis.convert import EventRefused, convert
from ledger.epcis.store import prepare
from tests.agent.test_agent_epcis_events import movements

PLACES = EpcisPlaces(
    stations={"recv-1": "urn:epc:id:sgln:0614141.00777.0"}, timezone="Asia/Kolkata"
)


@settings(max_examples=150, deadline=None)
@given(movements())
def test_an_agents_event_reads_back_as_its_movement(m: dict[str, Any]) -> None:
    back = convert(to_event(m, PLACES), m["agent"]).movement
    sent = Movement.from_dict(m)
    assert back.id == sent.id and back.seq == sent.seq
    assert (back.kind, back.qty, back.uom, back.from_, back.to, back.reason) == (
        sent.kind, sent.qty, sent.uom, sent.from_, sent.to, sent.reason,
    )  # fmt: skip
    assert back.item.key() == sent.item.key()
    # a serial moves in epcList one unit at a time; with another qty (a count of 0)
    # the event counts the product class, and the serial stays with the agent
    dropped = {"epc"} | ({"serial"} if sent.qty != 1 else set())
    assert {k: v for k, v in back.item.to_dict().items() if k != "epc"} == {
        k: v for k, v in sent.item.to_dict().items() if k not in dropped
    }
    assert datetime.fromisoformat(back.observed_at) == datetime.fromisoformat(sent.observed_at)
    assert {k: v for k, v in back.ref.items()} == {
        k: v for k, v in sent.ref.items() if k in ("po", "asn", "order")
    }


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["type", "eventID", "eventTime", "action", "bizStep", "disposition", "epcList",
     "quantityList", "readPoint", "bizLocation", "bizTransactionList", "edgetally:movement"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=10) | _json)
def test_any_json_is_a_movement_or_a_reason(event: Any) -> None:
    try:
        convert(event, "dock-1")
    except EventRefused as exc:
        assert str(exc)
    [p] = prepare([event], "dock-1", "2026-01-01T00:00:00Z")
    assert (p.converted is None) != (p.error is None)


@settings(max_examples=500, deadline=None)
@given(movements(), _keys, _json)
def test_a_damaged_agent_event_is_a_movement_or_a_reason(
    m: dict[str, Any], key: str, value: Any
) -> None:
    event = {**to_event(m, PLACES), key: value}
    [p] = prepare([event], m["agent"], "2026-01-01T00:00:00Z")
    assert (p.converted is None) != (p.error is None)


_ext_keys = st.sampled_from(
    ["kind", "from", "to", "reason", "uom", "station", "device", "operator", "agent", "seq",
     "counted"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(movements(), _ext_keys, _json)
def test_a_damaged_extension_is_a_movement_or_a_reason(
    m: dict[str, Any], key: str, value: Any
) -> None:
    event = to_event(m, PLACES)
    event["edgetally:movement"] = {**event["edgetally:movement"], key: value}
    [p] = prepare([event], m["agent"], "2026-01-01T00:00:00Z")
    assert (p.converted is None) != (p.error is None)
