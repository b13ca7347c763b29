"""Many agents, several ledger processes, one real PostgreSQL: exactly once under load,
a process killed mid-batch, the database restarted under load, conflicts, revoked tokens."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.ledger_load import LoadResult, audit, make_agents, movements_for, run_agents
from bench.pgcluster import PgCluster
from ledger.store import open_store
from ledger.store.postgres import PgStore
from tests.e2e.harness import LedgerProcess


@pytest.fixture
def pg_url(pg_database: Callable[[], str]) -> str:
    return pg_database()


@pytest.fixture
def two_ledgers(tmp_path: Path, pg_url: str) -> Iterator[list[LedgerProcess]]:
    procs = [LedgerProcess(tmp_path, db=pg_url, agent=None) for _ in range(2)]
    try:
        for p in procs:
            p.start()
        yield procs
    finally:
        for p in procs:
            p.stop()


def test_64_agents_overlapping_batches_with_retries_two_processes(
    two_ledgers: list[LedgerProcess], pg_url: str
) -> None:
    with open_store(pg_url) as store:
        tokens = make_agents(store, 64)
    urls = [p.url for p in two_ledgers]
    result = asyncio.run(run_agents(urls, tokens, 30, 10, overlap=True, resend=True))
    assert result.errors_5xx == 0 and result.transport_errors == 0
    assert set(result.statuses) <= {"applied", "duplicate"}
    assert result.statuses["applied"] == 64 * 30  # each movement applied once, by either
    with open_store(pg_url) as store:
        checked = audit(store, result.sent)
        agents = {a.agent: a for a in store.agents(900)}
    assert (checked.lost, checked.duplicated, checked.journaled) == (0, 0, 64 * 30)
    assert checked.on_hand_matches_journal
    assert {a.highest_seq for a in agents.values()} == {30}
    assert {a.missing for a in agents.values()} == {0}


def _worker_pids(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(c) for c in children]


def _wait_workers(supervisor: int, n: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = [p for p in _worker_pids(supervisor) if p not in exclude]
        if len(pids) >= n:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"the ledger did not run {n} workers")


def _journaled(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM journal").fetchone()
    return int(row[0]) if row else 0


async def _kill_mid_load(
    url: str, load: asyncio.Task[LoadResult], pid: int, after: int
) -> LoadResult:
    """SIGKILL ``pid`` once ``after`` movements are journaled, while the load still runs."""
    while await asyncio.to_thread(_journaled, url) < after:
        assert not load.done(), "the load finished before the kill"
        await asyncio.sleep(0.02)
    assert not load.done()
    os.kill(pid, signal.SIGKILL)
    return await load


def test_kill_9_of_one_ledger_process_mid_batch_the_retry_lands_on_the_other(
    two_ledgers: list[LedgerProcess], pg_url: str
) -> None:
    with open_store(pg_url) as store:
        tokens = make_agents(store, 16)
    victim, survivor = two_ledgers
    assert victim.proc is not None

    async def scenario() -> LoadResult:
        urls = [victim.url, survivor.url]  # each retry goes to the next URL
        load = asyncio.create_task(run_agents(urls, tokens, 60, 5, resend=True))
        return await _kill_mid_load(pg_url, load, victim.proc.pid, after=200)  # type: ignore[union-attr]

    result = asyncio.run(scenario())
    assert victim.proc.wait(5) == -signal.SIGKILL
    assert result.transport_errors > 0  # batches in flight on the killed one were cut off...
    assert result.errors_5xx == 0  # ...and retried on the other, which answered every one
    with open_store(pg_url) as store:
        checked = audit(store, result.sent)
    assert (checked.lost, checked.duplicated, checked.journaled) == (0, 0, 16 * 60)
    assert checked.on_hand_matches_journal


def test_workers_share_one_port_and_a_killed_worker_is_replaced(
    tmp_path: Path, pg_url: str
) -> None:
    ledger = LedgerProcess(tmp_path, db=pg_url, agent=None, workers=2)
    ledger.start()
    try:
        assert ledger.proc is not None
        supervisor = ledger.proc.pid
        workers = _wait_workers(supervisor, 2)
        with open_store(pg_url) as store:
            tokens = make_agents(store, 8)

        async def scenario() -> LoadResult:
            load = asyncio.create_task(run_agents([ledger.url], tokens, 60, 5, resend=True))
            return await _kill_mid_load(pg_url, load, workers[0], after=100)

        result = asyncio.run(scenario())
        assert result.errors_5xx == 0
        replaced = _wait_workers(supervisor, 2, exclude=frozenset({workers[0]}))
        assert workers[0] not in replaced
        with open_store(pg_url) as store:
            checked = audit(store, result.sent)
        assert (checked.lost, checked.duplicated, checked.journaled) == (0, 0, 8 * 60)
        assert checked.on_hand_matches_journal
    finally:
        ledger.stop()


def test_postgres_restarted_under_load_503_retry_after_then_recovers(tmp_path: Path) -> None:
    """Its own cluster: stopping the session's would pull it from under other tests."""
    cluster = PgCluster(fsync=False).start()
    try:
        url = cluster.create_database("ledger")
        ledger = LedgerProcess(tmp_path, db=url, agent=None)
        ledger.start()
        with open_store(url) as store:
            tokens = make_agents(store, 8)

        async def load_and_restart() -> tuple[httpx.Response, LoadResult]:
            load = asyncio.create_task(
                run_agents([ledger.url], tokens, 100, 5, retry_cap_s=0.1, timeout_s=10)
            )
            await asyncio.sleep(0.5)
            await asyncio.to_thread(cluster.pg_stop, "fast")
            async with httpx.AsyncClient() as c:
                token = next(iter(tokens.values()))
                down = await c.get(
                    f"{ledger.url}/v1/stock", headers={"Authorization": f"Bearer {token}"}
                )
            await asyncio.sleep(1.0)
            await asyncio.to_thread(cluster.pg_start)
            return down, await load

        try:
            down, result = asyncio.run(load_and_restart())
        finally:
            ledger.stop()
        assert down.status_code == 503 and down.headers["retry-after"] == "1"
        assert result.unavailable > 0  # the load saw the outage...
        assert result.errors_5xx == result.unavailable  # ...as 503s only, never a 500
        assert result.unavailable_without_retry_after == 0
        with open_store(url) as store:
            checked = audit(store, result.sent)
        assert (checked.lost, checked.duplicated, checked.journaled) == (0, 0, 8 * 100)
        assert checked.on_hand_matches_journal
    finally:
        cluster.stop()


def test_conflicting_duplicate_across_processes(
    two_ledgers: list[LedgerProcess], pg_url: str
) -> None:
    with open_store(pg_url) as store:
        token = store.add_agent("dock-3")
        reader_token = store.create_token("office", role="reader")
    headers = {"Authorization": f"Bearer {token}"}
    [m] = movements_for("dock-3", 1)
    first, second = (httpx.Client(base_url=p.url, headers=headers) for p in two_ledgers)
    with first, second:
        r = first.post("/v1/movements", json={"agent": "dock-3", "movements": [m]})
        assert r.json()["results"] == [{"id": m["id"], "status": "applied"}]
        other = {**m, "qty": m["qty"] + 5}
        r = second.post("/v1/movements", json={"agent": "dock-3", "movements": [other]})
        assert r.json()["results"] == [
            {
                "id": m["id"],
                "status": "conflict",
                "reason": "id already used for a different movement",
            }
        ]
        reader = {"Authorization": f"Bearer {reader_token}"}
        [alarm] = first.get("/v1/alarms", headers=reader).json()["alarms"]  # the other process's
        assert (alarm["agent"], alarm["kind"]) == ("dock-3", "conflict")
        [entry] = first.get("/v1/movements").json()["movements"]
        assert entry["qty"] == m["qty"]  # nothing overwritten
        [agent] = second.get("/v1/agents", headers=reader).json()["agents"]
        assert agent["agent"] == "dock-3" and "different movement" in agent["last_error"]


def test_revoked_token_is_refused_at_once_by_every_process(
    two_ledgers: list[LedgerProcess], pg_url: str
) -> None:
    with open_store(pg_url) as store:
        token = store.create_token("dock-3")
    headers = {"Authorization": f"Bearer {token}"}
    assert all(
        httpx.get(f"{p.url}/v1/whoami", headers=headers).status_code == 200 for p in two_ledgers
    )
    with open_store(pg_url) as store:
        assert store.revoke_token("dock-3") == 1
    assert all(
        httpx.get(f"{p.url}/v1/whoami", headers=headers).status_code == 401 for p in two_ledgers
    )


def test_password_from_a_file_and_never_in_the_url(pg_cluster: PgCluster, pg_url: str) -> None:
    from ledger.schema import LedgerError

    bare = pg_url.split("?")[0]  # no passfile: the password must come from --password-file
    with open_store(bare, pg_cluster.password_file) as store:
        assert isinstance(store, PgStore) and store.stock() == []
    with_password = bare.replace("edgetally@", f"edgetally:{pg_cluster.password}@")
    with pytest.raises(LedgerError, match="holds a password"):
        open_store(with_password)
