"""Receiving dock: an item scan receives into the dock location.

``PO:<n>`` sets the purchase order for the items that follow (kept until the
next PO or END); ``QTY:<n>`` sets the count of the next item only; GS1 AI
30/37 in the code itself gives its count. ASN over/short and the rest of
DESIGN §3 come with the full rules engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.model import Identity, Read
from agent.rules.base import Decision, Station


class Receiving(Station):
    kind = "receiving"

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind == "command":
            return self._command(identity, state)
        if identity.kind in ("gtin", "sscc"):
            qty = identity.qty or state.get("next_qty") or 1
            ref = {"po": state["po"]} if state.get("po") else {}
            movement = self.movement(
                "receive", read, identity.item(), qty, to=self.settings.location, ref=ref
            )
            changes = {"next_qty": None} if "next_qty" in state else {}
            return Decision(movements=(movement,), state=changes)
        reason = identity.error or f"a {identity.kind} code means nothing at a receiving station"
        return Decision(feedback="bad", reason=f"unknown code: {reason}")

    def _command(self, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.command == "PO":
            return Decision(state={"po": identity.argument})
        if identity.command == "QTY":
            return Decision(state={"next_qty": identity.qty})
        if identity.command == "END":
            return Decision(state={"po": None, "next_qty": None})
        return Decision(
            feedback="bad", reason=f"{identity.command} is not used at a receiving station"
        )
