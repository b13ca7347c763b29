"""Money as `Decimal`, never float: currencies, parsing and rounding.

A unit cost keeps up to `UNIT_PLACES` places (a pack price divided by 12 is
not a whole cent); an amount posted to an account is rounded to the
currency's minor unit (ISO 4217), half to even, and only there. Amounts are
kept as integers of minor units, so every sum in SQL is exact on both
backends.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

from ledger.schema import LedgerError

UNIT_PLACES = 6
UNIT_Q = Decimal(1).scaleb(-UNIT_PLACES)
_COST_RE = re.compile(rf"^[0-9]{{1,12}}(\.[0-9]{{1,{UNIT_PLACES}}})?$")

# ISO 4217 minor units of the common currencies; one not listed is refused by name.
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(("JPY", "KRW", "ISK", "CLP", "VND", "UGX", "XOF", "XAF"), 0),
    **dict.fromkeys(
        (
            "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON",
            "CAD", "AUD", "NZD", "CNY", "HKD", "SGD", "INR", "BRL", "MXN", "ZAR", "TRY",
        ),
        2,
    ),
    **dict.fromkeys(("KWD", "BHD", "OMR", "JOD", "TND", "LYD", "IQD"), 3),
}  # fmt: skip


class ValuationError(LedgerError):
    """A cost, currency, method or item list the ledger cannot value with."""


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValuationError(
            f"currency {currency!r}: not a known ISO 4217 code "
            f"(known: {', '.join(sorted(MINOR_UNITS))})"
        ) from None


def parse_cost(text: object, where: str) -> Decimal:
    """A unit cost written as a plain decimal string ("4.25"), at most 6 places, not negative.

    A string, not a JSON number: a float would already have lost the cents.
    """
    if not isinstance(text, str) or not _COST_RE.match(text):
        raise ValuationError(
            f'{where}: expected a decimal string such as "4.25" '
            f"(at most {UNIT_PLACES} places, not negative), got {text!r}"
        )
    return Decimal(text)


def to_minor(value: Decimal, places: int) -> int:
    """``value`` in minor units, rounded half to even."""
    return int(value.scaleb(places).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_minor(amount: int, places: int) -> Decimal:
    return Decimal(amount).scaleb(-places)


def money_text(amount: int, places: int) -> str:
    """Minor units as a decimal string with the currency's places ("12.30")."""
    return f"{from_minor(amount, places):.{places}f}"


def unit(value: Decimal) -> Decimal:
    """A unit cost or a value kept to `UNIT_PLACES` places."""
    return value.quantize(UNIT_Q, rounding=ROUND_HALF_EVEN)


# Valuing a stream (``ledger.valuation.core``) counts in integer micro-units: a value or
# unit cost at `UNIT_PLACES` places times 10**6. The same numbers as `Decimal` at 6
# places, rounded the same way (half to even), at a third of the cost: integer
# arithmetic needs no context and no quantize.
MICRO = 10**UNIT_PLACES


def div_even(n: int, d: int) -> int:
    """``n / d`` (``d`` > 0) rounded half to even: what `unit` does to a quotient."""
    q, r = divmod(n, d)
    twice = 2 * r
    if twice > d or (twice == d and q & 1):
        q += 1
    return q


def micros(value: Decimal | str) -> int:
    """A value or unit cost with at most `UNIT_PLACES` places, in micro-units."""
    scaled = Decimal(value).scaleb(UNIT_PLACES)
    whole = int(scaled)
    if whole != scaled:
        raise ValuationError(f"{value}: more than {UNIT_PLACES} decimal places")
    return whole


def from_micros(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-UNIT_PLACES)


def minor_of(amount: int, places: int) -> int:
    """Micro-units in the currency's minor units, rounded half to even (`to_minor`)."""
    return div_even(amount, 10 ** (UNIT_PLACES - places))
