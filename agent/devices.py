"""`edgetally devices`: what is plugged in, and whether and why it matches the config.

Each driver knows how to find its own kind of device (``Driver.discover``) and
how to tell whether a found device is the one a config entry names
(``Driver.matches``); this module only puts the answers side by side, so the
person at the dock sees why a scanner was not picked up (or why a keyboard was
not).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Config, DeviceSettings
from drivers import DRIVERS
from drivers.base import Driver, Found


@dataclass(frozen=True)
class Match:
    device_id: str  # the config's id
    matched: bool
    why: str


@dataclass(frozen=True)
class Seen:
    found: Found
    matches: list[Match] = field(default_factory=list)


@dataclass(frozen=True)
class Survey:
    seen: list[Seen]
    problems: dict[str, str]  # driver -> why it could not look (no USB backend, ...)
    unmatched: list[DeviceSettings]  # configured devices nothing found matches
    looked_for: list[str]  # the drivers that looked
    hints: list[str] = field(default_factory=list)  # why nothing was found, when nothing was
    configured: list[tuple[str, str, str]] = field(default_factory=list)  # (id, driver, state)

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": [
                {
                    "driver": s.found.driver,
                    "stable_id": s.found.stable_id,
                    "name": s.found.name,
                    "path": s.found.path,
                    "details": s.found.details,
                    "matches": [
                        {"device": m.device_id, "matched": m.matched, "why": m.why}
                        for m in s.matches
                    ],
                }
                for s in self.seen
            ],
            "problems": self.problems,
            "unmatched": [{"device": d.id, "driver": d.driver} for d in self.unmatched],
            "looked_for": self.looked_for,
            "hints": self.hints,
            "configured": [{"device": i, "driver": d, "state": st} for i, d, st in self.configured],
        }


def survey(config: Config | None) -> Survey:
    """Ask every driver what it sees; match each found device against the config's devices."""
    seen: list[Seen] = []
    problems: dict[str, str] = {}
    configured = list(config.devices) if config is not None else []
    matched_ids: set[str] = set()
    looked = []
    for name in sorted(DRIVERS):
        driver = DRIVERS[name]
        if driver.discover.__func__ is Driver.discover.__func__:  # type: ignore[attr-defined]
            continue  # a driver with nothing to find (the simulator)
        looked.append(name)
        try:
            found = driver.discover()
        except Exception as exc:  # one bus failing must not hide the others
            problems[name] = f"{type(exc).__name__}: {exc}"
            continue
        for f in found:
            matches = []
            for dev in configured:
                if dev.driver != name:
                    continue
                try:
                    ok, why = driver.matches(dev.options, f)
                except Exception as exc:
                    ok, why = False, f"could not compare: {type(exc).__name__}: {exc}"
                matches.append(Match(dev.id, ok, why))
                if ok:
                    matched_ids.add(dev.id)
            seen.append(Seen(f, matches))
    unmatched = [d for d in configured if d.id not in matched_ids and d.driver in looked]
    hints = [] if seen else why_nothing()
    states = [(d.id, d.driver, st) for d in configured if (st := reach(d)) is not None]
    return Survey(seen, problems, unmatched, looked, hints, states)


def why_nothing(
    dev: Path = Path("/dev"), can_read: Callable[[Path], bool] = lambda p: os.access(p, os.R_OK)
) -> list[str]:
    """Why no scanner was found: no device folders at all, or none this user may open."""
    out = []
    inputs = dev / "input"
    if not inputs.is_dir():
        out.append(f"no {inputs}: no input devices on this machine (a container or a VM?)")
    else:
        nodes = sorted(inputs.glob("event*"))
        if nodes and not any(can_read(n) for n in nodes):
            out.append(
                f"{len(nodes)} input device(s) in {inputs}, none readable by this user: run as "
                "the service user, or add this user to the edgetally-scanners group"
            )
    if not (dev / "serial" / "by-id").is_dir():
        out.append(f"no {dev / 'serial' / 'by-id'}: no USB serial scanner is plugged in")
    return out


def reach(device: DeviceSettings, timeout_s: float = 1.0) -> str | None:
    """What can be said of a configured device no bus lists: an LLRP reader's TCP port
    (reachable or not), a simulated scanner's script (there or not)."""
    from drivers.llrp_settings import LlrpSettings
    from drivers.simulated import SimulatedSettings

    options = device.options
    if isinstance(options, SimulatedSettings):
        there = "found" if options.script.is_file() else "MISSING"
        return f"simulated: plays {options.script} ({there})"
    if isinstance(options, LlrpSettings):
        where = f"{options.host}:{options.port}"
        try:
            with socket.create_connection((options.host, options.port), timeout_s):
                return f"reader at {where}: reachable (TCP connect)"
        except OSError as exc:
            return f"reader at {where}: NOT reachable ({exc.strerror or exc})"
    return None


def render_lines(result: Survey, config: Config | None) -> list[str]:
    """Plain lines, one fact each, for a terminal or a support ticket."""
    lines: list[str] = []
    by_driver: dict[str, list[Seen]] = {}
    for s in result.seen:
        by_driver.setdefault(s.found.driver, []).append(s)
    for name in result.looked_for:
        items = by_driver.get(name, [])
        if name in result.problems:
            lines.append(f"{name}: could not look: {result.problems[name]}")
            continue
        if not items:
            lines.append(f"{name}: none found")
            continue
        lines.append(f"{name}: {len(items)} found")
        for s in items:
            where = f" at {s.found.path}" if s.found.path else ""
            lines.append(f"  {s.found.stable_id}  {s.found.name!r}{where}")
            for key, value in sorted(s.found.details.items()):
                lines.append(f"      {key}: {value}")
            for m in s.matches:
                verdict = "MATCHES" if m.matched else "does not match"
                lines.append(f"    {verdict} device {m.device_id}: {m.why}")
            if config is not None and not s.matches:
                lines.append(f"    no {name} device in {config.file}")
    if config is None:
        lines.append("no --config given: nothing to match against")
    else:
        for dev in result.unmatched:
            lines.append(
                f"configured device {dev.id} ({dev.driver}) matches nothing plugged in now;"
                " the agent waits for it"
            )
    for dev_id, driver, state in result.configured:
        lines.append(f"configured device {dev_id} ({driver}): {state}")
    if not result.seen and not result.problems:
        lines.append("no scanners or readers found on this machine")
        lines += [f"  why: {hint}" for hint in result.hints]
    return lines
