"""The ledger's HTTP protocol, in-process through httpx.ASGITransport over a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agent.sync import http_ledger
from ledger.app import create_app
from ledger.store import SqlStore

AGENT = "dock-3"


def batch(*movements: dict[str, Any], agent: str = AGENT) -> dict[str, Any]:
    return {"agent": agent, "movements": list(movements)}


async def stock(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    r = await client.get("/v1/stock", params=params)
    assert r.status_code == 200
    rows: list[dict[str, Any]] = r.json()["stock"]
    return rows


async def test_post_applies_and_answers_per_movement(
    reader: httpx.AsyncClient, client: httpx.AsyncClient, mv: Any
) -> None:
    ms = [mv("receive", 10), mv("ship", 3), mv("receive", 0)]
    r = await client.post(
        "/v1/movements", json=batch(*ms), headers={"Idempotency-Key": '"batch-1"'}
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [(x["id"], x["status"]) for x in results] == [
        (ms[0]["id"], "applied"),
        (ms[1]["id"], "applied"),
        (ms[2]["id"], "rejected"),
    ]
    assert "qty" in results[2]["reason"] and "reason" not in results[0]
    assert await stock(reader) == [{"item": "09506000134352", "location": "DOCK-3", "qty": 7}]


async def test_same_batch_twice_is_duplicate(
    reader: httpx.AsyncClient, client: httpx.AsyncClient, mv: Any
) -> None:
    body = batch(mv("receive", 4), mv("transfer", 1), mv("count", 9, to="B-02"))
    await client.post("/v1/movements", json=body)
    before = await stock(reader)
    r = await client.post("/v1/movements", json=body)
    assert [x["status"] for x in r.json()["results"]] == ["duplicate"] * 3
    assert await stock(reader) == before


async def test_count_variance_is_in_the_journal(client: httpx.AsyncClient, mv: Any) -> None:
    await client.post("/v1/movements", json=batch(mv("receive", 10), mv("count", 8)))
    r = await client.get("/v1/movements")
    entries = r.json()["movements"]
    assert [(e["kind"], e["source"], e["qty"]) for e in entries] == [
        ("receive", "agent", 10),
        ("count", "agent", 8),
        ("adjust", "ledger", 2),
    ]
    assert entries[2]["from"] == "DOCK-3" and entries[2]["reason"] == "count-variance"
    assert [e["pos"] for e in entries] == sorted(e["pos"] for e in entries)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer wrong-token", "bearer nope"],
)
async def test_401_without_a_good_token(
    store: SqlStore, mv: Any, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as c:
        for r in (
            await c.post("/v1/movements", json=batch(mv()), headers=headers),
            await c.get("/v1/stock", headers=headers),
            await c.get("/v1/movements", headers=headers),
        ):
            assert r.status_code == 401
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert isinstance(r.json()["error"], str)
    assert store.stock() == []


async def test_403_when_body_agent_is_not_the_token_agent(
    client: httpx.AsyncClient, store: SqlStore, mv: Any
) -> None:
    store.add_agent("dock-4")
    r = await client.post("/v1/movements", json=batch(mv(agent="dock-4"), agent="dock-4"))
    assert r.status_code == 403 and "error" in r.json()
    assert store.stock() == []


async def test_movement_of_another_agent_is_rejected(client: httpx.AsyncClient, mv: Any) -> None:
    r = await client.post("/v1/movements", json=batch(mv(agent="dock-4"), mv("receive", 2)))
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "applied"]


async def test_a_reader_token_reads_everything(
    client: httpx.AsyncClient, store: SqlStore, mv: Any
) -> None:
    other = store.create_token("site-office", role="reader")
    store.apply_batch("dock-3", [mv("receive", 1)])
    r = await client.get("/v1/stock", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200 and len(r.json()["stock"]) == 1


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_415_unless_json(
    client: httpx.AsyncClient, mv: Any, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = await client.post("/v1/movements", content=json.dumps(batch(mv())), headers=headers)
    assert r.status_code == 415 and "error" in r.json()


async def test_json_with_charset_is_json(client: httpx.AsyncClient, mv: Any) -> None:
    r = await client.post(
        "/v1/movements",
        content=json.dumps(batch(mv())),
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert r.status_code == 200


async def test_413_by_content_length_and_by_bytes_read(
    store: SqlStore, token: str, mv: Any
) -> None:
    app = create_app(store, max_body_bytes=1000)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps(batch(*[mv() for _ in range(10)])).encode()
    sent: list[int] = []

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100):
            sent.append(i)
            yield body[i : i + 100]

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ledger", headers=headers
    ) as c:
        r = await c.post("/v1/movements", content=body)
        assert r.status_code == 413 and "error" in r.json()
        r = await c.post("/v1/movements", content=chunked())  # no Content-Length
        assert r.status_code == 413
        small = await c.post("/v1/movements", content=json.dumps(batch(mv())).encode())
        assert small.status_code == 200
    assert store.stock()[0]["qty"] == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe\xfa", "UTF-8"),
        (b"[]", "object"),
        (b'"text"', "object"),
        (b'{"agent": "dock-3"}', "movements"),
        (b'{"agent": "dock-3", "movements": []}', "movements"),
        (b'{"agent": "dock-3", "movements": {}}', "movements"),
        (b'{"movements": [{}]}', "agent"),
        (b'{"agent": 3, "movements": [{}]}', "agent"),
        (b'{"agent": "dock-3", "movements": [{"qty": NaN}]}', "NaN"),
        (b'{"agent": "dock-3", "movements": [{"qty": 1' + b"0" * 5000 + b"}]}", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "deeply"),
    ],
)
async def test_400_for_bad_bodies(client: httpx.AsyncClient, body: bytes, needle: str) -> None:
    r = await client.post(
        "/v1/movements", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert needle in r.json()["error"]


async def test_400_for_too_many_movements(store: SqlStore, token: str, mv: Any) -> None:
    app = create_app(store, max_batch=3)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://l",
        headers={"Authorization": f"Bearer {token}"},
    ) as c:
        r = await c.post("/v1/movements", json=batch(*[mv() for _ in range(4)]))
        assert r.status_code == 413 and "at most 3" in r.json()["error"]
        r = await c.post("/v1/movements", json=batch(*[mv() for _ in range(3)]))
        assert r.status_code == 200


async def test_text_that_is_not_unicode_is_rejected_not_a_500(
    client: httpx.AsyncClient, mv: Any
) -> None:
    good, odd = mv("receive", 1), mv("receive", 1)
    text = json.dumps(batch(good, odd)).replace('"recv-1"', '"\\ud800"', 1)
    r = await client.post(
        "/v1/movements", content=text, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "applied"]
    weird_key = mv("receive", 1, ref={"\ud800" * 1000: "po"})
    body = json.dumps(batch(weird_key))  # ascii-escaped: a lone surrogate on the wire
    r = await client.post(
        "/v1/movements", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    [result] = r.json()["results"]
    assert result["status"] == "rejected" and len(result["reason"]) <= 300


@pytest.mark.parametrize("sql", ["'; DROP TABLE stock; --", "1' OR '1'='1"])
async def test_sql_looking_strings_are_data(
    reader: httpx.AsyncClient, client: httpx.AsyncClient, mv: Any, sql: str
) -> None:
    r = await client.post(
        "/v1/movements", json=batch(mv("receive", 3, item={"sku": sql}), mv("receive", 1, to=sql))
    )
    assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]
    assert await stock(reader, item=sql) == [{"item": sql, "location": "DOCK-3", "qty": 3}]
    assert await stock(reader, location=sql) == [
        {"item": "09506000134352", "location": sql, "qty": 1}
    ]
    assert len(await stock(reader)) == 2
    r = await reader.get("/v1/movements", params={"agent": sql})
    assert r.json() == {"movements": [], "next": 0}


async def test_stock_filters(reader: httpx.AsyncClient, client: httpx.AsyncClient, mv: Any) -> None:
    await client.post(
        "/v1/movements",
        json=batch(mv("receive", 5), mv("transfer", 2), mv("receive", 1, item="00614141000012")),
    )
    assert [(s["item"], s["location"], s["qty"]) for s in await stock(reader)] == [
        ("00614141000012", "DOCK-3", 1),
        ("09506000134352", "A-01", 2),
        ("09506000134352", "DOCK-3", 3),
    ]
    assert len(await stock(reader, item="09506000134352")) == 2
    assert len(await stock(reader, location="DOCK-3")) == 2
    assert await stock(reader, item="09506000134352", location="A-01") == [
        {"item": "09506000134352", "location": "A-01", "qty": 2}
    ]
    assert await stock(reader, item="nothing") == []


async def test_journal_paging(
    client: httpx.AsyncClient, reader: httpx.AsyncClient, store: SqlStore, mv: Any
) -> None:
    ms = [mv("receive", 1) for _ in range(7)]
    await client.post("/v1/movements", json=batch(*ms))
    store.add_agent("dock-4")
    store.apply_batch("dock-4", [mv("receive", 1, agent="dock-4")])
    seen: list[str] = []
    since = 0
    while True:
        r = await client.get(
            "/v1/movements", params={"agent": AGENT, "since": str(since), "limit": "3"}
        )
        assert r.status_code == 200
        page = r.json()
        if not page["movements"]:
            assert page["next"] == since
            break
        assert len(page["movements"]) <= 3
        seen += [e["id"] for e in page["movements"]]
        since = page["next"]
    assert seen == [m["id"] for m in ms]
    r = await client.get("/v1/movements")  # an agent token: its own journal only
    assert len(r.json()["movements"]) == 7
    r = await reader.get("/v1/movements")
    assert len(r.json()["movements"]) == 8


@pytest.mark.parametrize(
    "params",
    [
        {"since": "-1"},
        {"since": "abc"},
        {"since": "1.5"},
        {"since": "9" * 30},
        {"since": "٣"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "x"},
        {"agent": "a" * 600},
    ],
)
async def test_400_for_bad_query(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    r = await client.get("/v1/movements", params=params)
    assert r.status_code == 400 and "error" in r.json()


async def test_healthz_needs_no_token(store: SqlStore) -> None:
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as c:
        r = await c.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_openapi_describes_the_protocol(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json", headers={"Authorization": ""})
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {
        "/v1/movements",
        "/v1/stock",
        "/v1/agents",
        "/v1/alarms",
        "/healthz",
    }
    assert set(doc["paths"]["/v1/movements"]) == {"get", "post"}
    schemas = doc["components"]["schemas"]
    assert {"Movement", "Result"} <= set(schemas)
    statuses = schemas["Result"]["properties"]["status"]["enum"]
    assert statuses == ["applied", "duplicate", "rejected", "conflict"]
    assert tuple(statuses) == http_ledger._KNOWN  # the agent understands every answer


async def test_unknown_paths_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = await client.delete("/v1/movements")
    assert r.status_code == 405 and "error" in r.json() and "allow" in r.headers


@pytest.mark.parametrize(
    "movement",
    [
        None,
        0,
        "",
        [],
        {"id": None},
        {"id": ["x"]},
        {"id": "a" * 100_000},
        {"item": {"gtin": {"nested": True}}},
        {"qty": True},
        {"qty": 2**70},
        {"clock": None},
        {"evidence": {"deep": [[[[[[[[1]]]]]]]]}},
    ],
)
async def test_nothing_a_client_sends_is_a_500(
    client: httpx.AsyncClient, mv: Any, movement: Any
) -> None:
    if isinstance(movement, dict):
        movement = {**mv(), **movement}
    r = await client.post("/v1/movements", json=batch(movement, mv("receive", 1)))
    assert r.status_code == 200
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses[1] == "applied"
    assert statuses[0] in {"rejected", "applied"}


async def test_storage_trouble_is_503_with_retry_after(
    client: httpx.AsyncClient, store: SqlStore, mv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*args: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "apply_batch", locked)
    r = await client.post("/v1/movements", json=batch(mv()))
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "error" in r.json()


async def test_whoami_names_the_agent_of_the_token_only(
    store: SqlStore, client: httpx.AsyncClient
) -> None:
    r = await client.get("/v1/whoami")
    assert r.status_code == 200 and r.json() == {"agent": AGENT}
    other = store.add_agent("dock-9")
    r = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {other}"})
    assert r.json() == {"agent": "dock-9"}
    r = await client.get("/v1/whoami", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json() == {"error": "unknown token"}
    r = await client.get("/openapi.json")
    assert "/v1/whoami" in r.json()["paths"]


def close_of(location: str, counted: list[str], **fields: Any) -> dict[str, Any]:
    from tests.ledger.conftest import movement

    m = movement("count", len(counted), to=location, **fields)
    m.update(kind="count_close", item={}, evidence={"counted": counted})
    return m


async def test_a_count_close_takes_what_nobody_counted_to_zero_with_the_variance(
    reader: httpx.AsyncClient, client: httpx.AsyncClient, mv: Any
) -> None:
    other = "09506000134369"
    elsewhere = "09506000134376"
    setup = [
        mv("receive", 10, to="A-01"),
        mv("receive", 4, item=other, to="A-01"),
        mv("receive", 6, item=elsewhere, to="A-02"),  # another location: untouched
    ]
    await client.post("/v1/movements", json=batch(*setup))
    count = mv("count", 8, to="A-01")
    close = close_of("A-01", ["09506000134352"])
    r = await client.post("/v1/movements", json=batch(count, close))
    assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]
    assert await stock(reader) == [
        {"item": "09506000134352", "location": "A-01", "qty": 8},
        {"item": other, "location": "A-01", "qty": 0},
        {"item": elsewhere, "location": "A-02", "qty": 6},
    ]
    entries = (await client.get("/v1/movements")).json()["movements"][3:]
    assert [(e["kind"], e["source"], e["item"], e["qty"], e["from"]) for e in entries] == [
        ("count", "agent", {"gtin": "09506000134352"}, 8, None),
        ("adjust", "ledger", {"gtin": "09506000134352"}, 2, "A-01"),
        ("count_close", "agent", {}, 1, None),
        ("adjust", "ledger", {"gtin": other}, 4, "A-01"),
    ]
    assert entries[3]["reason"] == "count-variance"
    assert entries[3]["evidence"] == {"caused_by": close["id"], "counted": 0, "on_hand_before": 4}
    again = await client.post("/v1/movements", json=batch(count, close))
    assert [x["status"] for x in again.json()["results"]] == ["duplicate", "duplicate"]
    assert len((await client.get("/v1/movements")).json()["movements"]) == 7


async def test_a_count_of_zero_is_sendable(
    reader: httpx.AsyncClient, client: httpx.AsyncClient, mv: Any
) -> None:
    await client.post("/v1/movements", json=batch(mv("receive", 3, to="A-01")))
    r = await client.post("/v1/movements", json=batch(mv("count", 0, to="A-01")))
    assert r.json()["results"][0]["status"] == "applied"
    assert await stock(reader, location="A-01") == [
        {"item": "09506000134352", "location": "A-01", "qty": 0}
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"item": {"gtin": "09506000134352"}}, "a count_close names no item"),
        ({"evidence": {}}, "evidence.counted: expected the list of item keys"),
        ({"qty": 5}, "qty is how many items were counted (1 listed), got 5"),
        ({"to": None}, "a count_close needs a 'to' location"),
    ],
)
async def test_a_malformed_count_close_is_rejected_and_changes_nothing(
    reader: httpx.AsyncClient,
    client: httpx.AsyncClient,
    mv: Any,
    change: dict[str, Any],
    reason: str,
) -> None:
    await client.post("/v1/movements", json=batch(mv("receive", 3, to="A-01")))
    close = {**close_of("A-01", ["09506000134369"]), **change}
    if close["to"] is None:
        del close["to"]
    r = await client.post("/v1/movements", json=batch(close))
    (result,) = r.json()["results"]
    assert result["status"] == "rejected" and reason in result["reason"]
    assert await stock(reader) == [{"item": "09506000134352", "location": "A-01", "qty": 3}]
