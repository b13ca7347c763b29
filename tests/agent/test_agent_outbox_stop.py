"""agent/outbox under a stopping daemon: callers cancelled in the middle of a burst of
stores and settles (as the daemon cancels its sync task at SIGTERM), hundreds of times.

Before the writer marked futures running, one of these iterations in a few hundred
killed the writer thread with ``InvalidStateError: CANCELLED`` and the next store hung.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

from agent.outbox import Commit, Outbox
from tests.agent.test_agent_outbox import AGENT, BIG, make_movement, make_read

ITERATIONS = 200


async def _burst(box: Outbox, rng: random.Random, acked: set[str]) -> None:
    async def store() -> None:
        commits = [
            Commit(make_read(), (make_movement(), make_movement()))
            for _ in range(rng.randint(1, 3))
        ]
        results = await box.store(commits)
        for commit, result in zip(commits, results, strict=True):
            assert result.error is None, result.error
            assert commit.read is not None
            acked.add(commit.read.id)

    async def settle() -> None:
        for _ in range(3):
            rows = await asyncio.to_thread(box.pending, 0, 20)
            if rows:
                await box.settle([(r.seq, "delivered", None) for r in rows])
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(store()) for _ in range(rng.randint(1, 12))]
    tasks.append(asyncio.create_task(settle()))
    for _ in range(rng.randint(0, 6)):
        await asyncio.sleep(0)
    for task in tasks:
        task.cancel()  # SIGTERM: whoever still waits goes away
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if not isinstance(outcome, asyncio.CancelledError):
            assert outcome is None, outcome


async def test_stop_during_a_burst_never_kills_the_writer_or_half_stores(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    rng = random.Random(15)
    acked: set[str] = set()
    for _ in range(ITERATIONS):
        box = Outbox.open(path, AGENT, BIG)
        try:
            await _burst(box, rng, acked)
            # the writer still serves: a store after the cancelled burst commits
            last = Commit(make_read(), (make_movement(), make_movement()))
            (stored,) = await asyncio.wait_for(box.store([last]), 10)
            assert stored.error is None
            assert last.read is not None
            acked.add(last.read.id)
            pending = box.pending_count
        finally:
            await asyncio.to_thread(box.close)
        conn = sqlite3.connect(path)
        try:
            assert conn.execute(
                "SELECT count(*) FROM movements WHERE state = 'pending'"
            ).fetchone() == (pending,)
        finally:
            conn.close()
    conn = sqlite3.connect(path)
    try:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM movements ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))  # gapless: nothing half-committed
        per_read = conn.execute(
            "SELECT r.id, count(m.seq) FROM reads r LEFT JOIN movements m"
            " ON m.seq BETWEEN r.first_seq AND r.last_seq GROUP BY r.id"
        ).fetchall()
        stored = {rid for rid, _ in per_read}
    finally:
        conn.close()
    assert {n for _, n in per_read} == {2}  # each read with both its movements, or not at all
    assert acked <= stored  # what a caller was told is stored, is on disk
