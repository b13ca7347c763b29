"""Which serial ports this machine has, by their stable /dev/serial/by-id names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from drivers.base import Found

BY_ID_DIR = Path("/dev/serial/by-id")


def discover_ports(by_id: Path, ports: list[Any]) -> list[Found]:
    """Serial ports by their stable by-id names, with what pyserial knows of each."""
    info = {os.path.realpath(p.device): p for p in ports}
    out: list[Found] = []
    seen: set[str] = set()
    try:
        links = sorted(by_id.iterdir())
    except OSError:
        links = []
    for link in links:
        real = os.path.realpath(link)
        seen.add(real)
        out.append(_found(str(link), real, info.get(real)))
    for real, p in sorted(info.items()):
        if real not in seen:
            out.append(_found(p.device, real, p))
    return out


def _found(stable_id: str, real: str, port: Any) -> Found:
    details: dict[str, str] = {}
    name = Path(real).name
    if port is not None:
        if port.vid is not None and port.pid is not None:
            details["vid_pid"] = f"{port.vid:04x}:{port.pid:04x}"
        for key, value in (
            ("serial", port.serial_number),
            ("manufacturer", port.manufacturer),
            ("product", port.product),
            ("location", port.location),
        ):
            if value:
                details[key] = str(value)
        if port.description and port.description != "n/a":
            name = str(port.description)
    return Found("serial", stable_id, name, real, details)
