"""``stock.move`` with the EdgeTally movement id and the one-transaction booking.

Everything a batch needs happens in the single transaction Tryton opens for an
RPC call: look the ids up, resolve products (by code or identifier), locations
(by code) and lots, create the moves, ``do`` them. A lost answer therefore
leaves either nothing booked or everything booked; the retry finds the booked
ids and answers ``duplicate``. The unique index on ``edgetally_id`` holds even
against two writers at once: the second transaction fails and is retried.
"""

import datetime as dt
from decimal import Decimal, InvalidOperation

from sql import Null
from trytond.model import Unique, fields
from trytond.pool import Pool, PoolMeta
from trytond.rpc import RPC
from trytond.transaction import Transaction

MOVE_FIELDS = {"id", "kind", "product", "lot", "quantity", "from", "to", "unit_price", "date"}


class Move(metaclass=PoolMeta):
    __name__ = "stock.move"

    edgetally_id = fields.Char(
        "EdgeTally Movement",
        readonly=True,
        strip=False,
        help="The EdgeTally movement this move books (its idempotency key).",
    )

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ("edgetally_id_unique", Unique(t, t.edgetally_id), "edgetally.msg_edgetally_id_unique"),
        ]
        cls.__rpc__.update(
            {
                "edgetally_book": RPC(readonly=False, instantiate=None),
            }
        )

    @classmethod
    def copy(cls, moves, default=None):
        default = {} if default is None else default.copy()
        default.setdefault("edgetally_id", None)  # a copy is not the movement
        return super().copy(moves, default=default)

    @classmethod
    def edgetally_book(cls, movements):
        """Book ``movements`` once each, if the user may create and do moves."""
        pool = Pool()
        ModelAccess = pool.get("ir.model.access")
        ModelAccess.check(cls.__name__, "create")
        ModelAccess.check(cls.__name__, "write")
        # What a user does by the buttons (assign, do) writes fields the user
        # may not write directly; the rights were checked above, as the
        # dispatcher checks a button's.
        with Transaction().set_context(_check_access=False):
            return cls._edgetally_book(movements)

    @classmethod
    def _edgetally_book(cls, movements):
        """Book ``movements`` (dicts, in order) once each; a result per movement.

        A movement: ``id``, ``kind`` (``move`` or ``count``), ``product`` (a
        product code or identifier), ``lot`` (a number or null), ``quantity``
        (> 0; for a count the counted quantity), ``from`` and ``to`` (location
        codes; for a count ``to`` is the counted location and ``from`` the
        lost-and-found the variance goes to or comes from), ``unit_price`` (a
        decimal string or null) and ``date`` (ISO date or null).
        """
        pool = Pool()
        Date = pool.get("ir.date")
        today = Date.today()
        results, run = [], []
        ids = [m.get("id") for m in movements if isinstance(m, dict)]
        booked = {m.edgetally_id for m in cls.search([("edgetally_id", "in", ids)])}
        products = _products([m.get("product") for m in movements])
        locations = _locations([m.get(k) for m in movements for k in ("from", "to")])
        seen = set()
        for m in movements:
            reason = _check(m, products, locations)
            mid = m.get("id") if isinstance(m, dict) else None
            if reason is None and (mid in booked or mid in seen):
                results.append({"id": mid, "status": "duplicate"})
                continue
            if reason is not None:
                results.append({"id": mid, "status": "rejected", "reason": reason})
                continue
            seen.add(mid)
            if m["kind"] == "count":
                cls._edgetally_flush(run)  # the count sees what came before
                run = []
                move = cls._edgetally_count(m, products, locations, today)
                cls._edgetally_flush([move])
            else:
                run.append(cls._edgetally_move(m, products, locations, today))
            results.append({"id": mid, "status": "applied"})
        cls._edgetally_flush(run)
        return results

    @classmethod
    def _edgetally_flush(cls, moves):
        if moves:
            cls.save(moves)
            # Tryton does a move out of storage only once it is assigned; the
            # goods have left already, so assign without checking availability.
            cls.assign([m for m in moves if m.assignation_required])
            cls.do(moves)

    @classmethod
    def _edgetally_move(cls, m, products, locations, today):
        pool = Pool()
        Company = pool.get("company.company")
        company = Company(Transaction().context["company"])
        product = products[m["product"]]
        move = cls(
            product=product,
            unit=product.default_uom,
            quantity=float(m["quantity"]),
            from_location=locations[m["from"]],
            to_location=locations[m["to"]],
            effective_date=_date(m.get("date"), today),
            company=company,
            edgetally_id=m["id"],
        )
        move.lot = _lot(product, m.get("lot"))
        if move.on_change_with_unit_price_required():
            price = m.get("unit_price")
            move.unit_price = Decimal(price) if price is not None else product.cost_price
            move.currency = company.currency
        return move

    @classmethod
    def _edgetally_count(cls, m, products, locations, today):
        """The count's variance as one move to or from lost-and-found, the
        way Tryton's inventory confirms one; no variance is a move of 0, so
        the id is still booked."""
        pool = Pool()
        Product = pool.get("product.product")
        product = products[m["product"]]
        where = locations[m["to"]]
        lot = _lot(product, m.get("lot"))
        grouping = ("product", "lot") if lot else ("product",)
        key = (where.id, product.id, lot.id) if lot else (where.id, product.id)
        with Transaction().set_context(stock_date_end=dt.date.max):
            on_hand = Product.products_by_location(
                [where.id], grouping=grouping, grouping_filter=([product.id],)
            ).get(key, 0)
        variance = float(m["quantity"]) - on_hand
        there = {"from": m["to"], "to": m["from"]}
        if variance > 0:
            there = {"from": m["from"], "to": m["to"]}
        move = cls._edgetally_move(
            {**m, **there, "quantity": abs(variance), "unit_price": None},
            products,
            locations,
            today,
        )
        move.lot = lot
        return move


def _check(m, products, locations):
    """Why this movement cannot be booked, or None."""
    if not isinstance(m, dict) or not m.get("id"):
        return "a movement must be an object with an id"
    unknown = set(m) - MOVE_FIELDS
    if unknown:
        return f"unknown fields {sorted(unknown)}"
    if m.get("kind") not in ("move", "count"):
        return f"kind must be move or count, not {m.get('kind')!r}"
    if m.get("product") not in products:
        return f"no product with code or identifier {m.get('product')!r}"
    for key in ("from", "to"):
        if m.get(key) not in locations:
            return f"no stock location with code {m.get(key)!r} ({key})"
    quantity = m.get("quantity")
    if (
        not isinstance(quantity, (int, float))
        or isinstance(quantity, bool)
        or quantity < 0
        or (quantity == 0 and m["kind"] == "move")
    ):
        return f"quantity must be a positive number, not {quantity!r}"
    if m.get("unit_price") is not None:
        try:
            price = Decimal(str(m["unit_price"]))
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price < 0:
            return f"unit_price must be a decimal >= 0, not {m['unit_price']!r}"
    if m.get("date") is not None:
        try:
            dt.date.fromisoformat(m["date"])
        except (TypeError, ValueError):
            return f"date must be an ISO date, not {m['date']!r}"
    return None


def _products(codes):
    Product = Pool().get("product.product")
    codes = sorted({c for c in codes if isinstance(c, str) and c})
    found = {}
    for product in Product.search(
        [
            "OR",
            ("code", "in", codes),
            ("identifiers.code", "in", codes),
        ]
    ):
        for code in [product.code] + [i.code for i in product.identifiers]:
            if code in codes:
                found.setdefault(code, product)
    return found


def _locations(codes):
    Location = Pool().get("stock.location")
    codes = sorted({c for c in codes if isinstance(c, str) and c})
    return {
        loc.code: loc
        for loc in Location.search(
            [
                ("code", "in", codes),
                ("code", "!=", Null),
                ("type", "!=", "view"),
            ]
        )
    }


def _lot(product, number):
    """The product's lot with that number, made the first time it is seen."""
    if not number:
        return None
    Lot = Pool().get("stock.lot")
    lots = Lot.search([("product", "=", product.id), ("number", "=", number)])
    if lots:
        return lots[0]
    lot = Lot(product=product, number=number)
    lot.save()
    return lot


def _date(value, today):
    """The movement's day, never after the server's today (Tryton refuses
    to do a move in the future without a confirmation)."""
    if not value:
        return today
    return min(dt.date.fromisoformat(value), today)
