"""The station interface: reads in, movements out, with station state.

A station decides from the read, its identity and its current state alone, so
the same reads and clock give the same movements (replay). Its state changes
come back in the Decision and are stored by the outbox in the same
transaction as the movements, so a restart resumes where it stopped.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from agent.clock import Clock, Uuid7, utc_iso
from agent.config import StationSettings
from agent.model import ClockStamp, Identity, Item, Movement, MovementKind, Read


@dataclass(frozen=True, slots=True)
class Decision:
    """What one read did: movements, the operator's feedback, state changes (None deletes)."""

    movements: tuple[Movement, ...] = ()
    feedback: Literal["good", "bad"] = "good"
    reason: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Context:
    """What every station shares: the agent's id, its clock and its id generator."""

    agent: str
    clock: Clock
    ids: Uuid7


class Station(abc.ABC):
    kind: ClassVar[str]

    def __init__(self, settings: StationSettings, ctx: Context) -> None:
        self.settings = settings
        self.name = settings.name
        self.ctx = ctx

    @abc.abstractmethod
    def decide(self, read: Read, identity: Identity, state: Mapping[str, Any]) -> Decision: ...

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
    ) -> Movement:
        """A movement stamped with this station, the read's device and the agent's clock."""
        if qty <= 0:
            raise ValueError(f"station {self.name}: a movement needs a positive qty, got {qty}")
        clock = self.ctx.clock
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
            observed_at=utc_iso(clock.wall()),
            clock=ClockStamp(synced=clock.synced(), boot_id=clock.boot_id, mono_ns=clock.mono_ns()),
            evidence={
                "read_ids": [read.id],
                "raw": read.data.decode("utf-8", "backslashreplace"),
                **({"symbology": read.symbology} if read.symbology else {}),
                **(evidence or {}),
            },
        )
