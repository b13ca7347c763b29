"""One agent's token acts for its agent only (issue 18, item 4), on both backends.

An agent token posts as its agent, reads its own journal and nothing else;
reading everything takes a reader token or the dashboard login; an agent
limited to some locations cannot move stock elsewhere; an id another agent
journaled is refused without saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from agent.cli import main
from ledger.app import create_app
from ledger.store import FOREIGN_REASON, LedgerStore, SqlStore
from tests.ledger.conftest import AGENT


def _client(store: SqlStore, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(store)),
        base_url="http://ledger",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_an_agent_token_reads_its_own_journal_only(
    store: SqlStore, client: httpx.AsyncClient, mv: Any
) -> None:
    other = store.add_agent("dock-4")
    mine = mv("receive", 5)
    assert store.apply_batch(AGENT, [mine])[0]["status"] == "applied"
    async with _client(store, other) as b:
        r = await b.get("/v1/movements", params={"agent": AGENT})
        assert r.status_code == 403 and "reader token" in r.json()["error"]
        r = await b.get("/v1/movements")  # by default: its own, which is empty
        assert r.status_code == 200 and r.json()["movements"] == []
        for path in ("/v1/stock", "/v1/agents", "/v1/alarms"):
            r = await b.get(path)
            assert r.status_code == 403, path
            assert "reader token" in r.json()["error"]
    r = await client.get("/v1/movements", params={"agent": AGENT})
    assert [e["id"] for e in r.json()["movements"]] == [mine["id"]]


async def test_a_reader_token_reads_everything_and_posts_nothing(
    store: SqlStore, reader: httpx.AsyncClient, mv: Any
) -> None:
    store.add_agent("dock-4")
    store.apply_batch(AGENT, [mv("receive", 5)])
    store.apply_batch("dock-4", [mv("receive", 2, agent="dock-4", to="DOCK-4")])
    assert len((await reader.get("/v1/movements")).json()["movements"]) == 2
    r = await reader.get("/v1/movements", params={"agent": "dock-4"})
    assert [e["agent"] for e in r.json()["movements"]] == ["dock-4"]
    assert len((await reader.get("/v1/stock")).json()["stock"]) == 2
    agents = (await reader.get("/v1/agents")).json()["agents"]
    assert {a["agent"] for a in agents} == {AGENT, "dock-4"}  # the reader is no agent
    assert (await reader.get("/v1/alarms")).status_code == 200
    r = await reader.post("/v1/movements", json={"agent": AGENT, "movements": [mv()]})
    assert r.status_code == 403 and "reader token cannot post" in r.json()["error"]
    assert (await reader.get("/v1/whoami")).json() == {"reader": "site-office"}


async def test_the_dashboard_login_reads_as_a_reader(store: SqlStore) -> None:
    store.add_user("supervisor", "correct horse battery")
    session = store.login("supervisor", "correct horse battery", 600)
    assert session is not None
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(store)),
        base_url="http://ledger",
        cookies={"edgetally_session": session},
    ) as c:
        assert (await c.get("/v1/stock")).status_code == 200
        assert (await c.get("/v1/agents")).status_code == 200
        assert (await c.post("/v1/movements", json={})).status_code == 401


async def test_an_agent_limited_to_locations_cannot_move_stock_elsewhere(
    store: SqlStore, client: httpx.AsyncClient, mv: Any
) -> None:
    store.apply_batch(AGENT, [mv("receive", 10, to="DOCK-A")])
    thief = store.add_agent("dock-4", locations=["DOCK-4", "A-04"])
    assert store.locations("dock-4") == ["A-04", "DOCK-4"]
    async with _client(store, thief) as b:
        moves = [
            mv("ship", 10, agent="dock-4", from_="DOCK-A"),
            mv("adjust", 10, agent="dock-4", to=None, from_="DOCK-A", reason="lost"),
            mv("transfer", 10, agent="dock-4", from_="DOCK-A", to="DOCK-4"),
            mv("receive", 3, agent="dock-4", to="DOCK-4"),
            mv("transfer", 1, agent="dock-4", from_="DOCK-4", to="A-04"),
        ]
        r = await b.post("/v1/movements", json={"agent": "dock-4", "movements": moves})
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["rejected"] * 3 + ["applied"] * 2
    assert "movement.from 'DOCK-A': agent dock-4 may not move stock there" in results[0]["reason"]
    assert "A-04, DOCK-4" in results[0]["reason"]
    assert store.stock(location="DOCK-A")[0]["qty"] == 10  # untouched
    store.set_locations("dock-4", None)  # anywhere again
    assert store.locations("dock-4") is None
    assert store.apply_batch("dock-4", [moves[0]])[0]["status"] == "applied"


async def test_an_id_of_another_agent_is_refused_without_saying_it_exists(
    store: SqlStore, reader: httpx.AsyncClient, mv: Any
) -> None:
    theirs = mv("receive", 5)
    store.apply_batch(AGENT, [theirs])
    other = store.add_agent("dock-4")
    reused = {**theirs, "agent": "dock-4", "qty": 1}
    async with _client(store, other) as b:
        r = await b.post("/v1/movements", json={"agent": "dock-4", "movements": [reused]})
    [result] = r.json()["results"]
    assert result == {"id": theirs["id"], "status": "rejected", "reason": FOREIGN_REASON}
    assert AGENT not in result["reason"] and "already" not in result["reason"]
    [entry] = (await reader.get("/v1/movements")).json()["movements"]
    assert (entry["agent"], entry["qty"]) == (AGENT, 5)  # nothing overwritten
    [alarm] = (await reader.get("/v1/alarms")).json()["alarms"]
    assert (alarm["agent"], alarm["kind"]) == ("dock-4", "foreign_id")
    assert f"which is agent {AGENT}'s" in alarm["detail"]  # the operator is told the truth


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_locations_and_reader_tokens(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    made = _run(
        "ledger", "add-agent", "dock-4", "--db", db, "--token-file", str(tmp_path / "t"),
        "--locations", "DOCK-4, A-04",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    with LedgerStore(db) as store:
        assert store.locations("dock-4") == ["A-04", "DOCK-4"]
    done = _run("ledger", "set-locations", "dock-4", "--db", db, "--locations", "DOCK-9")
    assert done.exit_code == 0 and "DOCK-9" in done.output
    agents = _run("ledger", "agents", "--db", db)
    assert "DOCK-9" in agents.output and "locations" in agents.output
    done = _run("ledger", "set-locations", "dock-4", "--db", db, "--any")
    assert done.exit_code == 0 and "any location" in done.output
    assert _run("ledger", "set-locations", "dock-4", "--db", db).exit_code != 0
    made = _run("ledger", "token", "create", "office", "--reader", "--db", db)
    assert made.exit_code == 0 and "reader office: token created" in made.output
    reader_token = made.output.strip().splitlines()[-1]
    with LedgerStore(db) as store:
        who = store.principal_for_token(reader_token)
        assert who is not None and who.reader and who.name == "office"
        assert store.agent_for_token(reader_token) is None
    listed = _run("ledger", "token", "list", "--db", db)
    assert "reader" in listed.output
    revoked = _run("ledger", "token", "revoke", "office", "--reader", "--db", db)
    assert revoked.exit_code == 0 and "reader office: 1 token(s) revoked" in revoked.output
