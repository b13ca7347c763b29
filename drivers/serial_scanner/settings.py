"""The [[devices]] settings of a serial scanner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from drivers.framing import MAX_SCAN_BYTES

Terminator = Literal["cr", "lf", "crlf", "none"]
FeedbackProtocol = Literal["none", "honeywell", "zebra-ssi"]


@dataclass(frozen=True)
class SerialSettings:
    port: Path = field(
        metadata={"help": "serial port, best by its stable path /dev/serial/by-id/usb-..."}
    )
    baud: int = field(
        default=9600, metadata={"help": "bits per second", "minimum": 50, "maximum": 4_000_000}
    )
    bytesize: int = field(
        default=8, metadata={"help": "data bits per character", "minimum": 5, "maximum": 8}
    )
    parity: Literal["none", "even", "odd", "mark", "space"] = field(
        default="none", metadata={"help": "parity bit"}
    )
    stopbits: float = field(
        default=1.0, metadata={"help": "stop bits: 1, 1.5 or 2", "minimum": 1, "maximum": 2}
    )
    terminator: Terminator = field(
        default="cr",
        metadata={"help": "what ends a scan: cr, lf, crlf, or none (silence, frame_timeout_ms)"},
    )
    frame_timeout_ms: int = field(
        default=200,
        metadata={
            "help": "silence that ends a scan (terminator none) or cuts short an unterminated line",
            "minimum": 1,
            "maximum": 60_000,
        },
    )
    prefix: str | None = field(
        default=None, metadata={"help": "text the scanner puts before each scan, removed"}
    )
    suffix: str | None = field(
        default=None, metadata={"help": "text the scanner puts after each scan, removed"}
    )
    aim: bool = field(
        default=True, metadata={"help": "scans start with an AIM symbology id (]C1, ]d2...)"}
    )
    max_length: int = field(
        default=MAX_SCAN_BYTES,
        metadata={
            "help": "longest scan in bytes; longer is a bad read",
            "minimum": 1,
            "maximum": 1 << 20,
        },
    )
    feedback: FeedbackProtocol = field(
        default="none",
        metadata={"help": "good/bad-read signals: none, honeywell (ESC 7/8), zebra-ssi (BEEP)"},
    )
    reopen_initial_s: float = field(
        default=0.5,
        metadata={"help": "first wait before reopening a missing port", "minimum": 0.01},
    )
    reopen_max_s: float = field(
        default=30.0, metadata={"help": "longest wait between reopen attempts", "minimum": 0.01}
    )
