"""The station interface: reads in, movements out, with station state.

A station decides from the read, its identity and its current state alone, so
the same reads give the same movements (replay). Its state changes come back
in the Decision and are stored by the outbox in the same transaction as the
movements, so a restart resumes where it stopped.

State is a flat map of keys to JSON values, one outbox row per key: a scan
changes a few small rows (a counter, a seen serial), never one growing blob.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from agent.clock import Clock, Uuid7
from agent.config import StationSettings
from agent.model import ClockStamp, Identity, Item, Movement, MovementKind, Read
from agent.outbox.rows import CancelTarget

SEEN = "seen:"  # state key prefix: a serialised unit moved in this session
LAST = "last"  # state key: what CANCEL undoes (the last scan that moved or counted)
ITEM_KINDS = ("gtin", "sscc", "epc", "sku")


@dataclass(frozen=True, slots=True)
class Decision:
    """What one read did: movements, the operator's feedback, state changes (None deletes).

    ``cancel`` asks the outbox to cancel movements still undelivered (or store
    their prepared reversals); ``log`` holds events to log once the decision
    is stored (the rules do no I/O).
    """

    movements: tuple[Movement, ...] = ()
    feedback: Literal["good", "bad", "alarm"] = "good"
    reason: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)
    cancel: tuple[CancelTarget, ...] = ()
    log: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    # A pass judged by time (portal): its verdict in one word (crossed_in, duplicate,
    # interleaved, ...), counted per station in the metrics; a verdict that moves
    # nothing is logged at debug with the reason, and stored nowhere.
    verdict: str | None = None


def bad(reason: str, state: Mapping[str, Any] | None = None) -> Decision:
    return Decision(feedback="bad", reason=reason, state=state or {})


@dataclass(frozen=True, slots=True)
class Context:
    """What every station shares: the agent's id, its clock and its id generator."""

    agent: str
    clock: Clock
    ids: Uuid7


def unit_key(identity: Identity) -> str | None:
    """The serialised unit a read names (SGTIN, SSCC, EPC), or None for a trade item."""
    if identity.epc:
        return f"epc:{identity.epc}"
    if identity.sscc:
        return f"sscc:{identity.sscc}"
    if identity.gtin and identity.serial:
        return f"sgtin:{identity.gtin}.{identity.serial}"
    return None


def session_keys(state: Mapping[str, Any], *prefixes: str) -> dict[str, None]:
    """Deletions for every key of a closing session (seen serials, counts…)."""
    wanted = (SEEN, *prefixes)
    return {k: None for k in state if k.startswith(wanted)}


def undo_record(
    movements: tuple[Movement, ...], state: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    """What CANCEL needs to undo one scan: its movements and the state before it."""
    return {
        "movements": [_undo_movement(m) for m in movements],
        "state": {k: state.get(k) for k in changes if k != LAST},
    }


def _undo_movement(m: Movement) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "item": m.item.to_dict(),
        "qty": m.qty,
        "uom": m.uom,
        "from": m.from_,
        "to": m.to,
        "ref": dict(m.ref),
    }


@dataclass(frozen=True, slots=True)
class Closed:
    """A decision made by time rather than by a read (a portal pass gone quiet, a
    tag departed from a zone): stored without a read, for ``device``."""

    device: str
    decision: Decision


class Station(abc.ABC):
    kind: ClassVar[str]
    # Session commands a station understands besides QTY/OP/PAIR/CANCEL (the engine's).
    commands: ClassVar[tuple[str, ...]] = ()
    # Stations that decide on a clock tick too (RFID): the engine calls tick() for them.
    ticks: ClassVar[bool] = False

    def __init__(self, settings: StationSettings, ctx: Context) -> None:
        self.settings = settings
        self.name = settings.name
        self.ctx = ctx

    @abc.abstractmethod
    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision: ...

    def foreign(self, read: Read, identity: Identity) -> Decision | None:
        """An unknown code: None refuses it (bad read). RFID stations keep foreign tags
        (a TID, an unprogrammed tag) as ignored good reads: a portal must not blare at them."""
        return None

    def inputs(self) -> frozenset[str]:
        """Devices whose GPI inputs this station watches (a portal's beam sensor)."""
        return frozenset()

    def watch_inputs(self, mono_ns: int) -> None:  # noqa: B027 - optional hook
        """The daemon listens to the inputs from ``mono_ns`` on."""

    def gpi(self, device: str, port: int, high: bool, mono_ns: int) -> None:  # noqa: B027
        """A GPI input changed (optional hook)."""

    def restore(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Rebuild what the station keeps in memory from its stored state."""

    def unwatched(self, until_ns: int) -> None:  # noqa: B027 - optional hook
        """The agent could not watch its readers until ``until_ns`` (its loop was stalled):
        reports may wait unread, so no silence before then is evidence of an empty field."""

    def tick(
        self, now_ns: int, boot_id: str, state: Mapping[str, Any], final: bool = False
    ) -> list[Closed]:
        """Decisions that fall due at ``now_ns`` (``final``: everything still open)."""
        return []

    def resume(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> bool:
        """Take in a read stored before a restart, to rebuild what was in flight; whether
        it was taken (False: already decided, or nothing in flight needs it)."""
        return False

    def status(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """What `status` shows of this station's open session; small, no per-serial keys."""
        return {k: v for k, v in state.items() if ":" not in k and k != LAST}

    # ---- helpers shared by the kinds ------------------------------------------------

    def not_here(self, identity: Identity) -> Decision:
        what = identity.command or identity.kind
        return bad(f"{what} is not used at a {self.kind} station")

    def quantity(self, identity: Identity, state: Mapping[str, Any]) -> int | Decision:
        """The count of this scan: GS1 AI 30/37 in the code, else a QTY scanned before, else 1.

        A serialised unit is one unit: a QTY before it is refused, not guessed at.
        """
        if unit_key(identity) is not None and not identity.sku:
            if state.get("next_qty"):
                return bad(
                    "QTY does not apply to a serialised unit; scan it without QTY",
                    {"next_qty": None},
                )
            return 1
        qty = identity.qty or state.get("next_qty") or 1
        if not isinstance(qty, int) or qty <= 0:  # state from an older version: refuse it
            return bad(f"quantity {qty!r} is not a positive whole number", {"next_qty": None})
        return qty

    def seen_check(
        self, identity: Identity, state: Mapping[str, Any], verb: str
    ) -> tuple[dict[str, Any], Decision | None]:
        """Serial dedup: the state change that marks the unit seen, or the bad read."""
        unit = unit_key(identity)
        if unit is None:
            return {}, None
        key = SEEN + unit
        if key in state:
            return {}, bad(f"duplicate serial: {unit} was already {verb} in this session")
        return {key: 1}, None

    def item_decision(
        self,
        read: Read,
        identity: Identity,
        state: Mapping[str, Any],
        movements: tuple[Movement, ...],
        changes: Mapping[str, Any],
        reason: str | None = None,
    ) -> Decision:
        """A scan that moved stock: consume QTY, remember what CANCEL would undo."""
        out = dict(changes)
        if "next_qty" in state:
            out["next_qty"] = None
        out[LAST] = undo_record(movements, state, out)
        return Decision(movements=movements, state=out, reason=reason)

    def movement(
        self,
        kind: MovementKind,
        read: Read,
        item: Item,
        qty: int,
        *,
        from_: str | None = None,
        to: str | None = None,
        reason: str | None = None,
        ref: Mapping[str, str] | None = None,
        operator: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        unit_cost: str | None = None,
        currency: str | None = None,
    ) -> Movement:
        """A movement stamped with this station, the read's device and the read's time.

        The time is the read's (not now): the movement happened when the unit was
        scanned, and a replay of recorded reads gives the same times.
        """
        if qty < (0 if kind in ("count", "count_close") else 1):
            raise ValueError(f"station {self.name}: a {kind} needs a positive qty, got {qty}")
        return Movement(
            id=self.ctx.ids.new(),
            agent=self.ctx.agent,
            kind=kind,
            item=item,
            qty=qty,
            from_=from_,
            to=to,
            reason=reason,
            ref=dict(ref or {}),
            station=self.name,
            device=read.device,
            operator=operator,
            observed_at=read.observed_at,
            clock=ClockStamp(
                synced=self.ctx.clock.synced(), boot_id=read.boot_id, mono_ns=read.mono_ns
            ),
            evidence={
                "read_ids": [read.id],
                "raw": read.data.decode("utf-8", "backslashreplace")[:512],
                **({"symbology": read.symbology} if read.symbology else {}),
                **(evidence or {}),
            },
            unit_cost=unit_cost,
            currency=currency,
        )
