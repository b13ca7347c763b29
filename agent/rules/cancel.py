"""CANCEL: undo the last scan of a station.

The station remembers its last scan (``base.LAST``): the movements it made and
the state before it. CANCEL restores that state (a seen serial may be scanned
again, a count tally goes back) and asks the outbox to cancel the movements.
Whether a movement can still be cancelled is only known in the outbox's
transaction (the syncer may be sending it), so a reversal is prepared here
for each one and the outbox stores it only if the movement may have reached
the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.model import MAX_TEXT, Item, Movement, MovementKind, Read
from agent.outbox.rows import CancelTarget
from agent.rules.base import LAST, Decision, Station, bad

COUNT_WHY_NOT = "a delivered count cannot be reversed: count the location again"


def cancel(station: Station, read: Read, state: Mapping[str, Any]) -> Decision:
    last = state.get(LAST)
    if not isinstance(last, dict):
        return bad("nothing to cancel at this station")
    changes: dict[str, Any] = dict(last.get("state") or {})
    changes[LAST] = None
    targets = tuple(
        _target(station, read, m, state.get("operator")) for m in last.get("movements") or ()
    )
    reason = None if targets else "last scan undone"
    return Decision(state=changes, cancel=targets, reason=reason)


def _target(
    station: Station, read: Read, m: Mapping[str, Any], operator: str | None
) -> CancelTarget:
    kind, qty = m["kind"], int(m["qty"])
    item = Item(**m["item"])
    src, dst = m.get("from"), m.get("to")
    plan: tuple[MovementKind, str | None, str | None] | None
    if kind == "receive":
        plan = ("ship", dst, None)
    elif kind == "ship":
        plan = ("receive", None, src)
    elif kind == "transfer":
        plan = ("transfer", dst, src)
    elif kind in ("return", "adjust"):
        plan = ("adjust", dst, src)  # take back what came in, put back what went out
    else:
        plan = None
    if plan is None:
        return CancelTarget(m["id"], None, COUNT_WHY_NOT)
    new_kind, from_, to = plan
    ref = {k: str(v)[:MAX_TEXT] for k, v in (m.get("ref") or {}).items()}
    ref["reverses"] = m["id"]
    reversal: Movement = station.movement(
        new_kind,
        read,
        item,
        qty,
        from_=from_,
        to=to,
        reason="cancel",
        ref=ref,
        operator=operator,
        evidence={"reverses": m["id"]},
    )
    return CancelTarget(m["id"], reversal)
