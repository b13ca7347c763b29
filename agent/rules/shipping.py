"""Shipping dock: an item or SSCC scan ships from the dock location.

``ORDER:<n>`` sets the order for the scans that follow (kept until the next
ORDER or END); a serialised unit (SSCC, SGTIN, EPC) ships once per order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.model import Identity, Read
from agent.rules.base import ITEM_KINDS, Decision, Station, session_keys


class Shipping(Station):
    kind = "shipping"
    commands = ("ORDER", "END")

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind == "command":
            if identity.command == "ORDER":
                return Decision(state={**session_keys(state), "order": identity.argument})
            if identity.command == "END":
                return Decision(state={**session_keys(state), "order": None, "next_qty": None})
            return self.not_here(identity)
        if identity.kind not in ITEM_KINDS:
            return self.not_here(identity)
        qty = self.quantity(identity, state)
        if isinstance(qty, Decision):
            return qty
        changes, refused = self.seen_check(identity, state, "shipped")
        if refused is not None:
            return refused
        order = state.get("order")
        movement = self.movement(
            "ship",
            read,
            identity.item(),
            qty,
            from_=self.settings.location,
            ref={"order": order} if order else {},
            operator=state.get("operator"),
        )
        return self.item_decision(read, identity, state, (movement,), changes)
