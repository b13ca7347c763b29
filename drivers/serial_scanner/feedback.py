"""Good/bad-read signals as bytes, and the scanner's SSI replies taken out of its input. No I/O.

Feedback bytes (``feedback``):

- ``honeywell``: the Host ACK escape commands of Honeywell scanners (Xenon,
  Granit, Voyager, 1900/1950 with "Host ACK On"; Honeywell 1900 and 2020 user
  guides, "Host ACK Responses"): good read ``ESC 7`` (1B 37, "beeps to
  indicate a successful decode and communication to host"), bad read and
  alarm ``ESC 8`` (1B 38, "razz or error tone").
- ``zebra-ssi``: Zebra/Symbol Simple Serial Interface BEEP packets (opcode
  0xE6, message source 4 = host; Zebra "Simple Serial Interface Programmer's
  Guide" 72E-40451, beep code table): good read code 0x00 (one short high),
  bad read 0x08 (four short low), alarm 0x09 (five short low). The scanner
  answers a command with an SSI ACK/NAK packet; the driver takes those out of
  the input instead of reading them as garbage (which would signal bad, which
  would be answered, and so on).
- ``none``: nothing is written.
"""

from __future__ import annotations

from agent.model import FeedbackKind
from drivers.serial_scanner.settings import FeedbackProtocol

SSI_HOST = 0x04
SSI_BEEP = 0xE6
SSI_ACK = 0xD0
SSI_NAK = 0xD1
SSI_BEEPS: dict[FeedbackKind, int] = {"good": 0x00, "bad": 0x08, "alarm": 0x09}
HONEYWELL: dict[FeedbackKind, bytes] = {"good": b"\x1b7", "bad": b"\x1b8", "alarm": b"\x1b8"}


def ssi_checksum(body: bytes) -> bytes:
    """Two's complement of the 16-bit sum of every byte before it, high byte first."""
    return ((-sum(body)) & 0xFFFF).to_bytes(2, "big")


def ssi_packet(opcode: int, data: bytes = b"", *, source: int = SSI_HOST, status: int = 0) -> bytes:
    """Length, opcode, message source, status, data, checksum (Length excludes the checksum)."""
    length = 4 + len(data)
    if length > 0xFF:
        raise ValueError(f"SSI data of {len(data)} bytes does not fit one packet")
    body = bytes([length, opcode, source, status]) + data
    return body + ssi_checksum(body)


def feedback_bytes(protocol: FeedbackProtocol, kind: FeedbackKind) -> bytes:
    if protocol == "honeywell":
        return HONEYWELL[kind]
    if protocol == "zebra-ssi":
        return ssi_packet(SSI_BEEP, bytes([SSI_BEEPS[kind]]))
    return b""


def take_ssi_replies(chunk: bytes) -> tuple[bytes, list[bytes]]:
    """Take the scanner's SSI ACK/NAK packets (checksum verified) out of the input."""
    replies: list[bytes] = []
    out = bytearray()
    pos = 0
    i = 1
    while i < len(chunk):
        if chunk[i] in (SSI_ACK, SSI_NAK) and chunk[i - 1] in (4, 5):
            start = i - 1
            end = start + chunk[start] + 2
            packet = chunk[start:end]
            if len(packet) == end - start and ssi_checksum(packet[:-2]) == packet[-2:]:
                out += chunk[pos:start]
                replies.append(packet)
                pos = i = end
                continue
        i += 1
    out += chunk[pos:]
    return bytes(out), replies
