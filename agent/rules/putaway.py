"""Putaway (often a paired handheld): scan a location label, then items.

Each item is a ``transfer`` from the station's ``staging`` location to the
location scanned last; the target stays until another label or END. A
serialised unit moves once per target location.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.model import Identity, Read
from agent.rules.base import ITEM_KINDS, Decision, Station, bad, session_keys


class Putaway(Station):
    kind = "putaway"
    commands = ("END",)

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind == "location":
            if identity.location == self.settings.staging:
                return bad(f"{identity.location} is the staging location items come from")
            if identity.location == state.get("target"):
                return Decision(reason=f"already putting away to {identity.location}")
            return Decision(state={**session_keys(state), "target": identity.location})
        if identity.kind == "command":
            if identity.command == "END":
                return Decision(state={**session_keys(state), "target": None, "next_qty": None})
            return self.not_here(identity)
        if identity.kind not in ITEM_KINDS:
            return self.not_here(identity)
        target = state.get("target")
        if not target:
            return bad("scan a location label first: where do the items go?")
        qty = self.quantity(identity, state)
        if isinstance(qty, Decision):
            return qty
        changes, refused = self.seen_check(identity, state, f"put away to {target}")
        if refused is not None:
            return refused
        movement = self.movement(
            "transfer",
            read,
            identity.item(),
            qty,
            from_=self.settings.staging,
            to=target,
            operator=state.get("operator"),
        )
        return self.item_decision(read, identity, state, (movement,), changes)
