"""A real Tryton for the tryton sink: one initialised database per session, a fresh
copy and a trytond process per test (see tryton_server.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))

from harness import free_port, gtin14, ledger
from tryton_server import TrytonServer, build_template

PRODUCTS = [gtin14(n) for n in range(1, 11)] + ["SKU-1", "SKU-2"]

__all__ = ["ledger"]  # the reference ledger, for the side-by-side tests


@pytest.fixture(scope="session")
def tryton_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session (about a minute). EDGETALLY_TRYTON_TEMPLATE names a
    directory to keep it in between runs while developing; CI builds it fresh."""
    keep = os.environ.get("EDGETALLY_TRYTON_TEMPLATE")
    if keep and (Path(keep) / "edgetally.sqlite").is_file():
        return Path(keep) / "edgetally.sqlite"
    return build_template(Path(keep) if keep else tmp_path_factory.mktemp("tryton"), PRODUCTS)


@pytest.fixture
def tryton(tmp_path: Path, tryton_template: Path) -> Iterator[TrytonServer]:
    server = TrytonServer(tmp_path / "tryton", tryton_template, free_port())
    server.start()
    yield server
    server.stop()
