"""The [[devices]] settings of a HID POS scanner, and the layout they choose."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal

from agent.errors import DriverError
from drivers.framing import MAX_SCAN_BYTES
from drivers.hidpos.layouts import LAYOUTS, VENDOR_LAYOUTS, Layout

_VID_PID = re.compile(r"([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})")


@dataclass(frozen=True)
class HidPosSettings:
    vid_pid: str = field(metadata={"help": 'USB vendor:product id in hex, "0c2e:0b61"'})
    serial: str | None = field(
        default=None, metadata={"help": "USB serial number, to tell two scanners apart"}
    )
    layout: Literal["auto", "honeywell", "zebra", "generic"] = field(
        default="auto", metadata={"help": "report layout; auto picks by vendor id"}
    )
    interface: int | None = field(
        default=None,
        metadata={"help": "interface number; unset: the one declaring usage page 0x8C"},
    )
    aim: bool = field(default=True, metadata={"help": "keep the AIM symbology id of each scan"})
    send_enable: bool = field(
        default=True, metadata={"help": "send the layout's enable feature report on open"}
    )
    enable_report: str | None = field(
        default=None, metadata={"help": "enable feature report in hex, report id first"}
    )
    max_length: int = field(
        default=MAX_SCAN_BYTES,
        metadata={"help": "longest scan in bytes; longer is a bad read", "minimum": 1},
    )
    read_timeout_ms: int = field(
        default=200,
        metadata={
            "help": "USB read timeout; a scan still flagged 'continued' after it is cut off",
            "minimum": 10,
            "maximum": 10000,
        },
    )
    reconnect_initial_s: float = field(
        default=0.5,
        metadata={"help": "first wait before looking for the scanner again", "minimum": 0.01},
    )
    reconnect_cap_s: float = field(
        default=30.0, metadata={"help": "longest wait between looks", "minimum": 0.01}
    )

    def __post_init__(self) -> None:
        # ValueError: the config loader names the file and the device (`config check`).
        if not _VID_PID.fullmatch(self.vid_pid):
            raise ValueError(
                f'vid_pid {self.vid_pid!r}: expected 4+4 hex digits such as "0c2e:0b61"'
            )
        if self.enable_report is not None:
            try:
                bytes.fromhex(self.enable_report)
            except ValueError:
                raise ValueError(f"enable_report {self.enable_report!r}: not hex") from None


def parse_vid_pid(text: str) -> tuple[int, int]:
    if m := _VID_PID.fullmatch(text):
        return int(m[1], 16), int(m[2], 16)
    raise DriverError(f'vid_pid {text!r}: expected 4+4 hex digits such as "0c2e:0b61"')


def layout_for(settings: HidPosSettings, vid: int) -> Layout:
    """The layout the config names, or the vendor's, with the config's enable report."""
    name = settings.layout if settings.layout != "auto" else VENDOR_LAYOUTS.get(vid, "generic")
    layout = LAYOUTS[name]
    enable = layout.enable_feature if settings.send_enable else None
    if settings.enable_report is not None:
        try:
            enable = bytes.fromhex(settings.enable_report)
        except ValueError as exc:
            raise DriverError(f"enable_report {settings.enable_report!r}: not hex") from exc
    return dataclasses.replace(layout, enable_feature=enable or None)
