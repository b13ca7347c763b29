"""The Tryton side of EdgeTally's ``tryton`` sink: a module named ``edgetally``.

Tryton's stock.move has no field that could carry an idempotency key, and each
JSON-RPC call is its own transaction. This module adds both: ``stock.move``
gets ``edgetally_id`` (the EdgeTally movement id, unique in the database) and
one RPC, ``model.stock.move.edgetally_book``, that looks every movement of a
batch up, books the new ones and does them, in one transaction.

Classes are listed in tryton.cfg (Tryton reads them from there).
"""
