"""Where each vendor puts the fields of a scanned-data report: layouts as data, not branches."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Layout:
    """Byte offsets of one vendor's scanned-data input report."""

    name: str
    source: str  # where the offsets come from, so nobody mistakes a guess for a fact
    report_id: int = 0x02
    length_at: int = 1  # byte holding the count of data bytes in this report
    aim_at: int | None = 2  # the 3-byte AIM id (``]`` code modifier); None: not sent
    aim_len: int = 3
    data_at: int = 5
    data_max: int = 56
    more_at: int = 63  # byte and bit of "decoded data continued"
    more_mask: int = 0x01
    enable_feature: bytes | None = None  # feature report (id first) that turns scanning on
    beep: bytes | None = None  # output report (id first) for a good-read beep

    @property
    def size(self) -> int:
        """Shortest report that holds every field."""
        ends = [self.length_at + 1, self.data_at + self.data_max, self.more_at + 1]
        if self.aim_at is not None:
            ends.append(self.aim_at + self.aim_len)
        return max(ends)


LAYOUTS: dict[str, Layout] = {
    "honeywell": Layout(
        "honeywell",
        source=(
            "Honeywell HID POS reports as captured (python_hon_usbhid) and the same layout in "
            "the Access-IS LSR118 manual, appendix B.1: byte 61 is a vendor code id, ignored"
        ),
        # Honeywell's output report 0xFD: length, then [SYN] BEL [CR] (the serial beep command).
        beep=bytes([0xFD, 0x03, 0x16, 0x07, 0x0D]),
    ),
    "zebra": Layout(
        "zebra",
        source=(
            "the vendor-offset model of EdgeTally's design brief (AIM id after the data, an "
            "enable feature report); not checked against a Zebra manual: confirm with a capture"
        ),
        aim_at=58,
        data_at=2,
        enable_feature=bytes([0x04, 0x01]),
    ),
    "generic": Layout(
        "generic",
        source="the HID POS Scanned Data Report order: id, length, 3 symbology bytes, data, flag",
    ),
}
# Vendor defaults for layout = "auto"; anything else reads as "generic".
VENDOR_LAYOUTS = {0x0C2E: "honeywell", 0x05E0: "zebra"}
