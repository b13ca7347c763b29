"""Expected lines per purchase order (an ASN), and the over/short report when a PO closes.

The file is JSON: ``{"PO-1001": {"09506000134352": 24, ...}, ...}``. GTINs are
checked and normalised to GTIN-14 through biip, so a 13-digit EAN in the file
matches the GTIN-14 that identify gives for the same item.

A line may also carry the PO's unit cost, for the ledger's valuation:
``{"09506000134352": {"qty": 24, "unit_cost": "4.25", "currency": "EUR"}}``
(the cost a decimal string, never a JSON number; the currency optional). A
receipt against that PO then carries ``unit_cost``/``currency``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import biip
from biip.gtin import Gtin

from agent.errors import EdgeTallyError
from agent.model import MAX_TEXT

MAX_FILE = 16 << 20
MAX_QTY = 10**9

Asn = Mapping[str, Mapping[str, int]]
Costs = dict[str, dict[str, tuple[str, str | None]]]  # po -> gtin -> (unit cost, currency)
_COST_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


class AsnError(EdgeTallyError):
    """The ASN file is unreadable or wrong; the message names the file and the entry."""


def load_asn(path: Path) -> dict[str, dict[str, int]]:
    return load_asn_lines(path)[0]


def load_asn_lines(path: Path) -> tuple[dict[str, dict[str, int]], Costs]:
    """Expected quantities, and the unit costs of the lines that give one."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise AsnError(f"{path}: cannot read the ASN file ({exc.strerror})") from exc
    if len(raw) > MAX_FILE:
        raise AsnError(f"{path}: larger than {MAX_FILE} bytes")
    try:
        table = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AsnError(f"{path}: not JSON ({exc})") from exc
    return parse_asn_lines(table, str(path))


def parse_asn(table: object, where: str) -> dict[str, dict[str, int]]:
    return parse_asn_lines(table, where)[0]


def parse_asn_lines(table: object, where: str) -> tuple[dict[str, dict[str, int]], Costs]:
    if not isinstance(table, dict):
        raise AsnError(f'{where}: expected an object of POs, {{"PO-1": {{"<GTIN>": qty}}}}')
    out: dict[str, dict[str, int]] = {}
    costs: Costs = {}
    for po, lines in table.items():
        if not po or len(po) > MAX_TEXT:
            raise AsnError(f"{where}: PO {po[:40]!r}: expected 1 to {MAX_TEXT} characters")
        if not isinstance(lines, dict):
            raise AsnError(f"{where}: PO {po!r}: expected an object of GTIN: quantity")
        expected: dict[str, int] = {}
        for code, qty in lines.items():
            try:
                gtin = Gtin.parse(code).as_gtin_14()
            except biip.ParseError as exc:
                raise AsnError(f"{where}: PO {po!r}: {code!r} is not a GTIN ({exc})") from exc
            if isinstance(qty, dict):
                cost = _line_cost(qty, f"{where}: PO {po!r}, {code}")
                if cost is not None:
                    costs.setdefault(po, {})[gtin] = cost
                qty = qty.get("qty")
            if isinstance(qty, bool) or not isinstance(qty, int) or not 0 < qty <= MAX_QTY:
                raise AsnError(
                    f"{where}: PO {po!r}, {code}: expected a whole quantity 1..{MAX_QTY}, "
                    f"got {qty!r}"
                )
            if gtin in expected:
                raise AsnError(f"{where}: PO {po!r}: GTIN {gtin} is listed twice")
            expected[gtin] = qty
        out[po] = expected
    return out, costs


def _line_cost(line: dict[str, object], where: str) -> tuple[str, str | None] | None:
    extra = sorted(set(line) - {"qty", "unit_cost", "currency"})
    if extra:
        raise AsnError(f"{where}: unknown key {extra[0]!r}; expected qty, unit_cost, currency")
    cost, currency = line.get("unit_cost"), line.get("currency")
    if cost is None:
        if currency is not None:
            raise AsnError(f"{where}: a currency without a unit_cost")
        return None
    if not isinstance(cost, str) or not _COST_RE.match(cost):
        raise AsnError(
            f'{where}: unit_cost: expected a decimal string such as "4.25" (at most 6 places), '
            f"got {cost!r}"
        )
    if currency is not None and (not isinstance(currency, str) or not _CURRENCY_RE.match(currency)):
        raise AsnError(
            f"{where}: currency: expected an ISO 4217 code such as EUR, got {currency!r}"
        )
    return cost, currency


def over_short(expected: Mapping[str, int], received: Mapping[str, int]) -> dict[str, int]:
    """Received minus expected, per item, only where they differ (+ over, - short)."""
    items = sorted(set(expected) | set(received))
    diff = {i: received.get(i, 0) - expected.get(i, 0) for i in items}
    return {i: d for i, d in diff.items() if d}


def summary_text(diff: Mapping[str, int], limit: int = MAX_TEXT) -> str:
    """``over:<item>+2;short:<item>-3``, cut to ``limit`` characters with a count of the rest."""
    over = [f"{i}+{d}" for i, d in diff.items() if d > 0]
    short = [f"{i}{d}" for i, d in diff.items() if d < 0]
    parts = ([f"over:{','.join(over)}"] if over else []) + (
        [f"short:{','.join(short)}"] if short else []
    )
    text = ";".join(parts) or "as expected"
    if len(text) <= limit:
        return text
    shown = text[: limit - 24]
    rest = len(diff) - shown.count("+") - shown.count("-")
    return f"{shown}…(+{rest} more)"
