"""Perpetual valuation: the value of stock and the cost of goods sold, posted as
balanced journal entries the moment a movement lands (issue 12).

``core`` values one stream (an item at a location) with no I/O; ``engine``
values a batch across streams, re-costing from a late event's point;
``store`` is the SQL both backends run inside the batch's transaction;
``reports`` reads the entries back.
"""

from ledger.valuation.accounts import Accounts
from ledger.valuation.money import ValuationError
from ledger.valuation.settings import ValuationSettings, check_method
from ledger.valuation.store import checker, post

__all__ = ["Accounts", "ValuationError", "ValuationSettings", "check_method", "checker", "post"]
