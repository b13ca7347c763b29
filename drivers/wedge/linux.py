"""The seams to evdev and udev, and ``LinuxInput``, the real one (pyudev + evdev).

Tests give fakes of ``InputSystem`` with real file descriptors; nothing else
in the driver touches udev or evdev devices.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from evdev import InputEvent

from drivers.base import Found

BY_ID = "/dev/input/by-id/"
# USB vendors that make scanners (Symbol/Zebra, Metrologic and Hand Held Products/
# Honeywell, PSC and Datalogic, Newland, Opticon): only to label `edgetally
# devices` output; matching always needs the configured identity.
_SCANNER_VIDS = frozenset({"05e0", "0c2e", "0536", "05f9", "080c", "1eab", "065a"})
_SCANNER_WORDS = re.compile(
    r"scan|barcode|bar code|honeywell|zebra|symbol|datalogic|newland|metrologic|opticon|"
    r"hand held products|socket mobile",
    re.IGNORECASE,
)


class EventDevice(Protocol):
    """What we use of an ``evdev.InputDevice``."""

    fd: int

    def read(self) -> Iterable[InputEvent]: ...
    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Change:
    """A udev event for an input node: ``found`` is None when it is being removed."""

    action: str  # add, change, remove (udev's words)
    path: str
    found: Found | None = None


class Hotplug(Protocol):
    def fileno(self) -> int: ...
    def changes(self) -> list[Change]:
        """Every change waiting now; never blocks."""
        ...

    def close(self) -> None: ...


class InputSystem(Protocol):
    def devices(self) -> list[Found]: ...
    def open(self, path: str) -> EventDevice: ...
    def watch(self) -> Hotplug: ...


def describe(
    node: str, links: Iterable[str], props: Mapping[str, str], attrs: Mapping[str, str]
) -> Found:
    """A udev input node (its properties and its parent's sysfs attributes) as a Found."""
    name = attrs.get("name", "").rstrip("\n") or props.get("NAME", "").strip('"') or node
    vid = (props.get("ID_VENDOR_ID") or attrs.get("id/vendor", "")).lower()
    pid = (props.get("ID_MODEL_ID") or attrs.get("id/product", "")).lower()
    serial = props.get("ID_SERIAL_SHORT", "")
    uniq = attrs.get("uniq", "").rstrip("\n")
    by_id = sorted(link for link in links if link.startswith(BY_ID))
    if _SCANNER_WORDS.search(name) or vid in _SCANNER_VIDS:
        looks = "scanner"
    elif props.get("ID_INPUT_KEYBOARD") == "1":
        looks = "keyboard"
    else:
        looks = "keys"  # buttons, remote controls, power keys
    details = {"looks_like": looks, "bus": props.get("ID_BUS", "")}
    for key, value in (
        ("vid_pid", f"{vid}:{pid}" if vid and pid else ""),
        ("serial", serial),
        ("uniq", uniq),
        ("by_id", " ".join(by_id)),
    ):
        if value:
            details[key] = value
    stable = by_id[0] if by_id else details.get("vid_pid", node)
    if not by_id and (serial or uniq) and "vid_pid" in details:
        stable = f"{stable}:{serial or uniq}"
    return Found("wedge", stable, name, node, details)


class _UdevHotplug:
    def __init__(self, monitor: Any) -> None:
        self._monitor = monitor

    def fileno(self) -> int:
        return int(self._monitor.fileno())

    def changes(self) -> list[Change]:
        out = []
        while (dev := self._monitor.poll(timeout=0)) is not None:
            node = dev.device_node
            if not node or not os.path.basename(node).startswith("event"):
                continue
            found = None if dev.action == "remove" else _found_from_udev(dev)
            if dev.action == "remove" or found is not None:
                out.append(Change(str(dev.action), str(node), found))
        return out

    def close(self) -> None:
        self._monitor = None  # libudev closes the socket when its monitor is unreferenced


def _found_from_udev(dev: Any) -> Found | None:
    node = dev.device_node
    props = {str(k): str(v) for k, v in dev.properties.items()}
    if not node or "1" not in (props.get("ID_INPUT_KEY"), props.get("ID_INPUT_KEYBOARD")):
        return None
    attrs: dict[str, str] = {}
    parent = dev.parent
    for name in ("name", "uniq", "id/vendor", "id/product"):
        with contextlib.suppress(KeyError, AttributeError, UnicodeDecodeError):
            attrs[name] = str(parent.attributes.asstring(name))
    return describe(str(node), [str(link) for link in dev.device_links], props, attrs)


class LinuxInput:
    """The real input system: udev to find and follow devices, evdev to read them."""

    def __init__(self) -> None:
        import pyudev

        self._pyudev = pyudev
        self._context = pyudev.Context()

    def devices(self) -> list[Found]:
        found = (_found_from_udev(d) for d in self._context.list_devices(subsystem="input"))
        return sorted((f for f in found if f is not None), key=lambda f: f.path or "")

    def open(self, path: str) -> EventDevice:
        from evdev import InputDevice

        return InputDevice(path)

    def watch(self) -> Hotplug:
        monitor = self._pyudev.Monitor.from_netlink(self._context)
        monitor.filter_by("input")
        monitor.start()
        return _UdevHotplug(monitor)
