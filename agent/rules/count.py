"""Cycle count: scan a location, then items; END closes the count session.

Item scans only add to the session's tally (one state row per item, so a
restart mid-count resumes it); END posts one ``count`` per item with the
counted quantity into that location, then one ``count_close`` that says the
location holds nothing else: the ledger posts the variance of each count, and
takes every item it holds there that nobody counted to 0 (shrinkage). A
serialised unit is counted once per session. Items are tallied by the key the
ledger keeps on-hand by (GTIN, else SKU, SSCC, EPC).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.model import Identity, Item, Read
from agent.rules.base import ITEM_KINDS, LAST, Decision, Station, bad, session_keys

COUNTED = "cnt:"  # state key prefix: tally per item in the open session


class Count(Station):
    kind = "count"
    commands = ("END",)

    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision:
        if identity.kind == "location":
            assert identity.location is not None
            return self._location(identity.location, state)
        if identity.kind == "command":
            if identity.command == "END":
                return self._end(read, state)
            return self.not_here(identity)
        if identity.kind not in ITEM_KINDS:
            return self.not_here(identity)
        return self._tally(identity, state)

    def _location(self, location: str, state: Mapping[str, Any]) -> Decision:
        current = state.get("location")
        if location == current:
            return Decision(reason=f"already counting {location}")
        if any(k.startswith(COUNTED) for k in state):
            return bad(f"a count of {current} is open: scan END to close it first")
        return Decision(
            state={"location": location, "session": state.get("session") or self.ctx.ids.new()}
        )

    def _tally(self, identity: Identity, state: Mapping[str, Any]) -> Decision:
        location = state.get("location") or self.settings.location
        if not location:
            return bad("scan a location label first: where is this count?")
        qty = self.quantity(identity, state)
        if isinstance(qty, Decision):
            return qty
        changes, refused = self.seen_check(identity, state, "counted")
        if refused is not None:
            return refused
        item = identity.item()
        key = item.key()
        assert key is not None  # an item kind always has one
        field_name = next(f for f in ("gtin", "sku", "sscc", "epc") if getattr(item, f) == key)
        before = state.get(COUNTED + key) or {}
        total = int(before.get("qty", 0)) + qty
        changes[COUNTED + key] = {"item": {field_name: key}, "qty": total}
        if not state.get("session"):
            changes["session"] = self.ctx.ids.new()
            changes["location"] = location
        out = self.item_decision_no_read(state, changes)
        return Decision(state=out, reason=f"{key}: {total} counted at {location}")

    def item_decision_no_read(
        self, state: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A tally changes only state: CANCEL undoes it by restoring the keys it changed."""
        out = dict(changes)
        if "next_qty" in state:
            out["next_qty"] = None
        out[LAST] = {"movements": [], "state": {k: state.get(k) for k in out}}
        return out

    def _end(self, read: Read, state: Mapping[str, Any]) -> Decision:
        session, location = state.get("session"), state.get("location")
        tallies = sorted(k for k in state if k.startswith(COUNTED))
        if not session or not location:
            return bad("no count is open: scan a location label first")
        counts = tuple(
            self.movement(
                "count",
                read,
                Item(**state[k]["item"]),
                int(state[k]["qty"]),
                to=location,
                ref={"count_session": str(session)},
                operator=state.get("operator"),
            )
            for k in tallies
        )
        # After the counts (in seq order): LOCATION holds nothing else; the ledger
        # takes every item it holds there and nobody counted to 0.
        close = self.movement(
            "count_close",
            read,
            Item(),
            len(counts),
            to=location,
            ref={"count_session": str(session)},
            operator=state.get("operator"),
            evidence={"counted": [k[len(COUNTED) :] for k in tallies]},
        )
        movements = (*counts, close)
        changes: dict[str, Any] = {
            **session_keys(state, COUNTED),
            "session": None,
            "location": None,
            "next_qty": None,
        }
        # CANCEL after END cancels (or refuses) the counts; it does not reopen the session.
        changes[LAST] = {
            "movements": [
                {"id": m.id, "kind": m.kind, "item": m.item.to_dict(), "qty": m.qty}
                for m in movements
            ],
            "state": {},
        }
        reason = f"count of {location} closed: {len(counts)} item(s)"
        return Decision(movements=movements, state=changes, reason=reason)
