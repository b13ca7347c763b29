"""Stations and the engine that routes each read to its station (DESIGN §3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.config import StationSettings
from agent.model import Identity, Read
from agent.rules.base import Context, Decision, Station
from agent.rules.receiving import Receiving

STATIONS: dict[str, type[Station]] = {"receiving": Receiving}


class Rules:
    """Holds the stations and their state; one caller at a time (the daemon's rules task).

    ``decide`` updates the working state at once, so that reads decided in one
    group see each other; if storing them fails the caller restores the state
    from the outbox, which holds only what was committed.
    """

    def __init__(
        self,
        stations: list[StationSettings],
        ctx: Context,
        state: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.stations = {s.name: STATIONS[s.kind](s, ctx) for s in stations}
        self.by_device = {d: s.name for s in stations for d in s.devices}
        self.restore(state or {})

    def restore(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        self.state = {name: dict(state.get(name, {})) for name in self.stations}

    def decide(self, device_id: str, read: Read, identity: Identity) -> tuple[str | None, Decision]:
        name = self.by_device.get(device_id)
        if name is None:
            return None, Decision(feedback="bad", reason=f"device {device_id} is in no station")
        decision = self.stations[name].decide(read, identity, self.state[name])
        for key, value in decision.state.items():
            if value is None:
                self.state[name].pop(key, None)
            else:
                self.state[name][key] = value
        return name, decision


__all__ = ["STATIONS", "Context", "Decision", "Rules", "Station"]
