"""`edgetally ledger items|report|entries`: the valuation from the command line.

Registered on the ``ledger`` click group by ``ledger.cli``; only click is
imported up here (the CLI loads on every command).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click


def _print(rows: Sequence[dict[str, Any]], as_csv: bool) -> None:
    if as_csv:
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        writer = csv.DictWriter(sys.stdout, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    for row in rows:
        click.echo(json.dumps(row, sort_keys=False))


def register(
    ledger: click.Group,
    db_options: Callable[[Any], Any],
    user_errors: Callable[[Any], Any],
    open_store: Callable[..., Any],
) -> None:
    """Add the valuation commands; ``open_store(config_path, db, password_file)``."""

    @ledger.group("items")
    def items() -> None:
        """The item list: standard cost, method, reorder point, lead time, safety stock."""

    @items.command("import")
    @click.argument("file", type=click.Path(path_type=Path))
    @db_options
    @user_errors
    def items_import(
        file: Path, db: str | None, password_file: Path | None, config_path: Path | None
    ) -> None:
        """Import an item list CSV (item, description, standard_cost, currency, method,
        reorder_point, lead_time_days, safety_stock); all of it or, on an error, none."""
        from ledger.valuation.items import import_items, read_items

        read_items(file)  # a file that cannot be read is said before the store opens
        text = file.read_text(encoding="utf-8-sig")
        with open_store(config_path, db, password_file) as store:
            n = store.write(lambda d: import_items(d, text, str(file)))
        click.echo(f"{file}: {n} item(s) imported")

    @items.command("list")
    @db_options
    @click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON lines.")
    @user_errors
    def items_list(
        db: str | None, password_file: Path | None, config_path: Path | None, as_csv: bool
    ) -> None:
        """The item list as the ledger holds it."""
        from ledger.valuation.items import list_items

        with open_store(config_path, db, password_file) as store:
            _print(store.read(list_items), as_csv)

    @ledger.command("report")
    @click.argument(
        "name",
        type=click.Choice(["stock-value", "cogs", "identity", "turnover", "shrinkage", "as-of"]),
    )
    @db_options
    @click.option("--from", "start", help="Start of the window (ISO 8601), posting time.")
    @click.option("--to", "end", help="End of the window (ISO 8601, excluded), posting time.")
    @click.option("--period", help="identity: a month (2026-05) or a day; default every month.")
    @click.option("--at", help="as-of: the event time (ISO 8601).")
    @click.option("--item", help="stock-value, as-of: only this item.")
    @click.option("--location", help="stock-value, as-of: only this location.")
    @click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON lines.")
    @user_errors
    def report(
        name: str,
        db: str | None,
        password_file: Path | None,
        config_path: Path | None,
        start: str | None,
        end: str | None,
        period: str | None,
        at: str | None,
        item: str | None,
        location: str | None,
        as_csv: bool,
    ) -> None:
        """A valuation report: stock-value, cogs, identity, turnover, shrinkage, as-of."""
        from ledger.valuation import reports

        work: Callable[[Any], list[dict[str, Any]]]
        if name == "stock-value":
            work = lambda d: reports.stock_value(d, item, location)  # noqa: E731
        elif name == "cogs":
            work = lambda d: reports.cogs(d, start, end)  # noqa: E731
        elif name == "identity":
            work = lambda d: reports.identity(d, period)  # noqa: E731
        elif name == "turnover":
            work = lambda d: reports.turnover(d, start, end)  # noqa: E731
        elif name == "shrinkage":
            work = lambda d: reports.shrinkage(d, start, end)  # noqa: E731
        else:
            if at is None:
                raise click.UsageError("as-of needs --at TIME")
            when = at
            work = lambda d: reports.as_of(d, when, item, location)  # noqa: E731
        with open_store(config_path, db, password_file) as store:
            _print(store.read(work), as_csv)

    @ledger.command("entries")
    @db_options
    @click.option("--movement", help="Only the entries of this movement id.")
    @click.option("--since", type=click.IntRange(0), default=0, help="After this entry position.")
    @click.option("--limit", type=click.IntRange(1, 1000), default=100, help="At most this many.")
    @click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per line, not JSON lines.")
    @user_errors
    def entries(
        db: str | None,
        password_file: Path | None,
        config_path: Path | None,
        movement: str | None,
        since: int,
        limit: int,
        as_csv: bool,
    ) -> None:
        """The journal in money: each entry with its balanced debit and credit lines."""
        from ledger.valuation import reports

        with open_store(config_path, db, password_file) as store:
            found, _ = store.read(lambda d: reports.entries(d, movement, since, limit))
        _print(reports.entry_lines(found) if as_csv else found, as_csv)
