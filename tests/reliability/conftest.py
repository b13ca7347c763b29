"""The reliability tests' reference ledger: a real `edgetally ledger serve` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import LedgerProcess


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
