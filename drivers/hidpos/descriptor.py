"""HID descriptors: which usage pages an interface declares, and how long its report descriptor is."""

from __future__ import annotations

POS_BARCODE_PAGE = 0x8C  # HID Point of Sale Usage Tables: "Bar Code Scanner"
REPORT_DESCRIPTOR = 0x22
HID_DESCRIPTOR = 0x21


def usage_pages(descriptor: bytes) -> frozenset[int]:
    """Every usage page a HID report descriptor declares.

    Hand-written because no well-kept pure-Python HID descriptor parser works on
    bytes from pyusb (hid-tools drags in hidraw and kernel uhid helpers); this
    needs only the item framing (HID 1.11 §6.2.2.2): a prefix byte of
    tag(4)|type(2)|size(2), or 0xFE for a long item. Usage pages come from
    Global "Usage Page" items and from 4-byte Local "Usage" items (page in the
    high half).
    """
    pages: set[int] = set()
    i = 0
    while i < len(descriptor):
        prefix = descriptor[i]
        if prefix == 0xFE:  # long item: size, tag, data
            if i + 2 >= len(descriptor):
                raise ValueError(f"report descriptor cut short in a long item at byte {i}")
            i += 3 + descriptor[i + 1]
            continue
        size = (0, 1, 2, 4)[prefix & 0x03]
        kind, tag = (prefix >> 2) & 0x03, prefix >> 4
        if i + 1 + size > len(descriptor):
            raise ValueError(f"report descriptor cut short at byte {i} (item 0x{prefix:02x})")
        value = int.from_bytes(descriptor[i + 1 : i + 1 + size], "little")
        if kind == 1 and tag == 0:  # Global: Usage Page
            pages.add(value)
        elif kind == 2 and tag in (0, 1, 2) and size == 4:  # Local: Usage/Min/Max with page
            pages.add(value >> 16)
        i += 1 + size
    return frozenset(pages)


def report_descriptor_length(extra: bytes) -> int | None:
    """wDescriptorLength of the report descriptor, from the HID class descriptor."""
    i = 0
    while i + 1 < len(extra):
        length, kind = extra[i], extra[i + 1]
        if length < 2:
            return None
        if kind == HID_DESCRIPTOR and length >= 9:
            count = extra[i + 5]
            for n in range(count):
                at = i + 6 + 3 * n
                if at + 2 < i + length and extra[at] == REPORT_DESCRIPTOR:
                    return int.from_bytes(extra[at + 1 : at + 3], "little")
        i += length
    return None
