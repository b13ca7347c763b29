"""Serial and USB-CDC barcode scanners (RS-232 docks, ttyACM/ttyUSB) through pyserial.

pyserial opens and configures the port (baud, framing, an exclusive lock); the
bytes are read on the daemon's own loop with ``loop.add_reader`` on the
non-blocking descriptor: no thread, no polling. A scan's bytes are cut into
lines by ``LineFramer`` (bytes in, frames out, no I/O) and finished by
``drivers.framing.finish`` like every other barcode driver.

Modules: ``settings``, ``framing`` (``LineFramer``: terminators, timeouts and
garbage, no I/O), ``feedback`` (Honeywell and Zebra SSI bytes, no I/O),
``ports`` (discovery) and ``driver`` (``SerialScanner``).
"""

from __future__ import annotations

from drivers.serial_scanner.driver import (
    READ_CHUNK,
    READY_MAX,
    SerialScanner,
)
from drivers.serial_scanner.feedback import (
    HONEYWELL,
    SSI_ACK,
    SSI_BEEP,
    SSI_BEEPS,
    SSI_HOST,
    SSI_NAK,
    feedback_bytes,
    ssi_checksum,
    ssi_packet,
    take_ssi_replies,
)
from drivers.serial_scanner.framing import (
    Frame,
    LineFramer,
    garbage,
)
from drivers.serial_scanner.ports import (
    BY_ID_DIR,
    discover_ports,
)
from drivers.serial_scanner.settings import (
    FeedbackProtocol,
    SerialSettings,
    Terminator,
)

__all__ = [
    "BY_ID_DIR",
    "HONEYWELL",
    "READY_MAX",
    "READ_CHUNK",
    "SSI_ACK",
    "SSI_BEEP",
    "SSI_BEEPS",
    "SSI_HOST",
    "SSI_NAK",
    "FeedbackProtocol",
    "Frame",
    "LineFramer",
    "SerialScanner",
    "SerialSettings",
    "Terminator",
    "discover_ports",
    "feedback_bytes",
    "garbage",
    "ssi_checksum",
    "ssi_packet",
    "take_ssi_replies",
]
