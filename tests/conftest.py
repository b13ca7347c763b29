"""Real parts: one throwaway PostgreSQL cluster for every test that needs one (per
session); a mosquitto broker on a free port (per test)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import psycopg
import pytest

from agent.demo.broker import MosquittoBroker, mosquitto_binary
from bench.pgcluster import PgCluster
from ledger.store.postgres import PgStore

_TEMPLATE = "ledger_template"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """initdb + pg_ctl in a temp dir on a free port (fsync off: no test needs power-loss
    durability from PostgreSQL, and every database it writes is thrown away)."""
    cluster = PgCluster(fsync=False).start()
    try:
        cluster.create_database(_TEMPLATE)
        PgStore(cluster.url(_TEMPLATE)).close()  # migrated once; each test copies it
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> Iterator[Callable[[], str]]:
    """Make fresh, migrated ledger databases (their URLs); dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"t{next(_names)}"
        made.append(name)
        return pg_cluster.create_database(name, template=_TEMPLATE)

    yield make
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A real mosquitto on a free loopback port, anonymous, no persistence."""
    if mosquitto_binary() is None:  # pragma: no cover - scripts/system-deps --test installs it
        pytest.fail("mosquitto is not installed: run `sh scripts/system-deps --test`")
    b = MosquittoBroker()
    b.start()
    try:
        yield b
    finally:
        b.close()
