"""Fixtures for the ledger tests: a store on each backend (a real SQLite file, a real
PostgreSQL database), an agent token, an in-process client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.app import create_app
from ledger.store import LedgerStore, SqlStore
from ledger.store.postgres import PgStore

AGENT = "dock-3"
GTIN = "09506000134352"
_LOCATIONS = {
    "receive": {"to": "DOCK-3"},
    "ship": {"from": "DOCK-3"},
    "transfer": {"from": "DOCK-3", "to": "A-01"},
    "return": {"to": "DOCK-3", "reason": "restock"},
    "count": {"to": "DOCK-3"},
    "adjust": {"to": "DOCK-3", "reason": "found"},
}

Movement = dict[str, Any]
MakeMovement = Callable[..., Movement]


def movement(
    kind: str = "receive", qty: int = 1, item: str | dict[str, str] = GTIN, **fields: Any
) -> Movement:
    """A valid movement JSON object: ``item`` is a GTIN or an item object, ``from_``
    sets ``from``, and a field given as ``None`` is left out."""
    out: Movement = {
        "id": str(uuid.uuid4()),
        "agent": AGENT,
        "seq": 1,
        "kind": kind,
        "item": {"gtin": item} if isinstance(item, str) else item,
        "qty": qty,
        "station": "recv-1",
        "device": "scanner-1",
        "observed_at": "2026-05-01T10:00:00Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": 1},
        **_LOCATIONS[kind],
    }
    for key, value in fields.items():
        key = "from" if key == "from_" else key
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.fixture
def mv() -> MakeMovement:
    return movement


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """Every test that takes ``store`` runs on both backends."""
    s: SqlStore
    if request.param == "sqlite":
        s = LedgerStore(tmp_path / "ledger.db")
    else:
        s = PgStore(request.getfixturevalue("pg_database")())
    with s:
        yield s


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[LedgerStore]:
    """For what only SQLite has (the file, its pragmas)."""
    with LedgerStore(tmp_path / "ledger.db") as s:
        yield s


@pytest.fixture
def token(store: SqlStore) -> str:
    return store.add_agent(AGENT)


def _app_client(store: SqlStore, token: str) -> httpx.AsyncClient:
    """The ledger's app in process, called with ``token``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(store)),
        base_url="http://ledger",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
async def client(store: SqlStore, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with _app_client(store, token) as c:
        yield c


@pytest.fixture
async def reader(store: SqlStore) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a reader token: stock, every journal, the fleet, the alarms."""
    async with _app_client(store, store.create_token("site-office", role="reader")) as c:
        yield c
