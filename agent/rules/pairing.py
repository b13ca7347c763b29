"""Pairing: a handheld joins a station by scanning ``PAIR:<station>``.

Bindings are kept in the outbox's station state under a name no station can
have (station names start with a letter or digit), one row per device, so
they survive restarts; drivers keep stable device ids, so they survive an
unplug and replug too. A device bound to a station in the config stays there.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config import StationSettings
from agent.rules.base import Decision, bad

PAIRINGS = "_pairing"


def pair(
    device: str,
    target: str,
    stations: Mapping[str, StationSettings],
    configured: Mapping[str, str],
    paired: Mapping[str, str],
) -> tuple[Decision, dict[str, str | None]]:
    """The decision for a PAIR scan, and the change to the pairings (device -> station)."""
    if target not in stations:
        known = ", ".join(sorted(stations)) or "none"
        return bad(f"PAIR: there is no station named {target!r} (stations: {known})"), {}
    fixed = configured.get(device)
    if fixed is not None:
        if fixed == target:
            return Decision(reason=f"{device} is in station {target} by the config"), {}
        return bad(f"PAIR: {device} belongs to station {fixed!r} in the config"), {}
    if not stations[target].pairing:
        return bad(f"PAIR: station {target!r} does not take paired devices"), {}
    if paired.get(device) == target:
        return Decision(reason=f"already paired with {target}"), {}
    return Decision(reason=f"paired with {target}"), {device: target}
