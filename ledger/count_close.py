"""A count that closes a location: what the ledger posts for the items nobody counted.

A ``count_close`` says "this is everything LOCATION holds as of T"; its
``evidence.counted`` lists the item keys the session counted (each has its own
``count``, posted before it). Every other item the ledger holds there was not
found: its on-hand becomes 0 through a ``count-variance`` adjust, as a count of
0 would. Pure: the store reads what it holds and writes what this returns, so
each storage backend does only its own SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from agent.model import ITEM_FIELDS, MAX_TEXT, Item, Movement

# Fixed for ever, like the count variance's: replaying a close never posts twice.
CLOSE_NS = uuid.UUID("3f0c9a57-4b1e-5d6a-8e2f-61a0d4c7b913")


class CloseRefused(ValueError):
    """A count_close the ledger will not apply; the message is the reason sent back."""


def counted_keys(close: Movement) -> frozenset[str]:
    counted = close.evidence.get("counted")
    if not isinstance(counted, list) or not all(
        isinstance(k, str) and 0 < len(k) <= MAX_TEXT for k in counted
    ):
        raise CloseRefused(
            "movement.evidence.counted: expected the list of item keys the session counted"
        )
    if len(counted) != close.qty:
        raise CloseRefused(
            f"movement.qty: a count_close's qty is how many items were counted "
            f"({len(counted)} listed), got {close.qty}"
        )
    return frozenset(counted)


def close_variances(
    close: Movement, held: Iterable[tuple[str, int, Mapping[str, Any] | None]]
) -> list[Movement]:
    """The adjusts that take each uncounted item held at the location to 0.

    ``held``: (item key, on-hand, the item as last journalled or None) for every
    item with a non-zero on-hand at ``close.to``.
    """
    assert close.to is not None
    counted = counted_keys(close)
    out = []
    for key, before, item in sorted(held, key=lambda h: h[0]):
        if key in counted or before == 0:
            continue
        out.append(
            replace(
                close,
                id=str(uuid.uuid5(CLOSE_NS, f"{close.id}/{key}")),
                seq=None,
                kind="adjust",
                item=_item_for(key, item),
                qty=abs(before),
                from_=close.to if before > 0 else None,
                to=close.to if before < 0 else None,
                reason="count-variance",
                evidence={"caused_by": close.id, "counted": 0, "on_hand_before": before},
            )
        )
    return out


def _item_for(key: str, item: Mapping[str, Any] | None) -> Item:
    """The item by the field its key came from (gtin, sku, sscc or epc), nothing more:
    from the item given, else by its form (on-hand keeps GTINs as 14 digits, SSCCs as
    18, EPCs as URNs; anything else is a house SKU)."""
    for name in ("gtin", "sku", "sscc", "epc"):
        if item is not None and item.get(name) == key:
            return Item(**{name: key})
    if key.isascii() and key.isdigit() and len(key) in (14, 18):
        return Item(gtin=key) if len(key) == 14 else Item(sscc=key)
    if key.startswith("urn:epc:"):
        return Item(epc=key)
    assert "sku" in ITEM_FIELDS
    return Item(sku=key)
