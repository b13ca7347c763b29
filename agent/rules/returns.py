"""Returns desk: an item scan is a ``return`` into the returns location.

A disposition code (``DISP:restock|damaged|quarantine``) applies to the items
that follow until another DISP or END. ``restock`` returns into the station's
location; ``quarantine`` into ``quarantine_location`` (or the location), with
reason ``quarantine``; ``damaged`` is a ``return`` followed by an ``adjust``
that writes the unit off the same location with reason ``damaged``, so the
ledger's journal shows both that it came back and that it is not sellable.
``ORDER:<n>`` sets the return's reference (an RMA) in ``ref.order``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from agent.config import Disposition
from agent.model import Identity, Read
from agent.rules.base import ITEM_KINDS, Decision, Station, bad, session_keys

DISPOSITIONS: tuple[str, ...] = get_args(Disposition)


class Returns(Station):
    kind = "returns"
    commands = ("DISP", "ORDER", "END")

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind == "command":
            return self._command(identity, state)
        if identity.kind not in ITEM_KINDS:
            return self.not_here(identity)
        qty = self.quantity(identity, state)
        if isinstance(qty, Decision):
            return qty
        changes, refused = self.seen_check(identity, state, "returned")
        if refused is not None:
            return refused
        disposition = state.get("disposition") or self.settings.disposition
        location = self.settings.location
        assert location is not None  # the config requires it for returns
        to = (
            self.settings.quarantine_location or location
            if disposition == "quarantine"
            else location
        )
        order = state.get("order")
        ref = {"order": order} if order else {}
        operator = state.get("operator")
        item = identity.item()
        movements = [
            self.movement(
                "return", read, item, qty, to=to, reason=disposition, ref=ref, operator=operator
            )
        ]
        if disposition == "damaged":
            movements.append(
                self.movement(
                    "adjust",
                    read,
                    item,
                    qty,
                    from_=to,
                    reason="damaged",
                    ref=ref,
                    operator=operator,
                    evidence={"write_off_of": movements[0].id},
                )
            )
        return self.item_decision(read, identity, state, tuple(movements), changes)

    def _command(self, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.command == "DISP":
            if identity.argument not in DISPOSITIONS:
                return bad(
                    f"DISP: {identity.argument!r} is not a disposition; "
                    f"expected one of {', '.join(DISPOSITIONS)}"
                )
            return Decision(state={"disposition": identity.argument})
        if identity.command == "ORDER":
            return Decision(state={**session_keys(state), "order": identity.argument})
        if identity.command == "END":
            return Decision(
                state={**session_keys(state), "order": None, "disposition": None, "next_qty": None}
            )
        return self.not_here(identity)
