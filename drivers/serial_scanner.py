"""Serial and USB-CDC barcode scanners (RS-232 docks, ttyACM/ttyUSB) through pyserial.

pyserial opens and configures the port (baud, framing, an exclusive lock); the
bytes are read on the daemon's own loop with ``loop.add_reader`` on the
non-blocking descriptor: no thread, no polling. A scan's bytes are cut into
lines by ``LineFramer`` (bytes in, frames out, no I/O) and finished by
``drivers.framing.finish`` like every other barcode driver.

Terminators, as decided here:

- ``cr``: a scan ends at CR. An LF right after that CR belongs to the
  terminator, so a scanner that sends CR LF works too (no empty scans).
- ``lf``: a scan ends at LF; one CR right before it belongs to the terminator.
- ``crlf``: a scan ends at CR LF, also when the pair is split across reads. A
  lone CR or LF is data, so a scanner set to something else shows up as a bad
  read naming the stray control byte instead of reads silently glued together.
- ``none``: a scan ends after ``frame_timeout_ms`` of silence.

A terminator with nothing before it (an empty line, a stray CR LF) carries no
data and is not a scan; the framer counts these in ``blank_lines``. A line
that stays unterminated for ``frame_timeout_ms`` is flushed as a bad read ("cut
short"), and so is a partial line when the port goes away: its bytes are kept.

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

import asyncio
import contextlib
import errno
import logging
import os
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import serial
import serial.tools.list_ports
from tenacity import wait_exponential_jitter

from agent.errors import DriverError
from agent.logs import event
from agent.model import Feedback, FeedbackKind, Read
from drivers.base import Driver, Found, ReadFactory
from drivers.framing import MAX_SCAN_BYTES, finish

log = logging.getLogger("edgetally.drivers.serial")

Terminator = Literal["cr", "lf", "crlf", "none"]
FeedbackProtocol = Literal["none", "honeywell", "zebra-ssi"]
BY_ID_DIR = Path("/dev/serial/by-id")
READ_CHUNK = 4096
READY_MAX = 256  # reads waiting for the daemon; past this the port is left in the kernel's buffer
_PARITY = {
    "none": serial.PARITY_NONE,
    "even": serial.PARITY_EVEN,
    "odd": serial.PARITY_ODD,
    "mark": serial.PARITY_MARK,
    "space": serial.PARITY_SPACE,
}
_STOPBITS = (1.0, 1.5, 2.0)


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


# ---- framing: bytes in, frames out, no I/O -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A line as it came off the wire, before prefix/suffix/AIM handling."""

    data: bytes
    dropped: int = 0  # bytes past the kept limit, discarded to bound memory
    cut: str | None = None  # why the line ended without its terminator


class LineFramer:
    """Cuts a byte stream into scans by terminator; memory stays bounded by ``keep``."""

    def __init__(self, terminator: Terminator, keep: int) -> None:
        self.terminator = terminator
        self.keep = keep
        self.blank_lines = 0
        self._buf = bytearray()
        self._dropped = 0
        self._last = -1  # the last byte of the current line, kept or dropped
        self._skip_lf = False  # cr: an LF right after a terminating CR is part of it

    @property
    def pending(self) -> bool:
        return bool(self._buf) or self._dropped > 0

    def feed(self, chunk: bytes) -> list[Frame]:
        if self.terminator == "none":
            self._add(chunk)
            return []
        out: list[Frame] = []
        pos = 0
        if self.terminator == "cr":
            if self._skip_lf and chunk[:1] == b"\n":
                pos = 1
            if chunk:
                self._skip_lf = False
            while (end := chunk.find(b"\r", pos)) >= 0:
                self._add(chunk[pos:end])
                self._end(out, trim_cr=False)
                pos = end + 1
                if chunk[pos : pos + 1] == b"\n":
                    pos += 1
                elif pos == len(chunk):
                    self._skip_lf = True
        else:
            need_cr = self.terminator == "crlf"
            while (end := chunk.find(b"\n", pos)) >= 0:
                self._add(chunk[pos:end])
                pos = end + 1
                if self._last == 0x0D:
                    self._end(out, trim_cr=True)
                elif need_cr:
                    self._add(b"\n")  # a lone LF is data here
                else:
                    self._end(out, trim_cr=False)
        self._add(chunk[pos:])
        return out

    def flush(self, why: str) -> Frame | None:
        """End the current line without its terminator (silence, the port went away)."""
        if not self.pending:
            return None
        frame = Frame(bytes(self._buf), self._dropped, why if self.terminator != "none" else None)
        self._reset()
        return frame

    def _add(self, data: bytes) -> None:
        if not data:
            return
        room = self.keep - len(self._buf)
        if room > 0:
            self._buf += data[:room]
        self._dropped += max(0, len(data) - max(room, 0))
        self._last = data[-1]

    def _end(self, out: list[Frame], trim_cr: bool) -> None:
        dropped = self._dropped
        if trim_cr:  # the CR belongs to the terminator, wherever it ended up
            if dropped:
                dropped -= 1
            else:
                del self._buf[-1:]
        if self._buf or dropped:
            out.append(Frame(bytes(self._buf), dropped))
        else:
            self.blank_lines += 1
        self._reset()

    def _reset(self) -> None:
        self._buf.clear()
        self._dropped = 0
        self._last = -1


# Control bytes allowed inside a scan: ISO/IEC 15434 envelopes (MaxiCode, Data
# Matrix on shipping labels) use EOT, FS, GS and RS; GS1 codes use GS as FNC1.
_CONTROL_RE = re.compile(rb"[\x00-\x03\x05-\x1b\x1f\x7f]|\xc2[\x80-\x9f]")


def garbage(data: bytes) -> str | None:
    """Why ``data`` is not a scanner's text (line noise, a wrong baud rate), or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"garbage on the line: byte 0x{data[exc.start]:02x} at offset {exc.start} is not "
            "UTF-8 text (wrong baud rate, parity or bytesize?)"
        )
    if m := _CONTROL_RE.search(data):
        code = m.group()[-1]
        return f"garbage on the line: control byte 0x{code:02x} at offset {m.start()}"
    return None


# ---- feedback: pure builders ---------------------------------------------------------------

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


# ---- the driver ---------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """One line a person can act on, from pyserial's or the kernel's error."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return "not there (unplugged?)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (install the udev rules or add the service user to dialout)"
    if code in (errno.EBUSY, errno.EWOULDBLOCK):
        return "in use by another program (it holds the lock)"
    if code == errno.EIO:
        return "I/O error (unplugged?)"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


class SerialScanner(Driver):
    Settings = SerialSettings

    def __init__(
        self,
        device_id: str,
        settings: SerialSettings,
        reads: ReadFactory,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(device_id, settings, reads)
        self.settings: SerialSettings = settings
        if float(settings.stopbits) not in _STOPBITS:
            raise DriverError(
                f"device {device_id}: stopbits must be 1, 1.5 or 2, got {settings.stopbits}"
            )
        self._sleep = sleep
        self._prefix = settings.prefix.encode("utf-8") if settings.prefix else b""
        self._suffix = settings.suffix.encode("utf-8") if settings.suffix else b""
        # Room for prefix, AIM id and suffix, so the length check is on the scan itself.
        self._keep = settings.max_length + len(self._prefix) + len(self._suffix) + 3
        self._wait = wait_exponential_jitter(
            multiplier=settings.reopen_initial_s,
            max=settings.reopen_max_s,
            jitter=settings.reopen_initial_s,
        )
        self._port: Any = None  # serial.Serial while open
        self._fd: int | None = None
        self._framer = LineFramer(settings.terminator, self._keep)
        self._ready: deque[Read] = deque()
        self._wake = asyncio.Event()
        self._lost: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._failures = 0
        self.open_attempts = 0  # for status and tests: how often the port was tried
        self.ssi_replies = 0

    # -- discovery --

    @classmethod
    def discover(cls) -> list[Found]:
        try:
            ports = serial.tools.list_ports.comports()
        except OSError:
            ports = []
        return discover_ports(BY_ID_DIR, ports)

    @classmethod
    def matches(cls, settings: Any, found: Found) -> tuple[bool, str]:
        if found.driver != "serial":
            return False, f"not a serial port ({found.driver})"
        port = str(settings.port)
        if port == found.stable_id:
            return True, f"port {port}"
        real = os.path.realpath(port)
        if found.path is not None and real == os.path.realpath(found.path):
            return True, f"port {port} is {found.path}"
        return False, f"port {port} is not this device ({found.stable_id})"

    # -- lifecycle --

    async def open(self) -> None:
        """Try the port once; a missing port is not an error, reads() keeps trying."""
        self._try_open()

    async def close(self) -> None:
        if self._port is not None:
            self._close_port()
        self._wake.set()

    async def reads(self) -> AsyncIterator[Read]:
        while self.state == "open":
            if self._ready:
                read = self._ready.popleft()
                if self._paused and len(self._ready) < READY_MAX // 2:
                    self._resume()
                yield read
            elif self._lost is not None:
                self._close_port()
            elif self._port is None:
                await self._sleep(self._backoff())
                if self.state == "open":
                    self._try_open()
            else:
                self._wake.clear()
                await self._wake.wait()

    async def feedback(self, feedback: Feedback) -> None:
        payload = feedback_bytes(self.settings.feedback, feedback.kind)
        if not payload:
            return
        where = f"device {self.device_id}: cannot signal {feedback.kind} on {self.settings.port}"
        if self._fd is None or self._lost is not None:
            raise DriverError(f"{where}: the port is not open ({self.problem})")
        try:
            # The descriptor is non-blocking: a few bytes go to the kernel at once or fail.
            written = os.write(self._fd, payload)
        except BlockingIOError as exc:
            raise DriverError(f"{where}: the port's output buffer is full") from exc
        except OSError as exc:
            raise DriverError(f"{where}: {_describe(exc)}") from exc
        if written != len(payload):
            raise DriverError(f"{where}: only {written} of {len(payload)} bytes written")

    # -- the port --

    def _backoff(self) -> float:
        return float(self._wait(_Attempt(max(1, self._failures))))  # type: ignore[arg-type]

    def _try_open(self) -> bool:
        s = self.settings
        self.open_attempts += 1
        try:
            port = serial.Serial(
                port=str(s.port),
                baudrate=s.baud,
                bytesize=s.bytesize,
                parity=_PARITY[s.parity],
                stopbits=s.stopbits,
                timeout=0,
                write_timeout=0,
                exclusive=True,  # one reader per scanner: a second agent gets "in use"
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._failures += 1
            self._absent(f"port {s.port}: {_describe(exc)}")
            return False
        self._port = port
        self._fd = int(port.fileno())
        self._lost = None
        self._failures = 0
        self._framer = LineFramer(s.terminator, self._keep)
        asyncio.get_running_loop().add_reader(self._fd, self._on_readable)
        self._paused = False
        self.present = True
        self.problem = None
        event(
            log,
            "serial_port_open",
            device=self.device_id,
            port=str(s.port),
            path=os.path.realpath(s.port),
            attempts=self.open_attempts,
        )
        return True

    def _absent(self, problem: str) -> None:
        """Note the port missing; logged when the reason changes, not on every retry."""
        self.present = False
        if problem != self.problem:
            event(
                log, "serial_port_absent", logging.WARNING, device=self.device_id, problem=problem
            )
        self.problem = problem

    def _close_port(self) -> None:
        reason = self._lost
        self._stop_reading()
        self._cancel_timer()
        port, self._port, self._fd, self._lost = self._port, None, None, None
        # The device may be gone already; its descriptor is released either way.
        with contextlib.suppress(serial.SerialException, OSError):
            port.close()
        if reason is not None:
            self.present = False
            self.problem = f"port {self.settings.port}: {reason}"
            event(log, "serial_port_gone", logging.WARNING, device=self.device_id, problem=reason)

    def _stop_reading(self) -> None:
        if self._fd is not None and not self._paused:
            asyncio.get_running_loop().remove_reader(self._fd)
        self._paused = True

    def _resume(self) -> None:
        if self._fd is not None and self._lost is None:
            asyncio.get_running_loop().add_reader(self._fd, self._on_readable)
            self._paused = False

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            chunk = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._gone(_describe(exc))
            return
        if not chunk:
            self._gone("hang-up (end of file)")
            return
        if self.settings.feedback == "zebra-ssi":
            chunk, replies = take_ssi_replies(chunk)
            self._note_replies(replies)
        for frame in self._framer.feed(chunk):
            self._ready.append(self._read(frame))
        self._cancel_timer()
        if self._framer.pending:
            self._timer = asyncio.get_running_loop().call_later(
                self.settings.frame_timeout_ms / 1000, self._on_silence
            )
        if len(self._ready) >= READY_MAX:
            self._stop_reading()
        self._wake.set()

    def _on_silence(self) -> None:
        self._timer = None
        ms = self.settings.frame_timeout_ms
        frame = self._framer.flush(f"no {self.settings.terminator} terminator after {ms} ms")
        if frame is not None:
            self._ready.append(self._read(frame))
            self._wake.set()

    def _gone(self, reason: str) -> None:
        """The port failed under us: keep what was read, then close and reopen."""
        self._stop_reading()
        self._cancel_timer()
        frame = self._framer.flush(f"the port went away mid-scan ({reason})")
        if frame is not None:
            self._ready.append(self._read(frame))
        self._lost = reason
        self._wake.set()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _note_replies(self, replies: list[bytes]) -> None:
        for packet in replies:
            self.ssi_replies += 1
            if packet[1] == SSI_NAK:
                cause = packet[4] if len(packet) > 6 else None
                event(
                    log,
                    "ssi_nak",
                    logging.WARNING,
                    device=self.device_id,
                    cause=cause,
                    hint="the scanner refused the beep command (is it in SSI mode?)",
                )

    def _read(self, frame: Frame) -> Read:
        s = self.settings
        scan = finish(
            frame.data,
            prefix=self._prefix,
            suffix=self._suffix,
            aim=s.aim,
            max_length=s.max_length,
            dropped=frame.dropped,
        )
        fault = scan.fault
        if not (fault and scan.data):  # over-long says it all; otherwise say what else is wrong
            cut = f"scan cut short: {frame.cut}" if frame.cut else None
            fault = garbage(scan.data) or cut or fault
        return self.read_factory.make(
            self.device_id, scan.data, symbology=scan.symbology, fault=fault
        )


@dataclass(frozen=True, slots=True)
class _Attempt:
    """tenacity's waits read only ``attempt_number``."""

    attempt_number: int


def discover_ports(by_id: Path, ports: list[Any]) -> list[Found]:
    """Serial ports by their stable by-id names, with what pyserial knows of each."""
    info = {os.path.realpath(p.device): p for p in ports}
    out: list[Found] = []
    seen: set[str] = set()
    try:
        links = sorted(by_id.iterdir())
    except OSError:
        links = []
    for link in links:
        real = os.path.realpath(link)
        seen.add(real)
        out.append(_found(str(link), real, info.get(real)))
    for real, p in sorted(info.items()):
        if real not in seen:
            out.append(_found(p.device, real, p))
    return out


def _found(stable_id: str, real: str, port: Any) -> Found:
    details: dict[str, str] = {}
    name = Path(real).name
    if port is not None:
        if port.vid is not None and port.pid is not None:
            details["vid_pid"] = f"{port.vid:04x}:{port.pid:04x}"
        for key, value in (
            ("serial", port.serial_number),
            ("manufacturer", port.manufacturer),
            ("product", port.product),
            ("location", port.location),
        ):
            if value:
                details[key] = str(value)
        if port.description and port.description != "n/a":
            name = str(port.description)
    return Found("serial", stable_id, name, real, details)
