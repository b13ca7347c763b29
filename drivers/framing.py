"""What every barcode driver does to a finished scan: prefix, AIM id, length limits.

The drivers differ in how a scan's bytes arrive (key events, a serial line, HID
reports); what a scan *is* once its bytes are in is the same for all, so it lives
here once. Data is never stripped or split on whitespace: GS (0x1D) is
whitespace to Python, and a GS1-128 code without its separators is a different
code.
"""

from __future__ import annotations

from dataclasses import dataclass

# ISO/IEC 15424: "]" + code character + modifier character.
_AIM_CODES = frozenset(b"ABCdDEeFGHIjKLMNOPQRSTUVXYZz")
MAX_SCAN_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Scan:
    """A finished scan, ready to become a Read."""

    data: bytes
    symbology: str | None = None
    fault: str | None = None


def split_aim(data: bytes) -> tuple[str | None, bytes]:
    """Split a leading AIM symbology identifier (``]C1``, ``]d2``, ``]Q3``...) off the data."""
    if len(data) >= 3 and data[0] == 0x5D and data[1] in _AIM_CODES:
        modifier = data[2]
        if 0x30 <= modifier <= 0x39 or 0x41 <= modifier <= 0x5A or 0x61 <= modifier <= 0x7A:
            return data[:3].decode("ascii"), data[3:]
    return None, data


def finish(
    data: bytes,
    *,
    prefix: bytes = b"",
    suffix: bytes = b"",
    aim: bool = True,
    max_length: int = MAX_SCAN_BYTES,
    dropped: int = 0,
) -> Scan:
    """A scan's bytes as the scanner sent them -> Scan, with a fault when they are wrong.

    ``dropped`` is how many bytes the driver had to discard past ``max_length``
    (the rest of an over-long line): the kept part is evidence, the read is bad.
    """
    if prefix and data.startswith(prefix):
        data = data[len(prefix) :]
    if suffix and data.endswith(suffix):
        data = data[: -len(suffix)]
    symbology = None
    if aim:
        symbology, data = split_aim(data)
    fault = None
    if dropped or len(data) > max_length:
        total = len(data) + dropped
        data = data[:max_length]
        fault = f"scan longer than max_length {max_length} bytes ({total} bytes)"
    elif not data:
        fault = "empty scan"
    return Scan(data, symbology, fault)
