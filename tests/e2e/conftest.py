from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import LedgerProcess

from agent.config import load_config
from agent.daemon import Daemon


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerProcess]:
    proc = LedgerProcess(tmp_path)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def ledger_down(tmp_path: Path) -> Iterator[LedgerProcess]:
    """A ledger that is not running yet: its port refuses connections until `start()`."""
    proc = LedgerProcess(tmp_path)
    yield proc
    proc.stop()


async def no_wait(seconds: float) -> None:
    """Retry sleeps that take no wall time; the waits chosen are checked instead."""
    await asyncio.sleep(0)


async def run_until_settled(daemon: Daemon, timeout: float = 120) -> None:
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.wait_settled(), timeout)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


def make_daemon(config_path: Path, token: str, **kwargs: object) -> Daemon:
    return Daemon(load_config(config_path), token, **kwargs)  # type: ignore[arg-type]
