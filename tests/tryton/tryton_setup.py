"""Set up an initialised Tryton database for the tests (run as a script, by trytond's API).

A test-side step only: it makes the company, the products, the locations and
the user that the sink logs in as, the way an administrator would in the
client. The sink itself only ever talks JSON-RPC.

    python tryton_setup.py CONFIG DATABASE SPEC.json
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal


def main(config: str, database: str, spec_path: str) -> None:
    import trytond.config

    trytond.config.update_etc(config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    pool = Pool(database)
    pool.init()
    with Transaction().start(database, 0) as transaction:
        currency = pool.get("currency.currency")(
            name="Euro", code="EUR", symbol="€", digits=2, rounding=Decimal("0.01")
        )
        currency.save()
        party = pool.get("party.party")(name="EdgeTally Test Warehouse")
        party.save()
        company = pool.get("company.company")(party=party, currency=currency)
        company.save()

        User = pool.get("res.user")
        Group = pool.get("res.group")
        groups = Group.search(
            [("name", "in", ["Stock", "Stock Administration", "Product Administration"])]
        )
        (admin,) = User.search([("login", "=", "admin")])
        User.write([admin], {"companies": [("add", [company.id])], "company": company.id})
        user = User(
            login=spec["login"],
            name="EdgeTally agent",
            password=spec["password"],
            groups=[g.id for g in groups],
            companies=[company.id],
            company=company.id,
        )
        user.save()

        Location = pool.get("stock.location")
        (lost,) = Location.search([("type", "=", "lost_found")])
        lost.code = spec["lost_found"]
        lost.save()
        (storage,) = Location.search([("code", "=", "STO")])
        for code in spec["storage"]:
            Location(name=code, code=code, type="storage", parent=storage).save()

        Template = pool.get("product.template")
        Product = pool.get("product.product")
        (unit,) = pool.get("product.uom").search([("symbol", "=", "u")])
        transaction.set_context(company=company.id)
        for code in spec["products"]:
            template = Template(
                name=f"Item {code}",
                code=code,
                type="goods",
                default_uom=unit,
                cost_price_method="fifo",
                list_price=Decimal("10"),
                products=[Product(cost_price=Decimal("1"))],
            )
            template.save()
        transaction.commit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
