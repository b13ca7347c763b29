"""The LLRP driver's core without I/O: framing, liveness, clock offset, tag reports to
Reads, GPO frames and the texts a person reads when the link fails.

sllurp decodes and encodes the messages; what is here is what sllurp leaves to
its socket thread (framing) or lacks (a keepalive watchdog, readable rejection
texts, an encoder for GPOWriteData).
"""

from __future__ import annotations

import binascii
import socket
import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sllurp.llrp import LLRPMessage
from sllurp.llrp_errors import LLRPError

from agent.errors import DriverError
from agent.model import MAX_INT, Read

HEADER = struct.Struct("!HII")  # version/type, length (header included), message id
HEADER_LEN = HEADER.size
# The largest frame taken: a report of thousands of tags is well under a MiB; a
# length beyond this is a corrupt stream, not a message to buffer.
MAX_FRAME = 4 << 20
SET_READER_CONFIG = 3
RO_ACCESS_REPORT = 61
GPO_WRITE_DATA = 219
# What sllurp's decoders raise on bytes that do not make a message: the ones it
# means (LLRPError) and the ones its struct/dict code lets through on garbage.
DECODE_ERRORS = (
    LLRPError,
    struct.error,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    AttributeError,
    OverflowError,
    RecursionError,
)


class LinkError(DriverError):
    """Why a connection to the reader ended; the driver reports it and reconnects."""


def frame_length(header: bytes) -> int:
    """The whole frame's length from its 10-byte header; LinkError for a corrupt stream."""
    word, length, _ = HEADER.unpack(header)
    version = (word >> 10) & 0x7
    if version not in (1, 2):
        raise LinkError(
            f"malformed frame from the reader: LLRP version {version} (header {header.hex()})"
        )
    if not HEADER_LEN <= length <= MAX_FRAME:
        raise LinkError(f"malformed frame from the reader: length {length} (header {header.hex()})")
    return int(length)


def decode(frame: bytes) -> LLRPMessage:
    """sllurp's decoding of one frame; LinkError (naming type and size) when it cannot."""
    try:
        if len(frame) > HEADER_LEN and (frame[1] | (frame[0] & 0x3) << 8) == RO_ACCESS_REPORT:
            why = report_fits(frame)
            if why is not None:
                raise LLRPError(why)
        msg = LLRPMessage(msgbytes=frame)
        if not isinstance(msg.msgdict, dict) or not isinstance(msg.msgname, str):
            raise LLRPError("no message decoded")
        body = msg.msgdict.get(msg.msgname)
        if not isinstance(body, dict):
            raise LLRPError("no message body decoded")
        return msg
    except DECODE_ERRORS as exc:
        kind = (frame[1] | (frame[0] & 0x3) << 8) if len(frame) >= 2 else -1
        error = "struct.error" if isinstance(exc, struct.error) else type(exc).__name__
        raise LinkError(
            f"malformed frame from the reader (message type {kind}, {len(frame)} bytes): "
            f"{error}: {exc}"
        ) from exc


_TLV = struct.Struct("!HH")


def report_fits(frame: bytes) -> str | None:
    """Why an RO_ACCESS_REPORT's top-level parameters do not tile its body, or None.

    sllurp slices past the end of a truncated parameter without complaint, which
    would turn a corrupt frame into a made-up tag; one pass over the headers
    (not the tags' insides) catches that.
    """
    pos, end = HEADER_LEN, len(frame)
    while pos < end:
        if end - pos < _TLV.size or frame[pos] & 0x80:
            return f"RO_ACCESS_REPORT: stray bytes at offset {pos}"
        _, length = _TLV.unpack_from(frame, pos)
        if length < _TLV.size or pos + length > end:
            return (
                f"RO_ACCESS_REPORT: parameter at offset {pos} claims {length} bytes, "
                f"{end - pos} left"
            )
        pos += length
    return None


class Watchdog:
    """Declares the link dead after ``misses`` keepalive intervals without a frame.

    Any frame counts as life (a reader busy reporting tags is alive). Time the
    driver spends waiting for the daemon to take reads is not the reader's
    silence: the driver calls ``heard`` again when it resumes listening.
    """

    def __init__(self, keepalive_s: float, misses: int, now: float) -> None:
        self.keepalive_s = keepalive_s
        self.silence_s = keepalive_s * misses
        self.last = now

    def heard(self, now: float) -> None:
        self.last = now

    def remaining(self, now: float) -> float:
        return self.last + self.silence_s - now

    def why(self, now: float) -> str:
        return f"no keepalive for {now - self.last:.0f} s (expected every {self.keepalive_s:g} s)"


class ClockOffset:
    """Agent clock minus reader clock (µs), from when reports arrive.

    EdgeX's AdjustLastReadOnByOrigin shifts each report by its own (arrival −
    newest LastSeen); that carries the report's latency and jitter. A report's
    delay is never negative, so the smallest recent difference is the closest
    to the clocks' true difference: that is the estimate. The window is recent
    reports only, so a reader whose clock is stepped is followed within it.
    """

    def __init__(self, window: int = 32) -> None:
        self._recent: deque[int] = deque(maxlen=window)

    def observe(self, agent_us: int, reader_us: int) -> None:
        self._recent.append(agent_us - reader_us)

    @property
    def offset_us(self) -> int | None:
        return min(self._recent) if self._recent else None

    def to_agent(self, reader_us: int | None) -> int | None:
        """A reader timestamp on the agent's clock (None until a report was seen)."""
        offset = self.offset_us
        if reader_us is None or offset is None:
            return None
        return reader_us + offset


@dataclass(frozen=True, slots=True)
class TagTimes:
    """A tag read's own timestamps from the reader (µs UTC, reader clock) and the offset
    in effect, as the driver shows its latest reads (``LlrpReader.times``)."""

    read_id: str
    first_seen_us: int | None
    last_seen_us: int | None
    offset_us: int | None


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _stamp(value: Any) -> int | None:
    """A reader timestamp (µs since the epoch) that every JSON reader holds exactly."""
    return value if type(value) is int and 0 <= value <= MAX_INT else None


def newest_seen(tags: list[Any]) -> int | None:
    """The newest LastSeenTimestampUTC in a report (the report's send time, near enough)."""
    newest = -1  # ``_stamp``'s test inline: this runs for every tag of a report
    for tag in tags:
        if isinstance(tag, dict):
            seen = tag.get("LastSeenTimestampUTC")
            if type(seen) is int and newest < seen <= MAX_INT:
                newest = seen
    return newest if newest >= 0 else None


def tag_reads(
    device: str, tags: list[Any], make: Callable[..., Read], offset_us: int | None = None
) -> tuple[list[Read], list[tuple[Read, int | None, int | None]]]:
    """One Read (kind "tag") per TagReportData, in report order, carrying the reader's
    first/last-seen stamps and ``offset_us``; and the reads that carry stamps, with them.
    A tag without a usable EPC is kept as a Read with a fault."""
    reads: list[Read] = []
    timed: list[tuple[Read, int | None, int | None]] = []
    for tag in tags:
        if not isinstance(tag, dict):
            reads.append(make(device, b"", kind="tag", fault="tag report that is not a tag"))
            continue
        epc = tag.get("EPC")
        fault = None
        data = b""
        if isinstance(epc, bytes):
            try:
                data = binascii.unhexlify(epc)
            except binascii.Error:
                fault = "tag report with an EPC that is not hex"
        else:
            fault = "tag report without an EPC"
        if not data and fault is None:
            fault = "tag report with an empty EPC"
        rssi = _int(tag.get("PeakRSSI"))
        first = _stamp(tag.get("FirstSeenTimestampUTC"))
        last = _stamp(tag.get("LastSeenTimestampUTC"))
        read = make(
            device,
            data,
            kind="tag",
            antenna=_int(tag.get("AntennaID")),
            rssi=None if rssi is None else float(rssi),
            seen_count=_int(tag.get("TagSeenCount")),
            fault=fault,
            reader_first_seen_us=first,
            reader_last_seen_us=last,
            reader_offset_us=offset_us,
        )
        reads.append(read)
        if first is not None or last is not None:
            timed.append((read, first, last))
    return reads, timed


def gpi_event(body: Mapping[str, Any]) -> tuple[int, bool] | None:
    """(port, high) from a READER_EVENT_NOTIFICATION body carrying a GPIEvent."""
    data = body.get("ReaderEventNotificationData")
    ev = data.get("GPIEvent") if isinstance(data, dict) else None
    if not isinstance(ev, dict):
        return None
    port, high = ev.get("GPIPortNumber"), ev.get("GPIEvent")
    if type(port) is not int or not isinstance(high, bool):
        return None
    return port, high


def gpo_frame(msg_id: int, port: int, high: bool) -> bytes:
    """SET_READER_CONFIG with one GPOWriteData (LLRP 1.1 §17.2.6.3).

    Encoded here because sllurp has a decoder for GPOWriteData but no encoder
    (its encode_param logs a warning and sends nothing for it).
    """
    param = struct.pack("!HHHB", GPO_WRITE_DATA, 7, port, 0x80 if high else 0)
    body = b"\x00" + param  # ResetToFactoryDefaults = 0
    return HEADER.pack((1 << 10) | SET_READER_CONFIG, HEADER_LEN + len(body), msg_id) + body


# ---- what a person reads --------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _details(status: Mapping[str, Any]) -> str:
    """The FieldError/ParameterError chain under an LLRPStatus, as one parenthesis."""
    parts: list[str] = []
    node: Any = status
    for _ in range(8):  # nesting is shallow in practice; a corrupt chain is cut short
        if not isinstance(node, dict):
            break
        field = node.get("FieldError")
        if isinstance(field, dict):
            parts.append(f"field {field.get('FieldNum')}: {field.get('ErrorCode')}")
        param = node.get("ParameterError")
        if isinstance(param, dict):
            parts.append(f"parameter {param.get('ParameterType')}: {param.get('ErrorCode')}")
        node = param
    return f" ({'; '.join(parts)})" if parts else ""


def rejection(name: str, body: Mapping[str, Any]) -> str | None:
    """The reader's refusal in a response (None when it succeeded or has no status)."""
    status = body.get("LLRPStatus")
    if not isinstance(status, dict):
        return None
    code = status.get("StatusCode", "an unknown status code")
    if code == "Success":
        return None
    text = _text(status.get("ErrorDescription", b""))
    said = f"{code}: {text}" if text else str(code)
    if name == "ERROR_MESSAGE":
        return f"reader could not take a message (ERROR_MESSAGE): {said}{_details(status)}"
    request = name.removesuffix("_RESPONSE")
    out = f"reader rejected {request}: {said}{_details(status)}"
    if request == "IMPINJ_ENABLE_EXTENSIONS":
        out += " (not an Impinj reader? then set impinj_extensions = false)"
    return out


def refused_session(body: Mapping[str, Any]) -> str | None:
    """The reader's ConnectionAttemptEvent when it turned the session down."""
    data = body.get("ReaderEventNotificationData")
    ev = data.get("ConnectionAttemptEvent") if isinstance(data, dict) else None
    if not isinstance(ev, dict) or ev.get("Status") == "Success":
        return None
    status = _text(ev.get("Status", "unknown status"))
    hint = ""
    if "already exists" in status:
        hint = " (another LLRP client is connected to this reader: close it first)"
    return f"reader turned the session down: {status}{hint}"


def connect_problem(host: str, port: int, exc: BaseException, timeout_s: float) -> str:
    """One line a person can act on, from a failed TCP connect."""
    where = f"{host}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"connection to {where} refused: nothing takes LLRP there. An Impinj R700/R720 "
            "on firmware 8 or later takes LLRP only with its RFID interface set to LLRP "
            "(the default is the Impinj IoT Device Interface): change it in the reader's "
            "web page or RShell"
        )
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {timeout_s:g} s (reader off or unreachable?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"cannot connect to {where}: {type(exc).__name__}: {exc}"
