"""A ledger's valuation settings: method, currency and account codes.

Kept in the ledger's database (``val_settings``), so every ledger process and
every command values alike; ``ledger serve --valuation/--currency`` and the
``[ledger]`` config set them. LIFO is refused: IAS 2 does not allow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

from ledger.valuation.accounts import Accounts
from ledger.valuation.core import METHODS, Method
from ledger.valuation.money import ValuationError, minor_units

LIFO = "lifo: not allowed under IFRS (IAS 2.25 permits FIFO or weighted average cost); use fifo or average"


@dataclass(frozen=True, slots=True)
class ValuationSettings:
    method: Method = "fifo"
    currency: str = "EUR"
    accounts: Accounts = field(default_factory=Accounts)

    @property
    def places(self) -> int:
        return minor_units(self.currency)


def check_method(value: object, where: str = "valuation") -> Method:
    if isinstance(value, str) and value.lower() == "lifo":
        raise ValuationError(f"{where}: {LIFO}")
    if value not in METHODS:
        raise ValuationError(f"{where}: expected one of {', '.join(METHODS)}, got {value!r}")
    return cast(Method, value)


def to_rows(s: ValuationSettings) -> list[tuple[str, str]]:
    rows = [("method", s.method), ("currency", s.currency)]
    rows += [(f"account.{f.name}", getattr(s.accounts, f.name)) for f in fields(Accounts)]
    return rows


def from_rows(rows: list[tuple[str, str]]) -> ValuationSettings:
    d = dict(rows)
    s = ValuationSettings()
    accounts = {
        f.name: d[f"account.{f.name}"] for f in fields(Accounts) if f"account.{f.name}" in d
    }
    return replace(
        s,
        method=check_method(d.get("method", s.method)),
        currency=d.get("currency", s.currency),
        accounts=replace(s.accounts, **accounts),
    )


def configure(db: Any, given: Any) -> ValuationSettings:
    """Store what ``given`` (a `LedgerSettings`) sets on top of what the ledger holds.

    The currency cannot change once anything is posted (amounts would mix);
    the method can (it applies to streams not yet valued).
    """
    from ledger.valuation.store import load_settings, save_settings

    held = load_settings(db)
    method = (
        held.method if given.valuation is None else check_method(given.valuation, "--valuation")
    )
    currency = held.currency if given.currency is None else given.currency.upper()
    minor_units(currency)
    if currency != held.currency and db.rows("SELECT 1 FROM entries LIMIT 1"):
        raise ValuationError(
            f"--currency {currency}: this ledger has postings in {held.currency}; "
            "a ledger keeps one currency"
        )
    accounts = {
        f.name: getattr(given, f"account_{f.name}")
        for f in fields(Accounts)
        if getattr(given, f"account_{f.name}", None) is not None
    }
    new = ValuationSettings(method, currency, replace(held.accounts, **accounts))
    save_settings(db, new)
    from ledger.valuation.alerts import enable_webhook

    enable_webhook(db, getattr(given, "alert_webhook", None) is not None)
    return new
