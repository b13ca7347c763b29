"""The smaller holes of issue 18 (item 7), each reproduced: seq regressions in the fleet
view, /healthz while writes fail, unknown body fields, controls and bidi marks in
ids, NFC, a declared charset other than UTF-8, HEAD with a body."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from agent.cli import main
from ledger.app import create_app
from ledger.store import LedgerStore, SqlStore
from tests.ledger.conftest import AGENT


def batch(*ms: dict[str, Any]) -> dict[str, Any]:
    return {"agent": AGENT, "movements": list(ms)}


async def test_backward_and_repeated_seqs_are_counted_per_agent_and_shown(
    store: SqlStore, client: httpx.AsyncClient, reader: httpx.AsyncClient, mv: Any, tmp_path: Path
) -> None:
    await client.post("/v1/movements", json=batch(mv(seq=1), mv(seq=2), mv(seq=5)))
    r = await client.post("/v1/movements", json=batch(mv(seq=5), mv(seq=3)))  # new ids
    assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]
    [agent] = (await reader.get("/v1/agents")).json()["agents"]
    assert agent["seq_regressions"] == 2
    assert agent["last_regression"].startswith("seq 3 after 5 (movement ")
    assert (agent["highest_seq"], agent["gaps"]) == (5, [[4, 4]])
    again = await client.post("/v1/movements", json=batch(mv(seq=6)))
    assert again.json()["results"][0]["status"] == "applied"
    [agent] = (await reader.get("/v1/agents")).json()["agents"]
    assert agent["seq_regressions"] == 2  # a forward seq is no regression
    if isinstance(store, LedgerStore):
        shown = CliRunner().invoke(main, ["ledger", "agents", "--db", str(store.path)])
        assert "seq regressions" in shown.output and "2, last: seq 3 after 5" in shown.output


async def test_healthz_says_503_while_writes_fail(tmp_path: Path, mv: Any) -> None:
    with LedgerStore(tmp_path / "ledger.db", busy_timeout_ms=50) as store:
        token = store.add_agent(AGENT)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(store)),
            base_url="http://ledger",
            headers={"Authorization": f"Bearer {token}"},
        ) as c:
            assert (await c.get("/healthz")).status_code == 200
            other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")  # another writer holds the file: writes fail
            try:
                assert (await c.post("/v1/movements", json=batch(mv()))).status_code == 503
                health = await c.get("/healthz")
                assert health.status_code == 503 and health.json()["status"] == "failing"
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert (await c.post("/v1/movements", json=batch(mv()))).status_code == 200
            assert (await c.get("/healthz")).json() == {"status": "ok"}


async def test_unknown_top_level_fields_are_refused_by_name(
    client: httpx.AsyncClient, store: SqlStore, mv: Any
) -> None:
    r = await client.post("/v1/movements", json={**batch(mv()), "dry_run": True})
    assert r.status_code == 400
    assert r.json()["error"] == "body.dry_run: unknown field (expected agent and movements)"
    assert store.stock() == []


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("item", {"sku": "AB\x00C"}, "U+0000"),
        ("item", {"sku": "AB\x1bC"}, "U+001B"),
        ("item", {"gtin": "0950600013435\u202e2"}, "U+202E"),
        ("to", "A-01\u2066", "U+2066"),
        ("to", "A\u200f-01", "U+200F"),
        ("to", "A\x85-01", "U+0085"),
    ],
)
async def test_controls_and_bidi_marks_in_ids_are_rejected(
    client: httpx.AsyncClient, store: SqlStore, mv: Any, field: str, value: Any, code: str
) -> None:
    r = await client.post("/v1/movements", json=batch(mv(**{field: value})))
    [result] = r.json()["results"]
    assert result["status"] == "rejected"
    assert f"control or bidirectional character {code}" in result["reason"]
    assert store.stock() == []


async def test_ids_are_normalised_to_nfc(
    client: httpx.AsyncClient, store: SqlStore, mv: Any
) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    r = await client.post(
        "/v1/movements",
        json=batch(mv(item={"sku": nfc}, to="Réserve"), mv(item={"sku": nfd}, to="Re\u0301serve")),
    )
    assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]
    assert store.stock() == [{"item": nfc, "location": "Réserve", "qty": 2}]


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "ISO-8859-1"])
async def test_a_charset_other_than_utf8_is_415(
    client: httpx.AsyncClient, mv: Any, charset: str
) -> None:
    import json

    r = await client.post(
        "/v1/movements",
        content=json.dumps(batch(mv())),
        headers={"Content-Type": f"application/json; charset={charset}"},
    )
    assert r.status_code == 415 and charset.lower() in r.json()["error"]
    ok = await client.post(
        "/v1/movements",
        content=json.dumps(batch(mv())),
        headers={"Content-Type": 'application/json; charset="UTF-8"'},
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/v1/stock", "/nowhere", "/login"])
async def test_head_has_no_body(client: httpx.AsyncClient, path: str) -> None:
    r = await client.head(path)
    assert r.content == b"", (path, r.status_code)
