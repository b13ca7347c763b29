"""What valuation needs of a connection: the store's `Db` (``%s`` placeholders)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Db(Protocol):
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...
    def rows_all(
        self, queries: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[tuple[Any, ...]]]: ...
