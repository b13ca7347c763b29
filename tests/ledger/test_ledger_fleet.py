"""The fleet view, silent-agent alarms and fleet tokens, on both backends; and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from agent.cli import main
from ledger.app import create_app
from ledger.schema import LedgerError
from ledger.store import SqlStore
from ledger.store.domain import sha256


def test_fleet_view_seq_gaps_last_hour_last_error(store: SqlStore, mv: Any) -> None:
    store.add_agent("dock-3")
    store.add_agent("dock-9")  # never posted
    seqs = [3, 4, 5, 8, 12]
    store.apply_batch("dock-3", [mv("receive", 1, seq=s) for s in seqs])
    store.apply_batch("dock-3", [mv("receive", 1, seq=4)])  # a second movement at seq 4
    store.apply_batch("dock-3", [mv("receive", 0, seq=13)])  # refused: qty 0
    three, nine = store.agents(silent_after_s=900)
    assert three.agent == "dock-3" and three.highest_seq == 12
    assert three.gaps == [[1, 2], [6, 7], [9, 11]] and three.missing == 7
    assert three.movements_last_hour == 6
    assert three.last_error is not None and "qty" in three.last_error
    assert three.last_contact is not None and not three.silent and three.active_tokens == 1
    assert (nine.last_contact, nine.highest_seq, nine.missing, nine.gaps) == (None, None, 0, [])
    later = datetime.now(UTC) + timedelta(hours=2)
    [three, _] = store.agents(silent_after_s=900, now=later)
    assert three.movements_last_hour == 0 and three.silent


def test_silent_agent_raises_one_alarm_per_silence(store: SqlStore, mv: Any) -> None:
    store.add_agent("dock-3")
    store.apply_batch("dock-3", [mv("receive", 1)])
    soon = datetime.now(UTC) + timedelta(seconds=30)
    assert store.check_silence(60, now=soon) == []  # within the window
    later = datetime.now(UTC) + timedelta(seconds=120)
    [alarm] = store.check_silence(60, now=later)
    assert (alarm.agent, alarm.kind) == ("dock-3", "silent")
    assert store.check_silence(60, now=later) == []  # the same silence: no second alarm
    store.apply_batch("dock-3", [mv("receive", 1)])  # heard from again, then silent again
    assert len(store.check_silence(60, now=later + timedelta(seconds=120))) == 1
    assert [a["kind"] for a in store.alarms()] == ["silent", "silent"]


def test_tokens_create_rotate_revoke_list(store: SqlStore) -> None:
    first = store.create_token("dock-3")
    with pytest.raises(LedgerError, match="already has a token; rotate"):
        store.create_token("dock-3")
    second = store.rotate_token("dock-3")
    assert store.agent_for_token(first) is None and store.agent_for_token(second) == "dock-3"
    assert store.revoke_token("dock-3") == 1 and store.agent_for_token(second) is None
    assert store.revoke_token("dock-3") == 0
    listed = store.tokens()
    assert [(t.agent, t.revoked_at is not None) for t in listed] == [("dock-3", True)] * 2
    assert [t.fingerprint for t in listed] == [sha256(first)[:12], sha256(second)[:12]]
    with pytest.raises(ValueError, match="agent"):
        store.create_token("")


async def test_agents_route_and_revocation_over_http(store: SqlStore, mv: Any) -> None:
    token = store.create_token("dock-3")
    reader = {"Authorization": f"Bearer {store.create_token('office', role='reader')}"}
    app = create_app(store, silent_after_s=60)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ledger",
        headers={"Authorization": f"Bearer {token}"},
    ) as c:
        await c.post("/v1/movements", json={"agent": "dock-3", "movements": [mv(seq=2)]})
        assert (await c.get("/v1/agents")).status_code == 403  # an agent token reads no fleet
        doc = (await c.get("/v1/agents", headers=reader)).json()
        assert doc["silent_after_s"] == 60
        [agent] = doc["agents"]
        assert (agent["agent"], agent["highest_seq"], agent["gaps"]) == ("dock-3", 2, [[1, 1]])
        assert (await c.get("/v1/alarms", headers=reader)).json() == {"alarms": []}
        store.revoke_token("dock-3")
        r = await c.post("/v1/movements", json={"agent": "dock-3", "movements": [mv(seq=3)]})
        assert r.status_code == 401 and (await c.get("/v1/agents")).status_code == 401


def _run(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_cli_tokens_and_agents(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    made = _run("ledger", "token", "create", "dock-3", "--db", db)
    assert made.exit_code == 0 and "shown only now" in made.output
    token = made.output.strip().splitlines()[-1]
    again = _run("ledger", "token", "create", "dock-3", "--db", db)
    assert again.exit_code == 1 and "rotate it instead" in again.output
    rotated = _run(
        "ledger", "token", "rotate", "dock-3", "--db", db, "--token-file", str(tmp_path / "t")
    )
    assert rotated.exit_code == 0 and token not in rotated.output
    assert (tmp_path / "t").stat().st_mode & 0o777 == 0o600
    listed = _run("ledger", "token", "list", "--db", db, "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["revoked_at"] is None for r in rows] == [False, True]
    assert token not in listed.output
    agents = _run("ledger", "agents", "--db", db)
    assert agents.exit_code == 0 and "dock-3" in agents.output and "never" in agents.output
    revoked = _run("ledger", "token", "revoke", "dock-3", "--db", db)
    assert revoked.exit_code == 0 and "1 token(s) revoked" in revoked.output
    assert _run("ledger", "token", "revoke", "dock-3", "--db", db).exit_code == 1


def test_cli_reads_a_ledger_config_and_refuses_a_password_in_the_url(
    tmp_path: Path, pg_cluster: Any, pg_database: Any
) -> None:
    url = pg_database().split("?")[0]
    cfg = tmp_path / "ledger.toml"
    (tmp_path / "pw").write_text(pg_cluster.password_file.read_text())
    cfg.write_text(f'[ledger]\ndb = "{url}"\npassword_file = "pw"\nsilent_after_s = 5\n')
    made = _run("ledger", "token", "create", "dock-3", "--config", str(cfg))
    assert made.exit_code == 0, made.output
    agents = _run("ledger", "agents", "--config", str(cfg), "--json")
    assert json.loads(agents.output)["agent"] == "dock-3"
    bad = _run("ledger", "agents", "--db", url.replace("edgetally@", "edgetally:pw@"))
    assert bad.exit_code == 1 and "holds a password" in bad.output
    cfg.write_text("[ledger]\nworkers = 0\n")
    wrong = _run("ledger", "agents", "--config", str(cfg))
    assert wrong.exit_code == 1 and "ledger.workers" in wrong.output
    cfg.write_text("[ledger]\ndatabase = 'x'\n")
    wrong = _run("ledger", "agents", "--config", str(cfg))
    assert wrong.exit_code == 1 and "ledger.database: unknown key" in wrong.output
