"""The [[devices]] settings of a wedge scanner, and matching them against what udev lists."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Literal

from drivers.base import Found
from drivers.framing import MAX_SCAN_BYTES
from drivers.keymap import Layout, LayoutError

_VID_PID_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")


@dataclass(frozen=True)
class WedgeSettings:
    path: str | None = field(
        default=None,
        metadata={"help": "the scanner's /dev/input/by-id/... path (USB scanners)"},
    )
    vid_pid: str | None = field(
        default=None, metadata={"help": 'USB or Bluetooth vendor:product id, e.g. "05e0:1200"'}
    )
    serial: str | None = field(
        default=None,
        metadata={"help": "serial number (USB) or address (Bluetooth) to tell twins apart"},
    )
    name_pattern: str | None = field(
        default=None,
        metadata={"help": 'glob on the device name, case-insensitive, e.g. "Honeywell*"'},
    )
    layout: str = field(
        default="us", metadata={"help": "XKB keyboard layout the scanner is set to: us, de, fr…"}
    )
    variant: str | None = field(default=None, metadata={"help": "XKB layout variant, if any"})
    suffix: Literal["enter", "tab", "none"] = field(
        default="enter",
        metadata={"help": "key that ends a scan (enter includes keypad Enter); none: timeout only"},
    )
    prefix: str | None = field(
        default=None, metadata={"help": "text the scanner sends first, stripped when present"}
    )
    inter_key_timeout_ms: int = field(
        default=100,
        metadata={
            "help": "no key for this long ends a scan (cut short, a bad read, if a suffix is set)",
            "minimum": 1,
            "maximum": 10_000,
        },
    )
    aim: bool = field(
        default=True, metadata={"help": "split AIM symbology ids (]C1, ]d2, ]Q3…) off the data"}
    )
    max_length: int = field(
        default=MAX_SCAN_BYTES,
        metadata={"help": "longest scan in bytes; longer is a bad read", "minimum": 1},
    )
    grab: bool = field(
        default=True, metadata={"help": "grab the device so scans never type anywhere else"}
    )

    def __post_init__(self) -> None:
        if self.path is None and self.vid_pid is None and self.name_pattern is None:
            raise ValueError(
                "set path, vid_pid or name_pattern: a wedge scanner is matched by its "
                "identity, never by chance (any keyboard would do)"
            )
        if self.path is not None and not self.path.startswith("/dev/"):
            raise ValueError(f"path: a /dev/input/by-id/... path, got {self.path!r}")
        if self.vid_pid is not None and not _VID_PID_RE.match(self.vid_pid):
            raise ValueError(
                f'vid_pid: four hex digits, ":", four hex digits, got {self.vid_pid!r}'
            )
        try:  # a few ms; so that `edgetally config check` catches a wrong layout
            Layout(self.layout, self.variant or "")
        except LayoutError as exc:
            raise ValueError(f"layout: {exc}") from exc

    def identity(self) -> str:
        """The configured identity, as people read it."""
        parts = []
        if self.path:
            parts.append(self.path)
        if self.vid_pid:
            parts.append(f"vid:pid {self.vid_pid.lower()}")
        if self.serial:
            parts.append(f"serial {self.serial}")
        if self.name_pattern:
            parts.append(f"name {self.name_pattern!r}")
        return ", ".join(parts)


# udev's input by-id links: usb-<ID_SERIAL>[-if<NN>]-event-<kbd|mouse|...> or
# usb-<ID_SERIAL>-event-if<NN>; the part before is the USB device, whatever its interface.
_BY_ID_NODE = re.compile(r"^(?P<usb>/dev/input/by-id/.+?)(?:-if\d+)?-event-(?:if\d+|[a-z]+)$")


def usb_device(link: str) -> str | None:
    """The USB device a by-id event link names, without its interface and node kind."""
    m = _BY_ID_NODE.match(link)
    return m.group("usb") if m else None


def match(settings: WedgeSettings, found: Found) -> tuple[bool, str]:
    """Whether ``found`` is the configured scanner, and why: every configured identity must hold."""
    if found.driver != "wedge":
        return False, f"not an input device ({found.driver})"
    s = settings
    checks: list[tuple[bool, str]] = []
    if s.path is not None:
        links = found.details.get("by_id", "").split(" ")
        ok = s.path in links or s.path == found.path
        if ok:
            checks.append((True, f"path {s.path} is this device"))
        else:
            usb = usb_device(s.path)
            ok = usb is not None and any(usb_device(link) == usb for link in links)
            shown = "another event node of this device" if ok else "not this device"
            checks.append((ok, f"path {s.path} is {shown}"))
    if s.vid_pid is not None:
        have = found.details.get("vid_pid", "none")
        ok = have == s.vid_pid.lower()
        verb = "matches" if ok else f"is not the configured {s.vid_pid.lower()}"
        checks.append((ok, f"vid:pid {have} {verb}"))
    if s.serial is not None:
        serials = {found.details.get("serial", ""), found.details.get("uniq", "")} - {""}
        ok = s.serial in serials
        shown = "/".join(sorted(serials)) or "none"
        verb = "matches" if ok else f"is not the configured {s.serial!r}"
        checks.append((ok, f"serial {shown} {verb}"))
    if s.name_pattern is not None:
        ok = fnmatch.fnmatchcase(found.name.casefold(), s.name_pattern.casefold())
        verb = "matches" if ok else "does not match"
        checks.append((ok, f"name {found.name!r} {verb} pattern {s.name_pattern!r}"))
    failed = [why for ok, why in checks if not ok]
    if failed:
        return False, "; ".join(failed)
    why = "; ".join(why for _, why in checks)
    if found.details.get("looks_like") == "keyboard":
        why += " (it looks like an ordinary keyboard: check the config)"
    return True, why
