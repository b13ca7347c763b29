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
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import usb.core
import usb.util
from tenacity import wait_random_exponential

from agent.errors import DeviceGone, DeviceNotFound, DriverError
from agent.logs import event
from agent.model import Feedback, Read
from drivers.base import Driver, Found
from drivers.framing import MAX_SCAN_BYTES, finish, split_aim

log = logging.getLogger("edgetally.drivers.hidpos")

POS_BARCODE_PAGE = 0x8C  # HID Point of Sale Usage Tables: "Bar Code Scanner"
HID_CLASS = 3
_GET_DESCRIPTOR = 0x06
_SET_REPORT = 0x09
_REPORT_DESCRIPTOR = 0x22
_HID_DESCRIPTOR = 0x21
_FEATURE, _OUTPUT = 3, 2
# libusb maps NO_DEVICE, NOT_FOUND and PIPE to these: the scanner is gone (or wedged).
_GONE = frozenset({errno.ENODEV, errno.ENOENT, errno.EPIPE, errno.ESHUTDOWN})


# ---- layouts: where each vendor puts the fields --------------------------------------


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


_VID_PID = re.compile(r"([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})")


# ---- settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class HidPosSettings:
    vid_pid: str = field(metadata={"help": 'USB vendor:product id in hex, "0c2e:0b61"'})
    serial: str | None = field(
        default=None, metadata={"help": "USB serial number, to tell two scanners apart"}
    )
    layout: Literal["auto", "honeywell", "zebra", "generic"] = field(
        default="auto", metadata={"help": "report layout; auto picks by vendor id"}
    )
    interface: int | None = field(
        default=None,
        metadata={"help": "interface number; unset: the one declaring usage page 0x8C"},
    )
    aim: bool = field(default=True, metadata={"help": "keep the AIM symbology id of each scan"})
    send_enable: bool = field(
        default=True, metadata={"help": "send the layout's enable feature report on open"}
    )
    enable_report: str | None = field(
        default=None, metadata={"help": "enable feature report in hex, report id first"}
    )
    max_length: int = field(
        default=MAX_SCAN_BYTES,
        metadata={"help": "longest scan in bytes; longer is a bad read", "minimum": 1},
    )
    read_timeout_ms: int = field(
        default=200,
        metadata={
            "help": "USB read timeout; a scan still flagged 'continued' after it is cut off",
            "minimum": 10,
            "maximum": 10000,
        },
    )
    reconnect_initial_s: float = field(
        default=0.5,
        metadata={"help": "first wait before looking for the scanner again", "minimum": 0.01},
    )
    reconnect_cap_s: float = field(
        default=30.0, metadata={"help": "longest wait between looks", "minimum": 0.01}
    )

    def __post_init__(self) -> None:
        # ValueError: the config loader names the file and the device (`config check`).
        if not _VID_PID.fullmatch(self.vid_pid):
            raise ValueError(
                f'vid_pid {self.vid_pid!r}: expected 4+4 hex digits such as "0c2e:0b61"'
            )
        if self.enable_report is not None:
            try:
                bytes.fromhex(self.enable_report)
            except ValueError:
                raise ValueError(f"enable_report {self.enable_report!r}: not hex") from None


def parse_vid_pid(text: str) -> tuple[int, int]:
    if m := _VID_PID.fullmatch(text):
        return int(m[1], 16), int(m[2], 16)
    raise DriverError(f'vid_pid {text!r}: expected 4+4 hex digits such as "0c2e:0b61"')


def layout_for(settings: HidPosSettings, vid: int) -> Layout:
    """The layout the config names, or the vendor's, with the config's enable report."""
    name = settings.layout if settings.layout != "auto" else VENDOR_LAYOUTS.get(vid, "generic")
    layout = LAYOUTS[name]
    enable = layout.enable_feature if settings.send_enable else None
    if settings.enable_report is not None:
        try:
            enable = bytes.fromhex(settings.enable_report)
        except ValueError as exc:
            raise DriverError(f"enable_report {settings.enable_report!r}: not hex") from exc
    return dataclasses.replace(layout, enable_feature=enable or None)


# ---- the report descriptor -----------------------------------------------------------


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
        if kind == _HID_DESCRIPTOR and length >= 9:
            count = extra[i + 5]
            for n in range(count):
                at = i + 6 + 3 * n
                if at + 2 < i + length and extra[at] == _REPORT_DESCRIPTOR:
                    return int.from_bytes(extra[at + 1 : at + 3], "little")
        i += length
    return None


# ---- reports -> scans (no I/O) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Piece:
    aim: bytes
    data: bytes
    more: bool


class ReportError(ValueError):
    """A report that cannot be a scanned-data report of this layout."""


def parse_report(report: bytes, layout: Layout) -> Piece | None:
    """One input report -> its part of a scan; None for another report id (status, ...)."""
    if not report or report[0] != layout.report_id:
        return None
    if len(report) < layout.size:
        raise ReportError(
            f"report of {len(report)} bytes, the {layout.name} layout needs {layout.size}"
        )
    length = report[layout.length_at]
    if length > layout.data_max:
        raise ReportError(
            f"report says {length} data bytes, the {layout.name} layout holds {layout.data_max}"
        )
    aim = b""
    if layout.aim_at is not None:
        aim = report[layout.aim_at : layout.aim_at + layout.aim_len]
    data = report[layout.data_at : layout.data_at + length]
    return Piece(aim, data, bool(report[layout.more_at] & layout.more_mask))


@dataclass(frozen=True, slots=True)
class Finished:
    data: bytes
    symbology: str | None
    fault: str | None


class Assembler:
    """Appends continued reports into one scan, bounded by ``max_length``."""

    def __init__(self, layout: Layout, *, aim: bool, max_length: int) -> None:
        self.layout = layout
        self.aim = aim
        self.max_length = max_length
        self._aim = b""
        self._parts: list[bytes] = []
        self._kept = 0
        self._dropped = 0
        self._reports = 0

    @property
    def pending(self) -> bool:
        return self._reports > 0

    def feed(self, report: bytes) -> Finished | None:
        """A report in; the finished scan out when its last report has come."""
        try:
            piece = parse_report(report, self.layout)
        except ReportError as exc:
            return self._fault(f"{exc}: {report[:16].hex()}", report)
        if piece is None:
            return None
        if not self._reports:
            self._aim = piece.aim
        self._reports += 1
        room = max(0, self.max_length - self._kept)
        self._parts.append(piece.data[:room])
        self._kept += min(room, len(piece.data))
        self._dropped += max(0, len(piece.data) - room)
        return None if piece.more else self._finish(None)

    def cut_off(self) -> Finished | None:
        """No report came while a scan was flagged 'continued': what there is, as a bad read."""
        if not self.pending:
            return None
        return self._finish(
            f"scan cut off: report {self._reports} said more data follows, none came"
        )

    def _finish(self, fault: str | None) -> Finished:
        data = b"".join(self._parts)
        aim_sym, rest = split_aim(self._aim)
        if self.aim and aim_sym is not None and not rest:
            data = self._aim + data
        scan = finish(data, aim=self.aim, max_length=self.max_length, dropped=self._dropped)
        self._aim, self._parts, self._kept, self._dropped, self._reports = b"", [], 0, 0, 0
        return Finished(scan.data, scan.symbology, fault or scan.fault)

    def _fault(self, reason: str, report: bytes) -> Finished:
        """A malformed report ends any scan in progress: kept as evidence, signalled bad."""
        data = b"".join(self._parts) if self._reports else report
        self._aim, self._parts, self._kept, self._dropped, self._reports = b"", [], 0, 0, 0
        return Finished(data[: self.max_length], None, reason)


# ---- the USB side (blocking; run in a thread) ----------------------------------------


@dataclass
class _Open:
    """A claimed HID POS interface and what must be undone when it is let go."""

    dev: Any
    interface: int
    ep_in: int
    ep_out: int | None
    packet: int
    detached: bool
    layout: Layout
    name: str


def _errno(exc: BaseException) -> int | None:
    value = getattr(exc, "errno", None)
    return value if isinstance(value, int) else None


def _hid_interfaces(dev: Any, number: int | None) -> Iterator[Any]:
    cfg = dev.get_active_configuration()
    for intf in cfg:
        if intf.bAlternateSetting != 0:
            continue
        if number is not None and intf.bInterfaceNumber != number:
            continue
        if intf.bInterfaceClass == HID_CLASS:
            yield intf


def _read_report_descriptor(dev: Any, intf: Any) -> bytes:
    """GET_DESCRIPTOR(Report) to the interface; needs the interface free of the kernel driver."""
    length = report_descriptor_length(bytes(intf.extra_descriptors or b"")) or 4096
    got = dev.ctrl_transfer(
        0x81, _GET_DESCRIPTOR, _REPORT_DESCRIPTOR << 8, intf.bInterfaceNumber, length, 1000
    )
    return bytes(got)


def _sysfs_report_descriptor(root: Path, dev: Any, cfg_value: int, number: int) -> bytes | None:
    """The kernel's copy (Linux, world-readable): read without detaching the HID driver."""
    ports = getattr(dev, "port_numbers", None)
    if dev.bus is None or not ports:
        return None
    node = root / f"{dev.bus}-{'.'.join(map(str, ports))}:{cfg_value}.{number}"
    try:
        for path in sorted(node.glob("*/report_descriptor")):
            return path.read_bytes()
    except OSError:
        return None
    return None


def _name(dev: Any) -> str:
    try:
        return str(dev.product or f"{dev.idVendor:04x}:{dev.idProduct:04x}")
    except (usb.core.USBError, ValueError, NotImplementedError):
        return f"{dev.idVendor:04x}:{dev.idProduct:04x}"


# ---- the driver ----------------------------------------------------------------------


class HidPosScanner(Driver):
    Settings = HidPosSettings
    # The seam for tests and odd machines: a pyusb backend object; None = libusb1 found by pyusb.
    backend: ClassVar[Any] = None
    sysfs_root: ClassVar[Path] = Path("/sys/bus/usb/devices")

    def __init__(
        self,
        device_id: str,
        settings: HidPosSettings,
        reads: Any,
        *,
        backend: Any = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(device_id, settings, reads)
        self.settings: HidPosSettings = settings
        self.vid, self.pid = parse_vid_pid(settings.vid_pid)
        self._backend = backend if backend is not None else type(self).backend
        self._sleep = sleep
        self._wait = wait_random_exponential(
            multiplier=settings.reconnect_initial_s,
            max=settings.reconnect_cap_s,
            min=settings.reconnect_initial_s / 2,  # never a busy loop, jitter or not
        )
        self._open: _Open | None = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self._orphan: asyncio.Future[Any] | None = None  # a connect whose caller was cancelled
        self._assembler: Assembler | None = None
        self.waits: list[float] = []  # reconnect waits chosen, for status and tests

    # -- lifecycle

    async def open(self) -> None:
        layout_for(self.settings, self.vid)  # a bad enable_report fails at start, not later
        await self._connect()

    async def close(self) -> None:
        # A read in flight ends within read_timeout_ms; the interface is let go after it.
        await asyncio.gather(*self._inflight, return_exceptions=True)
        orphan, self._orphan = self._orphan, None
        if orphan is not None and not orphan.cancelled() and orphan.exception() is None:
            self._open = self._open or orphan.result()
        await self._disconnect(None)

    async def _connect(self) -> bool:
        task = self._start(self._find_and_claim)
        try:
            opened = await asyncio.shield(task)
        except asyncio.CancelledError:
            self._orphan = task  # it finishes anyway: close() releases what it claimed
            raise
        except DriverError as exc:
            self.present, self.problem = False, str(exc)
            event(log, "device_absent", level=logging.INFO, device=self.device_id, why=str(exc))
            return False
        self._open = opened
        self._assembler = Assembler(
            opened.layout, aim=self.settings.aim, max_length=self.settings.max_length
        )
        self.present, self.problem = True, None
        event(
            log,
            "device_present",
            device=self.device_id,
            product=opened.name,
            interface=opened.interface,
            layout=opened.layout.name,
        )
        return True

    async def _disconnect(self, problem: str | None) -> None:
        opened, self._open = self._open, None
        if opened is not None:
            await asyncio.to_thread(self._release, opened)
        if problem is not None:
            self.present, self.problem = False, problem

    def _start(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """A blocking USB call in a thread this driver owns: close() awaits it before letting go."""
        task = asyncio.ensure_future(asyncio.to_thread(fn))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.shield(self._start(fn))

    # -- reading

    async def reads(self) -> AsyncIterator[Read]:
        attempt = 0
        while self.state == "open":
            if self._open is None:
                attempt += 1
                wait = float(self._wait(_Attempt(attempt)))  # type: ignore[arg-type]
                self.waits.append(wait)
                await self._sleep(wait)
                if self.state != "open":
                    return
                if not await self._connect():
                    continue
                attempt = 0
            opened = self._open
            assert opened is not None and self._assembler is not None
            try:
                report = await self._run(functools.partial(self._read, opened))
            except DeviceGone as exc:
                await self._disconnect(str(exc))
                if (done := self._assembler.cut_off()) is not None:
                    yield self._make(done)
                event(
                    log, "device_gone", level=logging.WARNING, device=self.device_id, why=str(exc)
                )
                continue
            assembler = self._assembler
            done = assembler.cut_off() if report is None else assembler.feed(report)
            if done is not None:
                yield self._make(done)

    def _make(self, done: Finished) -> Read:
        if done.fault is not None:
            event(log, "bad_scan", level=logging.WARNING, device=self.device_id, fault=done.fault)
        return self.read_factory.make(
            self.device_id, done.data, symbology=done.symbology, fault=done.fault
        )

    # -- feedback

    async def feedback(self, feedback: Feedback) -> None:
        opened = self._open
        beep = opened.layout.beep if opened is not None else None
        if feedback.kind != "good" or beep is None or opened is None:
            # No documented error tone or LED report for these layouts: the log carries it.
            event(
                log,
                "feedback",
                level=logging.DEBUG if feedback.kind == "good" else logging.WARNING,
                device=self.device_id,
                kind=feedback.kind,
                reason=feedback.reason,
            )
            return
        await self._run(functools.partial(self._send_output, opened, beep))

    # -- blocking USB work

    def _find_and_claim(self) -> _Open:
        serial = self.settings.serial
        want = f"{self.vid:04x}:{self.pid:04x}" + (f" serial {serial}" if serial else "")
        try:
            devices = list(
                usb.core.find(
                    find_all=True, backend=self._backend, idVendor=self.vid, idProduct=self.pid
                )
            )
        except usb.core.NoBackendError as exc:
            raise DeviceNotFound("no libusb backend on this machine (install libusb-1.0)") from exc
        except usb.core.USBError as exc:
            raise DeviceNotFound(f"cannot list USB devices: {exc}") from exc
        if not devices:
            raise DeviceNotFound(f"no USB device {want} plugged in")
        why = []
        for dev in devices:
            try:
                if serial is not None and dev.serial_number != serial:
                    why.append(f"serial {dev.serial_number!r}")
                    usb.util.dispose_resources(dev)
                    continue
                return self._claim(dev)
            except (usb.core.USBError, ValueError) as exc:
                why.append(self._usb_why(exc))
                usb.util.dispose_resources(dev)
            except DriverError as exc:
                why.append(str(exc))
                usb.util.dispose_resources(dev)
        raise DeviceNotFound(f"no usable USB device {want}: {'; '.join(why)}")

    @staticmethod
    def _usb_why(exc: BaseException) -> str:
        if _errno(exc) == errno.EACCES:
            return "permission denied (add a udev rule giving the agent's user the device)"
        return str(exc)

    def _claim(self, dev: Any) -> _Open:
        """Find the 0x8C interface, detach the kernel driver, claim, enable. Undone on failure."""
        layout = layout_for(self.settings, dev.idVendor)
        tried = []
        cfg_value = dev.get_active_configuration().bConfigurationValue
        for intf in _hid_interfaces(dev, self.settings.interface):
            number = intf.bInterfaceNumber
            detached = False
            try:
                held = dev.is_kernel_driver_active(number)
                # The kernel's copy first: a keyboard interface is then never detached to look.
                desc = (
                    _sysfs_report_descriptor(self.sysfs_root, dev, cfg_value, number)
                    if held
                    else None
                )
                if desc is not None and POS_BARCODE_PAGE not in usage_pages(desc):
                    tried.append(
                        f"interface {number}: usage pages {sorted(usage_pages(desc))}, not 0x8c"
                    )
                    continue
                if held:
                    dev.detach_kernel_driver(number)
                    detached = True
                pages = usage_pages(desc or _read_report_descriptor(dev, intf))
                if POS_BARCODE_PAGE not in pages:
                    tried.append(f"interface {number}: usage pages {sorted(pages)}, not 0x8c")
                    self._undo(dev, number, detached)
                    continue
                usb.util.claim_interface(dev, number)
                ep_in = ep_out = None
                packet = layout.size
                for ep in intf:
                    kind = usb.util.endpoint_type(ep.bmAttributes)
                    if kind != usb.util.ENDPOINT_TYPE_INTR:
                        continue
                    if usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_IN:
                        ep_in, packet = ep.bEndpointAddress, max(packet, ep.wMaxPacketSize)
                    else:
                        ep_out = ep.bEndpointAddress
                if ep_in is None:
                    raise DriverError(f"interface {number} has no interrupt IN endpoint")
                if layout.enable_feature:
                    report = layout.enable_feature
                    dev.ctrl_transfer(
                        0x21, _SET_REPORT, (_FEATURE << 8) | report[0], number, report, 1000
                    )
                return _Open(dev, number, ep_in, ep_out, packet, detached, layout, _name(dev))
            except (usb.core.USBError, ValueError, DriverError) as exc:
                self._undo(dev, number, detached)
                if isinstance(exc, DriverError):
                    raise
                raise DriverError(f"interface {number}: {self._usb_why(exc)}") from exc
        found = "; ".join(tried) or "no HID interface"
        raise DeviceNotFound(f"no HID POS (usage page 0x8c) interface: {found}")

    @staticmethod
    def _undo(dev: Any, number: int, detached: bool) -> None:
        """Release (pyusb claims an interface for any request to it), give it back to the kernel."""
        try:
            usb.util.release_interface(dev, number)  # a no-op when pyusb holds no claim
        except usb.core.USBError as exc:
            event(log, "release_failed", level=logging.WARNING, interface=number, error=str(exc))
        if detached:
            try:
                dev.attach_kernel_driver(number)
            except usb.core.USBError as exc:
                event(
                    log, "reattach_failed", level=logging.WARNING, interface=number, error=str(exc)
                )

    def _release(self, opened: _Open) -> None:
        """Every exit path: release, give the interface back to the kernel, free the handle."""
        try:
            self._undo(opened.dev, opened.interface, opened.detached)
        finally:
            usb.util.dispose_resources(opened.dev)

    def _read(self, opened: _Open) -> bytes | None:
        try:
            got = opened.dev.read(opened.ep_in, opened.packet, self.settings.read_timeout_ms)
        except usb.core.USBTimeoutError:
            return None
        except (usb.core.USBError, ValueError) as exc:  # ValueError: pyusb lost the endpoint
            what = "unplugged" if _errno(exc) in _GONE else "read failed"
            raise DeviceGone(f"{what}: {exc}") from exc
        return bytes(got)

    def _send_output(self, opened: _Open, report: bytes) -> None:
        try:
            if opened.ep_out is not None:
                opened.dev.write(opened.ep_out, report, 1000)
            else:
                opened.dev.ctrl_transfer(
                    0x21, _SET_REPORT, (_OUTPUT << 8) | report[0], opened.interface, report, 1000
                )
        except usb.core.USBError as exc:
            raise DriverError(f"device {self.device_id}: beep failed: {exc}") from exc

    # -- discovery

    @classmethod
    def discover(cls) -> list[Found]:
        try:
            devices = list(usb.core.find(find_all=True, backend=cls.backend))
        except usb.core.NoBackendError:
            event(log, "no_usb_backend", level=logging.WARNING)
            return []
        except usb.core.USBError as exc:
            event(log, "usb_list_failed", level=logging.WARNING, error=str(exc))
            return []
        out = []
        for dev in devices:
            try:
                found = cls._survey(dev)
            finally:
                usb.util.dispose_resources(dev)
            if found is not None:
                out.append(found)
        return out

    @classmethod
    def _survey(cls, dev: Any) -> Found | None:
        """A Found when a HID interface declares page 0x8C (or cannot be read for permission)."""
        vid_pid = f"{dev.idVendor:04x}:{dev.idProduct:04x}"
        details: dict[str, str] = {}
        pos: list[int] = []
        try:
            cfg = dev[0]
            interfaces = [i for i in cfg if i.bInterfaceClass == HID_CLASS]
            cfg_value = cfg.bConfigurationValue
        except (usb.core.USBError, IndexError, ValueError):
            return None
        for intf in interfaces:
            number = intf.bInterfaceNumber
            desc = _sysfs_report_descriptor(cls.sysfs_root, dev, cfg_value, number)
            try:
                if desc is None:
                    if dev.is_kernel_driver_active(number):
                        details[f"interface {number}"] = (
                            "held by the kernel HID driver; its report descriptor is read "
                            "when the agent opens it"
                        )
                        continue
                    desc = _read_report_descriptor(dev, intf)
                pages = usage_pages(desc)
            except (usb.core.USBError, NotImplementedError) as exc:
                details[f"interface {number}"] = (
                    f"report descriptor unreadable: {cls._usb_why(exc)}"
                )
                continue
            except ValueError as exc:
                details[f"interface {number}"] = f"report descriptor malformed: {exc}"
                continue
            if POS_BARCODE_PAGE in pages:
                pos.append(number)
        denied = any("permission" in v for v in details.values())
        if not pos and not (denied and dev.idVendor in VENDOR_LAYOUTS):
            return None
        serial = None
        try:
            serial = dev.serial_number
        except (usb.core.USBError, ValueError, NotImplementedError) as exc:
            details["serial"] = f"unreadable: {cls._usb_why(exc)}"
        if pos:
            details["hid_pos_interfaces"] = ", ".join(map(str, pos))
        details["layout"] = VENDOR_LAYOUTS.get(dev.idVendor, "generic")
        stable = vid_pid + (f":{serial}" if serial else "")
        path = f"usb:{dev.bus}-{'.'.join(map(str, dev.port_numbers or ()))}" if dev.bus else None
        return Found("hidpos", stable, _name(dev), path, details)

    @classmethod
    def matches(cls, settings: Any, found: Found) -> tuple[bool, str]:
        if found.driver != "hidpos":
            return False, f"not a hidpos device ({found.driver})"
        parts = found.stable_id.split(":", 2)
        vid_pid, serial = ":".join(parts[:2]), (parts[2] if len(parts) > 2 else None)
        if vid_pid.lower() != settings.vid_pid.lower():
            return False, f"VID:PID {vid_pid} is not {settings.vid_pid}"
        if settings.serial is not None and serial != settings.serial:
            return False, f"serial {serial!r} is not {settings.serial!r}"
        return True, f"VID:PID {vid_pid}" + (f" and serial {serial}" if settings.serial else "")


@dataclass(frozen=True, slots=True)
class _Attempt:
    """tenacity's waits read only ``attempt_number``."""

    attempt_number: int
