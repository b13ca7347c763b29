"""The serial driver: the port on the daemon's loop, reopened when it goes, feedback written back."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import serial
import serial.tools.list_ports
from tenacity import wait_exponential_jitter

from agent.errors import DriverError
from agent.logs import event
from agent.model import Feedback, Read
from drivers.base import Driver, Found, ReadFactory
from drivers.framing import finish
from drivers.reopen import reopen_wait
from drivers.serial_scanner.feedback import SSI_NAK, feedback_bytes, take_ssi_replies
from drivers.serial_scanner.framing import Frame, LineFramer, garbage
from drivers.serial_scanner.ports import BY_ID_DIR, discover_ports
from drivers.serial_scanner.settings import SerialSettings

log = logging.getLogger("edgetally.drivers.serial")
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
                await self._sleep(reopen_wait(self._wait, self._failures))
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
