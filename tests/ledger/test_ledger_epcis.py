"""EPCIS 2.0 capture and query in the reference ledger, on both backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from agent.epcis import EpcisPlaces, document, to_event
from agent.epcis.identifiers import gtin_class_uri, lgtin_uri, sgtin_uri
from ledger.store import SqlStore
from tests.epcis_schema import errors
from tests.ledger.conftest import AGENT, GTIN, MakeMovement

SGLN = "urn:epc:id:sgln:9506000.13435.0"
PLACES = EpcisPlaces(stations={"recv-1": SGLN})
PROCEED = {"GS1-Capture-Error-Behaviour": "proceed"}


def doc(*events: dict[str, Any]) -> dict[str, Any]:
    return document(list(events), datetime(2026, 5, 1, tzinfo=UTC))


def event(m: dict[str, Any]) -> dict[str, Any]:
    return to_event(m, PLACES)


async def capture(
    client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST /epcis/capture, then follow the Location to the job."""
    r = await client.post("/epcis/capture", json=body, headers=headers or {})
    assert r.status_code == 202, r.text
    assert r.headers["GS1-EPCIS-Version"] == "2.0.0"
    location = r.headers["Location"]
    assert location.startswith("/epcis/capture/")
    job = await client.get(location)
    assert job.status_code == 200
    out: dict[str, Any] = job.json()
    assert out["running"] is False and out["captureID"] == location.rsplit("/", 1)[1]
    return out


async def events(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/epcis/events", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert errors(body) == []  # every answer is a valid EPCISQueryDocument
    return list(body["epcisBody"]["queryResults"]["resultsBody"]["eventList"])


def stock(store: SqlStore) -> dict[tuple[str, str], int]:
    return {(r["item"], r["location"]): r["qty"] for r in store.stock(None, None)}


async def test_every_kind_is_captured_as_its_movement(
    client: httpx.AsyncClient, store: SqlStore, mv: MakeMovement, reader: httpx.AsyncClient
) -> None:
    lot_item = {"gtin": GTIN, "lot": "L1"}
    moves = [
        mv("receive", 10, item=lot_item),
        mv("receive", 1, item={"gtin": GTIN, "serial": "S1"}),
        mv("transfer", 4, item=lot_item),
        mv("ship", 2, item=lot_item),
        mv("return", 1, item=lot_item),
        mv("count", 3, item=lot_item, to="A-01"),
        mv("adjust", 1, item=lot_item, to=None, from_="A-01", reason="scrap"),
        mv("adjust", 2, item=lot_item, reason="found"),
    ]
    job = await capture(client, doc(*[event(m) for m in moves]))
    assert job["success"] is True and job["errors"] == []
    assert job["edgetally:captured"] == len(moves)
    journal, _ = store.journal(AGENT, 0, 100)
    agent_rows = [e for e in journal if e["source"] == "agent"]
    assert [e["id"] for e in agent_rows] == [m["id"] for m in moves]  # urn:uuid:<id> -> id
    for sent, kept in zip(moves, agent_rows, strict=True):
        for key in ("kind", "qty", "from", "to", "station", "reason", "seq"):
            assert kept[key] == sent.get(key), key
        # an SGTIN comes back with its EPC besides the GTIN and serial it was made of
        assert {k: v for k, v in kept["item"].items() if k != "epc"} == sent["item"]
    # receive 10 + 1 - transfer 4 - ship 2 + return 1 + found 2 at DOCK-3;
    # A-01: +4, counted 3, scrapped 1
    assert stock(store) == {(GTIN, "DOCK-3"): 8, (GTIN, "A-01"): 2}
    kept_events = await events(reader)
    assert [e["eventID"] for e in kept_events] == [f"urn:uuid:{m['id']}" for m in moves]
    assert all("recordTime" in e for e in kept_events)


async def test_a_resend_is_a_duplicate_and_other_content_is_that_events_error(
    client: httpx.AsyncClient, store: SqlStore, mv: MakeMovement
) -> None:
    a, b = event(mv("receive", 5)), event(mv("receive", 7))
    await capture(client, doc(a, b))
    again = await capture(client, doc(a, b))
    assert again["success"] is True
    assert again["edgetally:duplicates"] == [a["eventID"], b["eventID"]]
    assert stock(store) == {(GTIN, "DOCK-3"): 12}
    changed = {**a, "quantityList": [{"epcClass": gtin_class_uri(GTIN), "quantity": 6}]}
    c = event(mv("receive", 1))
    job = await capture(client, doc(changed, c), PROCEED)
    assert job["success"] is False
    assert [(e["instance"], e["detail"]) for e in job["errors"]] == [
        (a["eventID"], "eventID already captured with other content")
    ]
    assert stock(store) == {(GTIN, "DOCK-3"): 13}  # c went in: proceed
    assert len(store.journal(AGENT, 0, 100)[0]) == 3


async def test_rollback_keeps_nothing_of_a_document_with_an_error(
    client: httpx.AsyncClient, store: SqlStore, mv: MakeMovement, reader: httpx.AsyncClient
) -> None:
    good, bad = event(mv("receive", 5)), event(mv("receive", 1))
    bad["bizStep"] = "inspecting"
    bad.pop("edgetally:movement")
    job = await capture(client, doc(good, bad))  # rollback: the standard's default
    assert (job["success"], job["captureErrorBehaviour"], job["edgetally:captured"]) == (
        False,
        "rollback",
        0,
    )
    assert "bizStep 'inspecting'" in job["errors"][0]["detail"]
    assert stock(store) == {} and await events(reader) == []
    job = await capture(client, doc(good), {"GS1-Capture-Error-Behaviour": "rollback"})
    assert job["success"] is True and stock(store) == {(GTIN, "DOCK-3"): 5}


def _foreign(**changes: Any) -> dict[str, Any]:
    """Adapted from GS1's Example 9.6.2: another reader's event, no EdgeTally extension."""
    out = {
        "type": "ObjectEvent",
        "eventID": "ni:///sha-256;a98f08ae6ac4de3482054314d637c07010b448d3802dccb028a06aafcc6a4b10?ver=CBV2.0",
        "eventTime": "2013-06-08T14:58:56.591+02:00",
        "eventTimeZoneOffset": "+02:00",
        "action": "OBSERVE",
        "bizStep": "receiving",
        "disposition": "in_progress",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
        "bizLocation": {"id": "urn:epc:id:sgln:0614141.00888.0"},
        "quantityList": [
            {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200, "uom": "KGM"}
        ],
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "urn:epc:id:gdti:0614141.00001.1618034"}
        ],
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


async def test_another_readers_events_are_read_by_their_standard_fields(
    client: httpx.AsyncClient, store: SqlStore
) -> None:
    received = _foreign()
    shipped = _foreign(
        eventID="urn:uuid:00000000-0000-4000-8000-000000000001",
        bizStep="departing",
        disposition="in_transit",
        readPoint={"id": "urn:epc:id:sgln:0614141.00888.0"},
        bizLocation=None,
        epcList=[sgtin_uri("04012345123456", str(n)) for n in range(3)],
        quantityList=None,
    )
    assert errors(doc(received, shipped)) == []
    job = await capture(client, doc(received, shipped))
    assert job["success"] is True, job["errors"]
    journal = {e["kind"]: e for e in store.journal(AGENT, 0, 10)[0]}
    assert journal["receive"]["item"] == {"gtin": "04012345123456", "lot": "998877"}
    assert (journal["receive"]["qty"], journal["receive"]["uom"]) == (200, "KGM")
    assert journal["receive"]["observed_at"] == "2013-06-08T12:58:56.591000Z"
    assert journal["receive"]["ref"] == {"po": "urn:epc:id:gdti:0614141.00001.1618034"}
    assert journal["ship"]["id"] == "00000000-0000-4000-8000-000000000001"
    assert journal["ship"]["qty"] == 3 and len(journal["ship"]["evidence"]["epcs"]) == 3
    assert stock(store) == {("04012345123456", "urn:epc:id:sgln:0614141.00888.0"): 197}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"bizStep": "repairing"}, "bizStep 'repairing': no movement for it"),
        ({"quantityList": [{"epcClass": lgtin_uri(GTIN, "L1")}]}, "quantity: required"),
        ({"quantityList": [{"epcClass": lgtin_uri(GTIN, "L1"), "quantity": 2.5}]}, "whole number"),
        ({"type": "AggregationEvent"}, "ObjectEvents only"),
        ({"eventID": None}, "eventID: required"),
        ({"eventTime": "yesterday"}, "eventTime: 'yesterday' is not an ISO 8601"),
        ({"epcList": ["urn:epc:id:sgtin:x"], "quantityList": None}, "EPC 'urn:epc:id:sgtin:x'"),
        (
            {"quantityList": [{"epcClass": "urn:example:thing", "quantity": 1}]},
            "epcClass 'urn:example:thing'",
        ),
    ],
)
async def test_events_that_are_no_movement_are_errors_with_the_reason(
    client: httpx.AsyncClient,
    store: SqlStore,
    change: dict[str, Any],
    reason: str,
    reader: httpx.AsyncClient,
) -> None:
    bad = _foreign(**change)
    ok = _foreign(eventID="urn:uuid:00000000-0000-4000-8000-000000000002")
    job = await capture(client, doc(bad, ok), PROCEED)
    assert job["success"] is False
    [error] = job["errors"]
    assert reason in error["detail"] and error["edgetally:index"] == 0
    assert error["type"] == "epcisException:ValidationException"
    assert [e["eventID"] for e in await events(reader)] == [ok["eventID"]]


async def test_the_same_movement_from_both_sinks_is_booked_once(
    client: httpx.AsyncClient, store: SqlStore, mv: MakeMovement
) -> None:
    m = mv("receive", 4)
    r = await client.post("/v1/movements", json={"agent": AGENT, "movements": [m]})
    assert r.json()["results"][0]["status"] == "applied"
    job = await capture(client, doc(event(m)))
    assert job["success"] is True and job["edgetally:duplicates"] == [f"urn:uuid:{m['id']}"]
    assert stock(store) == {(GTIN, "DOCK-3"): 4}
    other = copy.deepcopy(m)
    other["qty"] = 9
    job = await capture(client, doc({**event(other), "eventID": f"urn:uuid:{m['id']}"}), PROCEED)
    assert job["errors"][0]["detail"] == "eventID already captured with other content"
    # a new eventID string (the same uuid, other case) for a movement with other content
    job = await capture(
        client, doc({**event(other), "eventID": f"urn:uuid:{m['id'].upper()}"}), PROCEED
    )
    assert "in the journal already, with other content" in job["errors"][0]["detail"]


async def test_queries_filter_and_page(
    client: httpx.AsyncClient, mv: MakeMovement, reader: httpx.AsyncClient
) -> None:
    serial = mv("receive", item={"gtin": GTIN, "serial": "S/9"}, observed_at="2026-05-01T08:00:00Z")
    counted = mv("count", 3, item={"gtin": GTIN, "lot": "L7"}, observed_at="2026-05-01T09:00:00Z")
    shipped = mv("ship", 1, observed_at="2026-05-01T10:00:00Z")
    await capture(client, doc(*[event(m) for m in (serial, counted, shipped)]))
    ids = {m["id"]: f"urn:uuid:{m['id']}" for m in (serial, counted, shipped)}

    async def found(**params: Any) -> list[str]:
        return [e["eventID"] for e in await events(reader, **params)]

    assert await found(EQ_bizStep="receiving") == [ids[serial["id"]]]
    assert await found(EQ_bizStep="receiving,shipping") == [ids[serial["id"]], ids[shipped["id"]]]
    assert await found(eventType="ObjectEvent", GE_eventTime="2026-05-01T09:00:00Z") == [
        ids[counted["id"]],
        ids[shipped["id"]],
    ]
    assert await found(LT_eventTime="2026-05-01T10:30:00+01:00") == [
        ids[serial["id"]],
        ids[counted["id"]],
    ]
    assert await found(eventType="AggregationEvent") == []
    assert await found(MATCH_epc=sgtin_uri(GTIN, "S/9")) == [ids[serial["id"]]]
    assert await found(MATCH_epc="urn:epc:idpat:sgtin:0614141.012345.*") == []  # other GTIN
    assert await found(MATCH_epc=gtin_class_uri(GTIN)) == [ids[serial["id"]]]
    assert await found(MATCH_epcClass=gtin_class_uri(GTIN)) == [
        ids[counted["id"]],
        ids[shipped["id"]],
    ]
    assert await found(MATCH_epcClass=lgtin_uri(GTIN, "L7")) == [ids[counted["id"]]]
    r = await reader.get("/epcis/events", params={"perPage": 2})
    assert len(r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) == 2
    link = r.headers["Link"]
    assert link.endswith('; rel="next"')
    assert (await client.get("/epcis/events")).status_code == 403  # every agent's: a reader
    rest = await reader.get(link[1 : link.index(">")])
    assert [
        e["eventID"] for e in rest.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    ] == [ids[shipped["id"]]]
    assert "Link" not in rest.headers
    for params, what in [
        ({"GE_eventTime": "soon"}, "GE_eventTime"),
        ({"perPage": "0"}, "perPage"),
        ({"EQ_action": "ADD"}, "EQ_action: not a query parameter"),
    ]:
        r = await reader.get("/epcis/events", params=params)
        assert r.status_code == 400 and what in r.json()["detail"]
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_documents_the_ledger_cannot_read_are_refused_whole(
    client: httpx.AsyncClient, store: SqlStore
) -> None:
    r = await client.post(
        "/epcis/capture", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = await client.post("/epcis/capture", json={"type": "Pallet"})
    assert r.status_code == 400 and "EPCISDocument" in r.json()["detail"]
    r = await client.post("/epcis/capture", json={"type": "EPCISDocument", "epcisBody": {}})
    assert r.status_code == 400 and "eventList" in r.json()["detail"]
    r = await client.post(
        "/epcis/capture", content=b"<xml/>", headers={"Content-Type": "application/xml"}
    )
    assert r.status_code == 415
    r = await client.post(
        "/epcis/capture", json=doc(), headers={"GS1-Capture-Error-Behaviour": "all"}
    )
    assert r.status_code == 400 and "rollback or proceed" in r.json()["detail"]
    r = await client.options("/epcis/capture")
    assert r.status_code == 204 and r.headers["GS1-EPCIS-Capture-Limit"] == "10000"
    assert stock(store) == {}


async def test_capture_is_for_an_agent_token_and_jobs_are_the_agents_own(
    client: httpx.AsyncClient, store: SqlStore, mv: MakeMovement
) -> None:
    async with httpx.AsyncClient(transport=client._transport, base_url="http://ledger") as anon:
        assert (await anon.post("/epcis/capture", json=doc())).status_code == 401
        assert (await anon.get("/epcis/events")).status_code == 401
    r = await client.post("/epcis/capture", json=doc(event(mv("receive"))))
    other = store.add_agent("dock-9")
    async with httpx.AsyncClient(
        transport=client._transport,
        base_url="http://ledger",
        headers={"Authorization": f"Bearer {other}"},
    ) as them:
        assert (await them.get(r.headers["Location"])).status_code == 404
    assert (await client.get("/epcis/capture/nope")).status_code == 404


async def test_openapi_describes_the_epcis_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/epcis/capture"]) == {"post", "options"}
    assert "get" in paths["/epcis/capture/{captureID}"]
    params = {p["name"] for p in paths["/epcis/events"]["get"]["parameters"]}
    assert {"eventType", "EQ_bizStep", "GE_eventTime", "LT_eventTime", "MATCH_epc"} <= params


async def test_text_that_is_not_unicode_is_that_events_error(
    client: httpx.AsyncClient, store: SqlStore, reader: httpx.AsyncClient
) -> None:
    bad = _foreign(**{"example:note": "\ud800"})
    worse = _foreign(eventID="urn:x:\udfff", bizStep="\udfff")
    ok = _foreign(eventID="urn:uuid:00000000-0000-4000-8000-000000000003")
    body = json.dumps(doc(bad, worse, ok))  # json escapes the lone surrogates as \\udxxx
    r = await client.post(
        "/epcis/capture",
        content=body.encode(),
        headers={"Content-Type": "application/json", **PROCEED},
    )
    assert r.status_code == 202
    job = (await client.get(r.headers["Location"])).json()
    assert [e["edgetally:index"] for e in job["errors"]] == [0, 1]
    assert "lone surrogate" in job["errors"][0]["detail"]
    assert job["errors"][1]["instance"] == "#/epcisBody/eventList/1"
    assert [e["eventID"] for e in await events(reader)] == [ok["eventID"]]


def test_concurrent_captures_of_one_document_book_each_event_once(
    store: SqlStore, token: str, mv: MakeMovement
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    events_ = [event(mv("receive", 1 + n % 3)) for n in range(40)]
    with ThreadPoolExecutor(4) as pool:
        jobs = list(pool.map(lambda _: store.epcis_capture(AGENT, events_, "proceed"), range(4)))
    assert all(j["success"] for j in jobs), [j["errors"] for j in jobs]
    assert sum(j["edgetally:captured"] for j in jobs) == 40
    assert sum(len(j["edgetally:duplicates"]) for j in jobs) == 3 * 40
    journal = store.journal(AGENT, 0, 1000)[0]
    assert sorted(e["id"] for e in journal) == sorted(e["eventID"][9:] for e in events_)
    assert stock(store) == {(GTIN, "DOCK-3"): sum(1 + n % 3 for n in range(40))}


async def test_a_captured_movement_is_booked_as_one_posted_to_v1(
    client: httpx.AsyncClient, store: SqlStore, mv: MakeMovement, reader: httpx.AsyncClient
) -> None:
    """The agent's locations and the valuation apply to what arrives as an event too."""
    store.set_locations(AGENT, ["DOCK-3"])
    inside = mv("receive", 4, unit_cost="2.50", currency="EUR")
    outside = mv("receive", 1, to="B-07")
    job = await capture(client, doc(event(inside), event(outside)), PROCEED)
    assert [e["instance"] for e in job["errors"]] == [f"urn:uuid:{outside['id']}"]
    assert "may not move stock there" in job["errors"][0]["detail"]
    assert stock(store) == {(GTIN, "DOCK-3"): 4}
    r = await reader.get("/v1/entries", params={"movement": inside["id"]})
    [entry] = r.json()["entries"]
    assert [(ln["account"], ln["debit"], ln["credit"]) for ln in entry["lines"]] == [
        ("1300", "10.00", "0.00"),  # Inventory, at the receipt's own cost
        ("2150", "0.00", "10.00"),  # Goods received not invoiced
    ]
