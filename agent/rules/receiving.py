"""Receiving dock: an item scan receives into the dock location.

``PO:<n>`` opens a purchase order for the items that follow; ``END`` (or the
next PO) closes it. With an ASN for that PO, each receive carries its line's
progress in ``ref.asn`` (``expected:24;received:12``), and closing the PO
reports over/short per item: logged, kept in the station's state for status,
signalled to the operator as an alarm when anything differs, and sent to the
ledger in ``ref.asn_closed`` of the station's next movement (END itself moves
nothing, and a movement needs a positive quantity, so the report rides on the
next one; until then status shows it). A serialised unit is received once per PO.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.config import StationSettings
from agent.model import MAX_TEXT, Identity, Read
from agent.rules.asn import load_asn_lines, over_short, summary_text
from agent.rules.base import ITEM_KINDS, Context, Decision, Station, session_keys

RECEIVED = "rcv:"  # state key prefix: quantity received per item under the open PO


class Receiving(Station):
    kind = "receiving"
    commands = ("PO", "END")

    def __init__(self, settings: StationSettings, ctx: Context) -> None:
        super().__init__(settings, ctx)
        self.asn, self.costs = (
            load_asn_lines(settings.asn_file) if settings.asn_file is not None else ({}, {})
        )

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind == "command":
            if identity.command == "PO":
                assert identity.argument is not None
                return self._close(state, opening=identity.argument)
            if identity.command == "END":
                return self._close(state, opening=None)
            return self.not_here(identity)
        if identity.kind in ITEM_KINDS:
            return self._receive(read, identity, state)
        return self.not_here(identity)

    def _receive(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        qty = self.quantity(identity, state)
        if isinstance(qty, Decision):
            return qty
        changes, refused = self.seen_check(identity, state, "received")
        if refused is not None:
            return refused
        po = state.get("po")
        ref: dict[str, str] = {"po": po} if po else {}
        reason = None
        item = identity.item()
        if po in self.asn:
            key = item.key() or ""
            expected = self.asn[po].get(key, 0)
            received = int(state.get(RECEIVED + key, 0)) + qty
            changes[RECEIVED + key] = received
            ref["asn"] = f"expected:{expected};received:{received}"
            if received > expected:
                reason = f"over the ASN for {key}: {received} of {expected}"
        closed = state.get("asn_closed")
        if closed:
            ref["asn_closed"] = str(closed)
            changes["asn_closed"] = None
        unit_cost, currency = self.costs.get(po or "", {}).get(item.key() or "", (None, None))
        movement = self.movement(
            "receive",
            read,
            item,
            qty,
            to=self.settings.location,
            ref=ref,
            operator=state.get("operator"),
            unit_cost=unit_cost,
            currency=currency,
        )
        return self.item_decision(read, identity, state, (movement,), changes, reason)

    def _close(self, state: Mapping[str, Any], opening: str | None) -> Decision:
        """Close the open PO (over/short against its ASN), then open ``opening`` if given."""
        changes: dict[str, Any] = {**session_keys(state, RECEIVED), "next_qty": None}
        changes["po"] = opening
        po = state.get("po")
        if po is None or po not in self.asn:
            if opening is None and po is None:
                return Decision(reason="no PO was open", state=changes)
            note = (
                f"no ASN for PO {opening}"
                if opening and self.asn and opening not in self.asn
                else None
            )
            return Decision(state=changes, reason=note)
        received = {k[len(RECEIVED) :]: int(v) for k, v in state.items() if k.startswith(RECEIVED)}
        diff = over_short(self.asn[po], received)
        text = summary_text(diff, limit=400)
        changes["asn_summary"] = {"po": po, "over_short": diff, "text": text}
        closed = f"{po} {text}"
        changes["asn_closed"] = closed if len(closed) <= MAX_TEXT else closed[: MAX_TEXT - 1] + "…"
        log = (("asn_over_short", {"station": self.name, "po": po, "over_short": diff}),)
        if diff:
            return Decision(feedback="alarm", reason=f"PO {po}: {text}", state=changes, log=log)
        return Decision(reason=f"PO {po}: as expected", state=changes, log=log)
