"""Perpetual valuation: the value of stock and the cost of goods sold, posted as
balanced journal entries the moment a movement lands (issue 12).

``core`` values one stream (an item at a location) with no I/O; ``engine``
values a batch across streams, re-costing from a late event's point;
``store`` is the SQL both backends run inside the batch's transaction;
``reports`` reads the entries back; ``items`` is the item list; ``alerts``
the reorder points. Nothing is imported here: the CLI loads this package on
every command.
"""
