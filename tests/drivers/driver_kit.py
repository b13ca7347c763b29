"""What the driver tests share: reads on a stepping clock, polling for a condition, outbox rows."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from agent.clock import Clock, Uuid7
from drivers.base import ReadFactory


def read_factory(wall: float, boot_id: str) -> ReadFactory:
    """Reads stamped at one wall time, each a microsecond of monotonic time after the last."""
    mono = iter(range(1000, 10**12, 1000))
    clock = Clock(
        wall=lambda: wall, mono_ns=lambda: next(mono), boot_id=boot_id, synced=lambda: True
    )
    return ReadFactory(clock, Uuid7(lambda: wall))


async def eventually(
    predicate: Callable[[], object],
    what: str = "the condition",
    timeout: float = 30.0,
    every: float = 0.02,
) -> None:
    """Poll until ``predicate()`` holds; past ``timeout`` seconds, an AssertionError naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


def outbox_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` from the daemon's outbox; none while the file does not exist yet."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()
