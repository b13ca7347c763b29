"""A desk of stations for rules tests: real identify, real engine, optionally a real outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.clock import Clock, Uuid7, utc_iso
from agent.config import StationSettings
from agent.model import Movement, Read
from agent.outbox import Commit, Outbox, Stored
from agent.rules import Context, Rules, Ruling

AGENT = "dock-7"
T0 = 1_767_225_600.0  # 2026-01-01


def gtin14(n: int) -> str:
    body = f"0950600{n:06d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def sgtin(n: int, serial: str) -> str:
    return f"01{gtin14(n)}21{serial}"


def station(name: str, kind: str, devices: tuple[str, ...] = ("d1",), **kw: Any) -> StationSettings:
    if kind in ("receiving", "shipping", "returns") and "location" not in kw:
        kw["location"] = f"{name.upper()}-LOC"
    if kind == "putaway" and "staging" not in kw:
        kw["staging"] = "STAGING"
    return StationSettings(name=name, kind=kind, devices=list(devices), **kw)  # type: ignore[arg-type]


class Desk:
    """Scans go through Rules.decide; with ``outbox`` every ruling is stored as the daemon does."""

    def __init__(
        self, stations: list[StationSettings], outbox: Outbox | None = None, boot: str = "boot-1"
    ) -> None:
        self.settings = stations
        self.outbox = outbox
        self.boot = boot
        self.mono = 10**9
        self.wall = T0
        self.clock = Clock(
            wall=lambda: self.wall, mono_ns=lambda: self.mono, boot_id=boot, synced=lambda: True
        )
        self.ids = Uuid7(self.clock.wall)
        self.rules = self._rules()
        self.stored: list[Stored] = []

    def _rules(self) -> Rules:
        state = self.outbox.station_state() if self.outbox is not None else None
        return Rules(self.settings, Context(AGENT, self.clock, self.ids), state)

    def restart(self) -> None:
        """A new engine from what the outbox holds, as after a daemon restart."""
        self.rules = self._rules()

    def read(self, data: str | bytes, device: str = "d1", gap_ms: int = 1000) -> Read:
        self.mono += gap_ms * 1_000_000
        self.wall += gap_ms / 1000
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return Read(
            id=self.ids.new(),
            device=device,
            kind="barcode",
            data=raw,
            observed_at=utc_iso(self.wall),
            mono_ns=self.mono,
            boot_id=self.boot,
        )

    def scan(self, data: str | bytes, device: str = "d1", gap_ms: int = 1000) -> Ruling:
        read = self.read(data, device, gap_ms)
        ruling = self.rules.decide(device, read)
        if self.outbox is not None:
            d = ruling.decision
            (result,) = self.outbox.store_blocking(
                [Commit(read, d.movements, ruling.changes, d.reason, d.cancel)]
            )
            assert result.error is None, result.error
            self.stored.append(result)
        return ruling

    def moves(self, *codes: str, device: str = "d1") -> list[Movement]:
        out: list[Movement] = []
        for code in codes:
            ruling = self.scan(code, device)
            assert ruling.decision.feedback != "bad", (code, ruling.decision.reason)
            out.extend(ruling.decision.movements)
        return out


def on_hand(movements: list[Movement]) -> dict[str, int]:
    """On-hand as the reference ledger computes it (counts set, others add), by location/item."""
    stock: dict[str, int] = {}
    for m in movements:
        key = m.item.key()
        if m.kind == "count":
            stock[f"{m.to}/{key}"] = m.qty
            continue
        if m.from_:
            stock[f"{m.from_}/{key}"] = stock.get(f"{m.from_}/{key}", 0) - m.qty
        if m.to:
            stock[f"{m.to}/{key}"] = stock.get(f"{m.to}/{key}", 0) + m.qty
    return {k: v for k, v in stock.items() if v}


def open_outbox(tmp_path: Path) -> Outbox:
    return Outbox.open(tmp_path / "outbox.db", AGENT, 64 << 20)
