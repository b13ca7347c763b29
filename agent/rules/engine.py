"""The rules engine: routes each read to its station and applies the rules of DESIGN §3
that hold everywhere (debounce, unknown codes, pairing, badge, QTY, CANCEL).

Pure: reads and state in, decisions and state changes out. The daemon stores
the changes with the read in one outbox transaction; the replay command runs
the same engine with nothing stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.config import Config, StationSettings
from agent.frozen import positional
from agent.identify import Identifier, identify
from agent.identify.epc import raw_tag_key
from agent.identify.settings import COMMAND_NAMES
from agent.model import MAX_TEXT, Identity, Read
from agent.rules.base import ITEM_KINDS, Context, Decision, Station, bad
from agent.rules.cancel import cancel
from agent.rules.count import Count
from agent.rules.debounce import Debouncer
from agent.rules.pairing import PAIRINGS, pair
from agent.rules.portal import Portal
from agent.rules.putaway import Putaway
from agent.rules.receiving import Receiving
from agent.rules.returns import Returns
from agent.rules.shipping import Shipping
from agent.rules.zone import Zone

STATIONS: dict[str, type[Station]] = {
    "receiving": Receiving,
    "shipping": Shipping,
    "returns": Returns,
    "putaway": Putaway,
    "count": Count,
    "portal": Portal,
    "zone": Zone,
}
MAX_SKU = 64

Identify = Callable[[Read], Identity]


def identify_for(config: Config) -> Identify:
    """identify() with the config's [identify] settings, its patterns compiled once."""
    return Identifier(config.identify).identify


@dataclass(frozen=True, slots=True)
class Ruling:
    """One read decided: its station, identity, decision and the state to store with it.

    ``changes`` maps station -> key -> JSON value (None deletes), the form
    ``agent.outbox.Commit.state`` takes. ``double`` marks a debounced read.
    """

    station: str | None
    identity: Identity
    decision: Decision
    changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    double: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """A decision made by time (a portal pass gone quiet, a zone departure), for ``device``:
    stored with no read (``Commit(None, ...)``); ``changes`` as in ``Ruling``."""

    station: str
    device: str
    decision: Decision
    changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_RULING = positional(Ruling)


class Rules:
    """Holds the stations and their state; one caller at a time (the daemon's rules task).

    ``decide`` updates the working state at once, so that reads decided in one
    group see each other; if storing them fails the caller restores the state
    from the outbox, which holds only what was committed.
    """

    def __init__(
        self,
        stations: Sequence[StationSettings],
        ctx: Context,
        state: Mapping[str, Mapping[str, Any]] | None = None,
        identify: Identify = identify,
    ) -> None:
        self.settings = {s.name: s for s in stations}
        self.stations = {s.name: STATIONS[s.kind](s, ctx) for s in stations}
        self.by_device = {d: s.name for s in stations for d in s.devices}
        self.identify = identify
        self.debounce = Debouncer()
        self.state: dict[str, dict[str, Any]] = {}
        self.pairings: dict[str, str] = {}
        self.restore(state or {})

    def restore(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        self.state = {name: dict(state.get(name, {})) for name in self.stations}
        for name, station in self.stations.items():
            station.restore(self.state[name])
        self.pairings = {
            d: s for d, s in dict(state.get(PAIRINGS, {})).items() if s in self.stations
        }

    def station_of(self, device: str) -> str | None:
        return self.by_device.get(device) or self.pairings.get(device)

    def status(self) -> dict[str, Any]:
        """Open sessions per station and the pairings, for /status."""
        return {
            "stations": {n: st.status(self.state[n]) for n, st in self.stations.items()},
            "pairings": dict(self.pairings),
        }

    def decide(self, device: str, read: Read) -> Ruling:
        identity = self.identify(read)
        name = self.station_of(device)
        window = self.settings[name].debounce_ms if name else 0
        if self.debounce.double(device, read, window):
            return Ruling(name, identity, Decision(reason="double read"), double=True)
        if identity.kind == "command" and identity.command == "PAIR":
            assert identity.argument is not None
            decision, change = pair(
                device, identity.argument, self.settings, self.by_device, self.pairings
            )
            self.pairings.update({d: s for d, s in change.items() if s is not None})
            return Ruling(name, identity, decision, {PAIRINGS: change} if change else {})
        if name is None:
            return Ruling(
                None,
                identity,
                bad(f"device {device} is in no station: scan PAIR:<station> to join one"),
            )
        station, state = self.stations[name], self.state[name]
        if identity.kind == "epc" and not station.settings.require_operator:
            decision = station.decide(read, identity, state)  # a tag: what _decide comes to
        else:
            identity = self._policy(station, read, identity)
            decision = self._decide(station, read, identity, state)
        if decision.state:
            _apply(state, decision.state)
        # ``_RULING``: every read comes here; a frozen dataclass's own __init__ is slow.
        return _RULING(
            name, identity, decision, {name: decision.state} if decision.state else {}, False
        )

    def decide_all(self, device: str, reads: Sequence[Read]) -> list[Ruling]:
        """``decide`` for reads of one device in order (the tags of an RFID report).

        Its station, settings and state are looked up once for the run of EPC tag
        reads that need nothing but the station (no debounce window, no operator):
        what ``decide`` does for each of them, without the per-read lookups. Any
        other read goes through ``decide`` (a PAIR may move the device, so the
        lookup is made again after one).
        """
        out: list[Ruling] = []
        i, n = 0, len(reads)
        while i < n:
            name = self.station_of(device)
            st = self.stations.get(name) if name is not None else None
            if (
                name is None
                or st is None
                or st.settings.require_operator
                or self.settings[name].debounce_ms > 0
            ):
                out.extend(self.decide(device, r) for r in reads[i:])
                return out
            identify, state, decide = self.identify, self.state[name], st.decide
            while i < n:
                read = reads[i]
                i += 1
                identity = identify(read)
                if identity.kind != "epc":
                    out.append(self.decide(device, read))
                    break  # a command may change the station: look it up again
                decision = decide(read, identity, state)
                if decision.state:
                    _apply(state, decision.state)
                    changes: Mapping[str, Mapping[str, Any]] = {name: decision.state}
                else:
                    changes = {}
                out.append(_RULING(name, identity, decision, changes, False))
        return out

    def beam_devices(self) -> set[str]:
        """Devices whose GPI inputs a station watches (a portal's beam sensor)."""
        return {d for st in self.stations.values() for d in st.inputs()}

    def beams(self) -> list[tuple[str, str]]:
        """(station, device) for each station gated by a device's GPI, for replay's notes."""
        return [(n, d) for n, st in self.stations.items() for d in sorted(st.inputs())]

    def watch_beam(self, device: str, mono_ns: int) -> None:
        """The daemon listens to ``device``'s GPI from now on."""
        for st in self.stations.values():
            if device in st.inputs():
                st.watch_inputs(mono_ns)

    def gpi(self, device: str, port: int, high: bool, mono_ns: int) -> None:
        """A GPI change (a beam broken or cleared), for the stations that watch it."""
        for st in self.stations.values():
            if device in st.inputs():
                st.gpi(device, port, high, mono_ns)

    def unwatched(self, until_ns: int) -> None:
        """The daemon's loop was stalled until ``until_ns``: the clock stations count no
        silence before then (``Station.unwatched``)."""
        for st in self.stations.values():
            if st.ticks:
                st.unwatched(until_ns)

    @property
    def ticking(self) -> bool:
        """Whether any station decides on the clock (the daemon then runs a tick task)."""
        return any(st.ticks for st in self.stations.values())

    def tick(self, mono_ns: int, boot_id: str, final: bool = False) -> list[Tick]:
        """Decisions due at ``mono_ns`` of boot ``boot_id``; ``final`` closes all that is open
        (a replay's end). Like ``decide``, the working state changes at once."""
        out: list[Tick] = []
        for name, station in self.stations.items():
            if not station.ticks:
                continue
            state = self.state[name]
            for closed in station.tick(mono_ns, boot_id, state, final):
                changes = closed.decision.state
                _apply(state, changes)
                out.append(
                    Tick(name, closed.device, closed.decision, {name: changes} if changes else {})
                )
        return out

    def apply(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Put stored changes back into the working state (after a ``restore``)."""
        for name, change in changes.items():
            if name in self.state:
                _apply(self.state[name], change)

    def resume(self, reads: Iterable[Read]) -> int:
        """Rebuild in-flight RFID tracks from reads stored before a restart; no decisions
        are made here (the next ``tick`` makes those that are due). Returns reads taken."""
        taken = 0
        for read in reads:
            name = self.station_of(read.device)
            if name is None or not self.stations[name].ticks or read.kind != "tag":
                continue
            identity = self._policy(self.stations[name], read, self.identify(read))
            if identity.kind == "epc":
                taken += self.stations[name].resume(read, identity, self.state[name])
        return taken

    def _decide(
        self, station: Station, read: Read, identity: Identity, state: Mapping[str, Any]
    ) -> Decision:
        if identity.kind == "unknown":
            foreign = station.foreign(read, identity)
            if foreign is not None:
                return foreign
            return bad(f"unknown code: {identity.error or 'not understood'}")
        if identity.kind == "command":
            if identity.command == "QTY":
                return Decision(state={"next_qty": identity.qty})
            if identity.command == "OP":
                return Decision(state={"operator": identity.argument}, reason="operator set")
            if identity.command == "CANCEL":
                return cancel(station, read, state)
        elif station.settings.require_operator and not state.get("operator"):
            return bad("scan your badge (OP:<id>) first")
        return station.decide(read, identity, state)

    @staticmethod
    def _policy(station: Station, read: Read, identity: Identity) -> Identity:
        """``unknown = "accept-as-sku"``: printable text that is no misread GS1 or command;
        ``raw_tag_ids``: a tag that is no EPC (a TID...) as a house item key."""
        if identity.kind == "unknown" and read.kind == "tag" and station.settings.raw_tag_ids:
            return (raw_tag_key(read.data) if read.fault is None else None) or identity
        if identity.kind != "unknown" or station.settings.unknown != "accept-as-sku":
            return identity
        if read.fault is not None:
            return identity
        try:
            text = read.data.decode("utf-8")
        except UnicodeDecodeError:
            return identity
        name, colon, _ = text.partition(":")
        if (
            not text
            or len(text) > MAX_SKU
            or not text.isprintable()
            or text.isdigit()  # a GTIN or SSCC with a bad check digit, not a SKU
            or text[0] in "]("
            or (colon and name in COMMAND_NAMES)
            # GS1 that identify refused (a lost GS separator, a bad check digit inside
            # an element string) is a misread of a real code, never a house SKU.
            or identity.warnings
            or (identity.error or "").startswith("GS1")
        ):
            return identity
        return Identity(kind="sku", raw=text, sku=text, warnings=(identity.error or "",))


def _apply(state: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


__all__ = ["ITEM_KINDS", "MAX_TEXT", "STATIONS", "Rules", "Ruling", "Tick", "identify_for"]
