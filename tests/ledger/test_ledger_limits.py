"""Per-movement caps and byte-bounded journal pages (issue 18, item 2), on both backends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agent.model import MAX_EVIDENCE_BYTES, MAX_REF_BYTES, MAX_REF_KEY
from ledger.store import MAX_PAGE_BYTES, SqlStore
from tests.ledger.conftest import AGENT


def batch(*ms: dict[str, Any]) -> dict[str, Any]:
    return {"agent": AGENT, "movements": list(ms)}


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        (
            {"evidence": {"raw": "x" * MAX_EVIDENCE_BYTES}},
            f"movement.evidence: {MAX_EVIDENCE_BYTES + 10} bytes as JSON, at most "
            f"{MAX_EVIDENCE_BYTES}",
        ),
        (
            {"ref": {f"k{i}": "r" * 500 for i in range(9)}},
            f"movement.ref: {9 * 507 + 1 + 9} bytes as JSON, at most {MAX_REF_BYTES}",
        ),
        ({"ref": {"k" * (MAX_REF_KEY + 1): "1"}}, f"longer than {MAX_REF_KEY} characters"),
    ],
)
async def test_an_oversized_movement_is_rejected_alone_with_a_reason(
    client: httpx.AsyncClient, store: SqlStore, mv: Any, fields: dict[str, Any], needle: str
) -> None:
    big, small = mv("receive", 2, **fields), mv("receive", 3)
    r = await client.post("/v1/movements", json=batch(big, small))
    assert r.status_code == 200  # a rejection per movement: the agent need not bisect
    results = r.json()["results"]
    assert results[0]["status"] == "rejected" and needle in results[0]["reason"]
    assert results[1]["status"] == "applied"
    assert store.stock()[0]["qty"] == 3


async def test_evidence_at_the_cap_is_applied(client: httpx.AsyncClient, mv: Any) -> None:
    fits = mv("receive", 1, evidence={"raw": "x" * (MAX_EVIDENCE_BYTES - 10)})
    r = await client.post("/v1/movements", json=batch(fits))
    assert r.json()["results"][0]["status"] == "applied"


async def test_journal_pages_stop_at_the_byte_cap_and_go_on_from_the_cursor(
    store: SqlStore, reader: httpx.AsyncClient, mv: Any
) -> None:
    evidence = {"raw": "e" * (MAX_EVIDENCE_BYTES - 100)}
    per_page = MAX_PAGE_BYTES // MAX_EVIDENCE_BYTES
    ids = []
    for _ in range(3):
        ms = [mv("receive", 1, evidence=evidence) for _ in range(per_page)]
        assert {r["status"] for r in store.apply_batch(AGENT, ms)} == {"applied"}
        ids += [m["id"] for m in ms]
    seen: list[str] = []
    since, pages = 0, 0
    while True:
        r = await reader.get("/v1/movements", params={"since": str(since), "limit": "1000"})
        page = r.json()
        if not page["movements"]:
            break
        pages += 1
        assert len(r.content) < MAX_PAGE_BYTES + MAX_EVIDENCE_BYTES + 4096
        seen += [e["id"] for e in page["movements"]]
        since = page["next"]
    assert seen == ids and pages >= 3
