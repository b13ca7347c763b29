"""USB HID Point of Sale barcode scanners (usage page 0x8C), read through pyusb.

A scanner in HID POS mode sends each scan as one or more fixed-size input
reports: report id, a length byte, the AIM symbology id, the data bytes, and a
"decoded data continued" bit; a long scan spans several reports. Where the
fields sit differs by vendor, so each known layout is a frozen ``Layout``
(data, not code branches), picked by config or by the scanner's vendor id.

The device is found by VID:PID (and serial), and its interface by the report
descriptor declaring usage page 0x8C, so a keyboard interface is never taken.
The kernel's HID driver is detached while we hold the interface and reattached
on every exit path. Blocking USB calls run in ``asyncio.to_thread`` with a short
timeout, so closing is prompt; the read in flight is owned and awaited.

Modules: ``layouts`` (vendor layouts as data), ``settings``, ``descriptor``
(HID descriptor parsing), ``reports`` (reports -> scans, no I/O), ``device``
(the blocking pyusb side) and ``driver`` (``HidPosScanner``).
"""

from __future__ import annotations

from drivers.hidpos.descriptor import (
    POS_BARCODE_PAGE,
    report_descriptor_length,
    usage_pages,
)
from drivers.hidpos.device import (
    HID_CLASS,
)
from drivers.hidpos.driver import (
    HidPosScanner,
)
from drivers.hidpos.layouts import (
    LAYOUTS,
    VENDOR_LAYOUTS,
    Layout,
)
from drivers.hidpos.reports import (
    Assembler,
    Finished,
    Piece,
    ReportError,
    parse_report,
)
from drivers.hidpos.settings import (
    HidPosSettings,
    layout_for,
    parse_vid_pid,
)

__all__ = [
    "HID_CLASS",
    "LAYOUTS",
    "POS_BARCODE_PAGE",
    "VENDOR_LAYOUTS",
    "Assembler",
    "Finished",
    "HidPosScanner",
    "HidPosSettings",
    "Layout",
    "Piece",
    "ReportError",
    "layout_for",
    "parse_report",
    "parse_vid_pid",
    "report_descriptor_length",
    "usage_pages",
]
