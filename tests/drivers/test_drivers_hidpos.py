"""drivers/hidpos.py over a fake USB bus: a pyusb backend serving real descriptor bytes.

Only the libusb layer is fake (this machine has no scanner): ``FakeBus`` is a
``usb.backend.IBackend`` that parses real device, configuration, HID and report
descriptors out of bytes as libusb does, answers control transfers like a
device, enforces the kernel rule that a claimed interface must be free of the
kernel driver, and serves queued interrupt reports. pyusb and the driver run
unchanged above it.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import json
import re
import sqlite3
import struct
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import usb.backend
import usb.core

from agent.clock import Clock, Uuid7
from agent.config import load_config
from agent.identify import identify
from agent.model import Feedback, Movement, Read
from drivers import DRIVERS
from drivers.base import Found, ReadFactory
from drivers.hidpos import (
    LAYOUTS,
    Assembler,
    HidPosScanner,
    HidPosSettings,
    layout_for,
    parse_report,
    report_descriptor_length,
    usage_pages,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from harness import gtin14, make_daemon, write_config

HONEYWELL = (0x0C2E, 0x0B61)
ZEBRA = (0x05E0, 0x1300)

# ---- descriptors, as bytes a device sends ---------------------------------------------

# A HID POS scanner: Bar Code Scanner application collection (page 0x8C, usage 0x02),
# Scanned Data Report (0x12) with report id 2: length byte, symbology ids 1-3
# (0xFB-0xFD), 56 decoded-data bytes (0xFE), 2 vendor bytes, "decoded data continued"
# (0xFF) bit + 7 bits padding = 64 bytes; a vendor output report 0xFD (Honeywell's
# command channel) and a feature report 4.
POS_REPORT_DESCRIPTOR = bytes.fromhex(
    "058c 0902 a101"  # Usage Page (Bar Code Scanner), Usage (Bar Code Scanner), Application
    "0912 a102 8502"  # Usage (Scanned Data Report), Logical, Report ID 2
    "1500 26ff00 7508"  # Logical 0..255, 8 bits
    "0501 093b 9501 8102"  # Generic Desktop Byte Count, 1, Input
    "058c 19fb 29fd 9503 8102"  # Symbology Identifier 1..3, Input
    "09fe 9538 8202 01"  # Decoded Data x56, Input (Buffered Bytes)
    "0600ff 0900 9502 8102"  # vendor page (4-byte-free form), 2 bytes, Input
    "058c 09ff 7501 9501 2501 8102"  # Decoded Data Continued, 1 bit
    "7507 9501 8103"  # padding
    "c0"  # end Logical
    "85fd 0600ff 0901 7508 9504 26ff00 9102"  # Output report 0xFD, 4 bytes
    "8504 0902 9501 b102"  # Feature report 4, 1 byte
    "c0"  # end Application
)
KEYBOARD_REPORT_DESCRIPTOR = bytes.fromhex(
    "05010906a101050719e029e71500250175019508810295017508810195057501"
    "0508190129059102950175039101950675081500256505071900296581 00c0".replace(" ", "")
)


def device_descriptor(vid: int, pid: int, has_serial: bool) -> bytes:
    return struct.pack(
        "<BBHBBBBHHHBBBB", 18, 1, 0x0200, 0, 0, 0, 64, vid, pid, 0x0100, 1, 2, 3 * has_serial, 1
    )


def hid_interface(number: int, report: bytes, *, ep_in: int, ep_out: int | None) -> bytes:
    eps = [struct.pack("<BBBBHB", 7, 5, ep_in, 0x03, 64, 1)]
    if ep_out is not None:
        eps.append(struct.pack("<BBBBHB", 7, 5, ep_out, 0x03, 64, 1))
    intf = struct.pack("<BBBBBBBBB", 9, 4, number, 0, len(eps), 3, 0, 0, 0)
    hid = struct.pack("<BBHBBBH", 9, 0x21, 0x0111, 0, 1, 0x22, len(report))
    return intf + hid + b"".join(eps)


def configuration(*interfaces: bytes) -> bytes:
    body = b"".join(interfaces)
    return struct.pack("<BBHBBBBB", 9, 2, 9 + len(body), len(interfaces), 1, 0, 0x80, 250) + body


_DEVICE_FIELDS = [
    "bLength", "bDescriptorType", "bcdUSB", "bDeviceClass", "bDeviceSubClass",
    "bDeviceProtocol", "bMaxPacketSize0", "idVendor", "idProduct", "bcdDevice",
    "iManufacturer", "iProduct", "iSerialNumber", "bNumConfigurations",
]  # fmt: skip


def parse_configuration(blob: bytes) -> SimpleNamespace:
    """Split a configuration blob into descriptors, as libusb does (class ones go in extra)."""
    i, config, current = 0, None, None
    while i < len(blob):
        length, kind = blob[i], blob[i + 1]
        raw = blob[i : i + length]
        if kind == 2:
            f = struct.unpack("<BBHBBBBB", raw)
            config = SimpleNamespace(
                bLength=f[0], bDescriptorType=f[1], wTotalLength=f[2], bNumInterfaces=f[3],
                bConfigurationValue=f[4], iConfiguration=f[5], bmAttributes=f[6], bMaxPower=f[7],
                extra_descriptors=[], interfaces=[],
            )  # fmt: skip
            current = config
        elif kind == 4:
            f = struct.unpack("<BBBBBBBBB", raw)
            current = SimpleNamespace(
                bLength=f[0], bDescriptorType=f[1], bInterfaceNumber=f[2], bAlternateSetting=f[3],
                bNumEndpoints=f[4], bInterfaceClass=f[5], bInterfaceSubClass=f[6],
                bInterfaceProtocol=f[7], iInterface=f[8], extra_descriptors=[], endpoints=[],
            )  # fmt: skip
            assert config is not None
            config.interfaces.append(current)
        elif kind == 5:
            f = struct.unpack("<BBBBHB", raw)
            endpoint = SimpleNamespace(
                bLength=f[0], bDescriptorType=f[1], bEndpointAddress=f[2], bmAttributes=f[3],
                wMaxPacketSize=f[4], bInterval=f[5], bRefresh=0, bSynchAddress=0,
                extra_descriptors=[],
            )  # fmt: skip
            assert current is not None
            current.endpoints.append(endpoint)
        else:
            assert current is not None
            current.extra_descriptors.extend(raw)
        i += length
    assert config is not None
    return config


# ---- the fake bus --------------------------------------------------------------------


class Unplug:
    """Queued in place of a report: the device goes away while a read is waiting."""


@dataclass
class FakeDevice:
    vid: int
    pid: int
    product: str
    config: bytes
    reports_by_interface: dict[int, bytes]
    serial: str | None = None
    bus: int = 1
    ports: tuple[int, ...] = (2,)
    present: bool = True
    denied: bool = False  # open() fails with EACCES, as without a udev rule
    kernel: dict[int, bool] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)
    queue: deque[bytes | Unplug | usb.core.USBError] = field(default_factory=deque)
    feature_reports: list[bytes] = field(default_factory=list)
    gate: threading.Event | None = None  # when set up, report descriptor requests wait on it
    output_reports: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parsed = parse_configuration(self.config)
        for intf in self.parsed.interfaces:
            self.kernel.setdefault(intf.bInterfaceNumber, True)  # usbhid bound, as after plug-in

    def replug(self) -> None:
        """Plugged back in: the kernel binds its HID driver again."""
        self.present = True
        self.claimed.clear()
        self.kernel = dict.fromkeys(self.kernel, True)

    def string(self, index: int) -> str | None:
        return {1: "Fake Corp", 2: self.product, 3: self.serial}.get(index)


def usb_error(code: int, text: str) -> usb.core.USBError:
    return usb.core.USBError(text, None, code)


class FakeBus(usb.backend.IBackend):  # type: ignore[misc]
    def __init__(self, *devices: FakeDevice) -> None:
        super().__init__()
        self.devices = list(devices)
        self.calls: list[tuple[Any, ...]] = []
        self.enumerations = 0
        self.cond = threading.Condition()

    # -- what pyusb asks

    def enumerate_devices(self) -> Any:
        self.enumerations += 1
        return [d for d in self.devices if d.present]

    def get_device_descriptor(self, dev: FakeDevice) -> Any:
        raw = device_descriptor(dev.vid, dev.pid, dev.serial is not None)
        desc = SimpleNamespace(
            **dict(zip(_DEVICE_FIELDS, struct.unpack("<BBHBBBBHHHBBBB", raw), strict=True))
        )
        desc.bus, desc.address, desc.port_number = dev.bus, 5, dev.ports[-1]
        desc.port_numbers, desc.speed = dev.ports, 2
        return desc

    def get_configuration_descriptor(self, dev: FakeDevice, config: int) -> Any:
        if config != 0:
            raise IndexError(config)
        return dev.parsed

    def get_interface_descriptor(self, dev: FakeDevice, intf: int, alt: int, config: int) -> Any:
        if alt != 0 or intf >= len(dev.parsed.interfaces):
            raise IndexError(intf)
        return dev.parsed.interfaces[intf]

    def get_endpoint_descriptor(
        self, dev: FakeDevice, ep: int, intf: int, alt: int, config: int
    ) -> Any:
        return dev.parsed.interfaces[intf].endpoints[ep]

    def open_device(self, dev: FakeDevice) -> FakeDevice:
        if not dev.present:
            raise usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
        if dev.denied:
            raise usb_error(errno.EACCES, "Access denied (insufficient permissions)")
        self.calls.append(("open", dev.product))
        return dev

    def close_device(self, dev: FakeDevice) -> None:
        self.calls.append(("close", dev.product))

    def get_configuration(self, dev: FakeDevice) -> int:
        return int(dev.parsed.bConfigurationValue)

    def claim_interface(self, dev: FakeDevice, intf: int) -> None:
        if dev.kernel[intf]:  # usbfs: EBUSY while another driver has the interface
            raise usb_error(errno.EBUSY, "Resource busy")
        dev.claimed.add(intf)
        self.calls.append(("claim", dev.product, intf))

    def release_interface(self, dev: FakeDevice, intf: int) -> None:
        if not dev.present:
            raise usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
        dev.claimed.discard(intf)
        self.calls.append(("release", dev.product, intf))

    def is_kernel_driver_active(self, dev: FakeDevice, intf: int) -> bool:
        return dev.kernel[intf]

    def detach_kernel_driver(self, dev: FakeDevice, intf: int) -> None:
        dev.kernel[intf] = False
        self.calls.append(("detach", dev.product, intf))

    def attach_kernel_driver(self, dev: FakeDevice, intf: int) -> None:
        if not dev.present:
            raise usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
        if intf in dev.claimed:
            raise usb_error(errno.EBUSY, "Resource busy")
        dev.kernel[intf] = True
        self.calls.append(("attach", dev.product, intf))

    def ctrl_transfer(
        self, dev: FakeDevice, rtype: int, req: int, value: int, index: int, data: Any, tmo: int
    ) -> int:
        if not dev.present:
            raise usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
        kind, number = value >> 8, value & 0xFF
        if (rtype, req) == (0x80, 6):  # standard GET_DESCRIPTOR to the device
            if kind == 3 and number == 0:
                answer = bytes([4, 3, 0x09, 0x04])  # LANGID en-US
            elif kind == 3 and (text := dev.string(number)) is not None:
                encoded = text.encode("utf-16-le")
                answer = bytes([2 + len(encoded), 3]) + encoded
            else:
                raise usb_error(errno.EPIPE, "Pipe error")
            return _fill(data, answer)
        if (rtype, req, kind) == (0x81, 6, 0x22):  # GET_DESCRIPTOR(Report) to an interface
            assert index in dev.claimed, "usbfs claims the interface for this request"
            if dev.gate is not None:
                dev.gate.wait(10)
            return _fill(data, dev.reports_by_interface[index])
        if (rtype, req) == (0x21, 9):  # SET_REPORT
            assert index in dev.claimed
            (dev.feature_reports if kind == 3 else dev.output_reports).append(bytes(data))
            return len(data)
        raise usb_error(errno.EPIPE, "Pipe error")

    def intr_read(self, dev: FakeDevice, ep: int, intf: int, buff: Any, timeout: int) -> int:
        assert intf in dev.claimed and not dev.kernel[intf]
        with self.cond:
            self.cond.wait_for(lambda: bool(dev.queue) or not dev.present, timeout / 1000)
            if not dev.present:
                raise usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
            if not dev.queue:
                raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
            item = dev.queue.popleft()
        if isinstance(item, Unplug):
            dev.present = False
            dev.claimed.clear()
            raise usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
        if isinstance(item, usb.core.USBError):
            raise item
        return _fill(buff, item)

    def intr_write(self, dev: FakeDevice, ep: int, intf: int, data: Any, timeout: int) -> int:
        dev.output_reports.append(bytes(data))
        return len(data)

    # -- what the test does

    def send(self, dev: FakeDevice, *reports: bytes | Unplug | usb.core.USBError) -> None:
        with self.cond:
            dev.queue.extend(reports)
            self.cond.notify_all()


def _fill(buff: array.array[int], answer: bytes) -> int:
    n = min(len(buff), len(answer))
    buff[:n] = array.array("B", answer[:n])
    return n


def scanner_device(
    vid_pid: tuple[int, int] = HONEYWELL, *, serial: str | None = "21270B4A2E", **kw: Any
) -> FakeDevice:
    """A scanner with a keyboard interface 0 (which must not be picked) and HID POS on 1."""
    config = configuration(
        hid_interface(0, KEYBOARD_REPORT_DESCRIPTOR, ep_in=0x81, ep_out=None),
        hid_interface(1, POS_REPORT_DESCRIPTOR, ep_in=0x82, ep_out=0x02),
    )
    reports = {0: KEYBOARD_REPORT_DESCRIPTOR, 1: POS_REPORT_DESCRIPTOR}
    return FakeDevice(*vid_pid, "Xenon 1950g", config, reports, serial=serial, **kw)


def keyboard_device() -> FakeDevice:
    config = configuration(hid_interface(0, KEYBOARD_REPORT_DESCRIPTOR, ep_in=0x81, ep_out=None))
    return FakeDevice(0x046D, 0xC31C, "USB Keyboard", config, {0: KEYBOARD_REPORT_DESCRIPTOR})


# ---- reports, as each vendor lays them out (written out here, not from the driver) ----


def honeywell_reports(data: bytes, aim: bytes = b"]E0") -> list[bytes]:
    """byte 0 id 2, 1 length, 2-4 AIM id, 5-60 data, 61 code id, 62 0, 63 bit 0 continued."""
    chunks = [data[i : i + 56] for i in range(0, len(data), 56)] or [b""]
    out = []
    for n, chunk in enumerate(chunks):
        more = n < len(chunks) - 1
        out.append(
            bytes([2, len(chunk)]) + aim + chunk.ljust(56, b"\0") + b"?\0" + bytes([int(more)])
        )
    return out


def zebra_reports(data: bytes, aim: bytes = b"]C1") -> list[bytes]:
    """byte 0 id 2, 1 length, 2-57 data, 58-60 AIM id, 61-62 0, 63 bit 0 continued."""
    chunks = [data[i : i + 56] for i in range(0, len(data), 56)] or [b""]
    return [
        bytes([2, len(c)]) + c.ljust(56, b"\0") + aim + b"\0\0" + bytes([n < len(chunks) - 1])
        for n, c in enumerate(chunks)
    ]


# A real capture from a Honeywell Voyager 1602g (python_hon_usbhid's README): the
# last two reports of a multi-report answer, AIM id "]X0", vendor byte "?".
CAPTURED = [
    bytes([2, 56]) + b"]X0 Type: N/A   Revision: N/A   Serial Number: N/A   Checks?\0\x01",
    bytes([2, 9]) + b"]X0um: N/A\r\n" + bytes(47) + b"?\0\0",
]


# ---- helpers -------------------------------------------------------------------------


def factory() -> ReadFactory:
    clock = Clock(boot_id="boot-1", synced=lambda: True)
    return ReadFactory(clock, Uuid7(clock.wall))


class Waits:
    """The driver's sleep: records the chosen waits and runs a hook (plug back in)."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        self.hook: Any = None

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        if self.hook is not None:
            self.hook(len(self.seen))
        await asyncio.sleep(0)


def driver(bus: FakeBus, waits: Waits | None = None, **settings: Any) -> HidPosScanner:
    settings.setdefault("vid_pid", "0c2e:0b61")
    settings.setdefault("read_timeout_ms", 20)
    return HidPosScanner(
        "hidpos-1", HidPosSettings(**settings), factory(), backend=bus, sleep=waits or Waits()
    )


async def take(scanner: HidPosScanner, n: int) -> list[Read]:
    out: list[Read] = []
    async with contextlib.aclosing(scanner.reads()) as reads:
        async for read in reads:
            out.append(read)
            if len(out) == n:
                break
    return out


async def scan(bus: FakeBus, dev: FakeDevice, reports: list[bytes], **settings: Any) -> Read:
    async with driver(bus, **settings) as scanner:
        bus.send(dev, *reports)
        (read,) = await asyncio.wait_for(take(scanner, 1), 10)
    return read


# ---- the report descriptor and layouts (no I/O) ---------------------------------------


def test_usage_pages_of_a_pos_scanner_and_a_keyboard() -> None:
    assert 0x8C in usage_pages(POS_REPORT_DESCRIPTOR)
    assert usage_pages(KEYBOARD_REPORT_DESCRIPTOR) == {0x01, 0x07, 0x08}
    # a 4-byte Usage carries its page in the high half; a long item is skipped whole
    assert usage_pages(bytes.fromhex("0b02008c00 fe0201aabb a101 c0")) == {0x8C}


@pytest.mark.parametrize(
    ("descriptor", "where"),
    [
        (b"\x05", "at byte 0 (item 0x05)"),
        (b"\x05\x8c\x26\xff", "at byte 2 (item 0x26)"),
        (b"\x05\x8c\xfe\x05", "in a long item at byte 2"),
    ],
)
def test_a_cut_short_report_descriptor_is_an_error_naming_the_byte(
    descriptor: bytes, where: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(where)):
        usage_pages(descriptor)


def test_the_report_descriptor_length_comes_from_the_hid_descriptor() -> None:
    intf = parse_configuration(
        configuration(hid_interface(1, POS_REPORT_DESCRIPTOR, ep_in=0x82, ep_out=None))
    ).interfaces[0]
    assert report_descriptor_length(bytes(intf.extra_descriptors)) == len(POS_REPORT_DESCRIPTOR)
    assert report_descriptor_length(b"") is None


def test_layout_by_vendor_and_enable_report_from_config() -> None:
    s = HidPosSettings(vid_pid="0c2e:0b61")
    assert layout_for(s, 0x0C2E).name == "honeywell"
    assert layout_for(s, 0x05E0).name == "zebra"
    assert layout_for(s, 0x1234).name == "generic"
    assert layout_for(HidPosSettings(vid_pid="0c2e:0b61", layout="zebra"), 0x0C2E).name == "zebra"
    assert layout_for(s, 0x05E0).enable_feature == bytes([4, 1])
    no_enable = HidPosSettings(vid_pid="05e0:1900", send_enable=False)
    assert layout_for(no_enable, 0x05E0).enable_feature is None
    mine = HidPosSettings(vid_pid="0c2e:0b61", enable_report="0702ff")
    assert layout_for(mine, 0x0C2E).enable_feature == bytes([7, 2, 0xFF])


def test_the_captured_honeywell_reports_assemble_into_one_scan() -> None:
    assert [len(r) for r in CAPTURED] == [64, 64]
    asm = Assembler(LAYOUTS["honeywell"], aim=True, max_length=4096)
    assert asm.feed(CAPTURED[0]) is None
    done = asm.feed(CAPTURED[1])
    assert done is not None
    assert done.symbology == "]X0"
    assert done.data == (
        b" Type: N/A   Revision: N/A   Serial Number: N/A   Checks" + b"um: N/A\r\n"
    )
    assert done.fault is None


def test_a_report_of_another_id_is_not_a_scan() -> None:
    assert parse_report(bytes([0x04]) + bytes(63), LAYOUTS["honeywell"]) is None


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (bytes([2, 57]) + bytes(62), "report says 57 data bytes, the honeywell layout holds 56"),
        (bytes([2, 3, 0x5D, 0x45, 0x30, 0x31]), "report of 6 bytes, the honeywell layout needs 64"),
    ],
)
def test_a_malformed_report_is_a_bad_read_with_its_bytes(report: bytes, reason: str) -> None:
    asm = Assembler(LAYOUTS["honeywell"], aim=True, max_length=4096)
    done = asm.feed(report)
    assert done is not None
    assert done.fault is not None and done.fault.startswith(reason)
    assert done.data == report
    assert not asm.pending


# ---- the driver on the fake bus -------------------------------------------------------


async def test_a_single_report_scan_picks_the_pos_interface_not_the_keyboard() -> None:
    dev = scanner_device()
    bus = FakeBus(keyboard_device(), dev)
    read = await scan(bus, dev, honeywell_reports(b"09506000134352", b"]E0"))
    assert (read.data, read.symbology, read.fault) == (b"09506000134352", "]E0", None)
    assert read.device == "hidpos-1"
    intf_calls = [c for c in bus.calls if c[0] in {"detach", "claim", "release", "attach"}]
    # The keyboard interface 0 was tried: detached for its descriptor, given straight back.
    assert intf_calls == [
        ("detach", "Xenon 1950g", 0),
        ("claim", "Xenon 1950g", 0),
        ("release", "Xenon 1950g", 0),
        ("attach", "Xenon 1950g", 0),
        ("detach", "Xenon 1950g", 1),
        ("claim", "Xenon 1950g", 1),
        ("release", "Xenon 1950g", 1),
        ("attach", "Xenon 1950g", 1),
    ]
    assert dev.kernel == {0: True, 1: True}
    assert not dev.claimed
    assert bus.calls[-1] == ("close", "Xenon 1950g")
    assert not any(c[0] == "open" for c in bus.calls if "Keyboard" in c[1])


async def test_the_interface_setting_skips_the_search() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    await scan(bus, dev, honeywell_reports(b"A1"), interface=1)
    assert ("detach", "Xenon 1950g", 0) not in bus.calls


async def test_a_multi_report_scan_with_gs_is_kept_whole() -> None:
    data = b"01" + gtin14(7).encode() + b"10LOT-" + b"X" * 80 + b"\x1d21SERIAL\x1d17290101"
    assert len(data) > 112  # three reports
    dev = scanner_device()
    bus = FakeBus(dev)
    reports = honeywell_reports(data, b"]d2")
    assert len(reports) == 3 and reports[0][63] == 1 and reports[2][63] == 0
    read = await scan(bus, dev, reports)
    assert read.data == data
    assert read.data.count(b"\x1d") == 2
    assert read.symbology == "]d2"
    assert read.fault is None


async def test_the_vendor_offset_layout_reads_aim_after_the_data() -> None:
    dev = scanner_device(ZEBRA)
    bus = FakeBus(dev)
    data = b"0109506000134352" + b"Z" * 60
    read = await scan(bus, dev, zebra_reports(data, b"]C1"), vid_pid="05e0:1300")
    assert (read.data, read.symbology, read.fault) == (data, "]C1", None)
    # zebra needs the enable feature report: sent once on the claimed POS interface
    assert dev.feature_reports == [bytes([4, 1])]


async def test_the_honeywell_layout_sends_no_enable_report() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    await scan(bus, dev, honeywell_reports(b"A1"))
    assert dev.feature_reports == []


async def test_aim_false_leaves_symbology_unset_and_the_data_alone() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    read = await scan(bus, dev, honeywell_reports(b"]C1ABC", b"]E0"), aim=False)
    assert (read.data, read.symbology) == (b"]C1ABC", None)


async def test_no_aim_field_and_a_garbled_one_are_not_taken_for_symbologies() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    read = await scan(bus, dev, honeywell_reports(b"4711", b"\0\0\0"))
    assert (read.data, read.symbology) == (b"4711", None)
    read = await scan(bus, dev, honeywell_reports(b"4711", b"]\x01\x02"))
    assert (read.data, read.symbology) == (b"4711", None)


async def test_binary_data_is_kept_byte_for_byte_and_is_bad_through_identify() -> None:
    data = bytes(range(256))
    dev = scanner_device()
    bus = FakeBus(dev)
    read = await scan(bus, dev, honeywell_reports(data, b"\0\0\0"))
    assert read.data == data
    assert identify(read).error == "not UTF-8 text"


async def test_a_4kb_scan_is_kept_and_a_longer_one_is_bad_with_bounded_memory() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    exact = b"7" * 4096
    read = await scan(bus, dev, honeywell_reports(exact, b"\0\0\0"))
    assert (len(read.data), read.fault) == (4096, None)
    over = b"8" * 10_000
    read = await scan(bus, dev, honeywell_reports(over, b"\0\0\0"))
    assert read.data == over[:4096]
    assert read.fault == "scan longer than max_length 4096 bytes (10000 bytes)"
    assert identify(read).error == read.fault


async def test_an_empty_scan_is_a_bad_read() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    read = await scan(bus, dev, honeywell_reports(b""))
    assert (read.data, read.fault) == (b"", "empty scan")


async def test_a_scan_flagged_continued_with_nothing_after_is_cut_off() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    first = honeywell_reports(b"X" * 60)[0]
    read = await scan(bus, dev, [first])
    assert read.data == b"X" * 56
    assert read.fault == "scan cut off: report 1 said more data follows, none came"


async def test_reads_go_on_after_a_bad_one() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    async with driver(bus) as scanner:
        bus.send(dev, bytes([2, 99]) + bytes(62), *honeywell_reports(b"GOOD", b"]E0"))
        bad, good = await asyncio.wait_for(take(scanner, 2), 10)
    assert bad.fault is not None and "99 data bytes" in bad.fault
    assert (good.data, good.fault) == (b"GOOD", None)


async def test_open_with_the_device_absent_says_why_and_reads_once_it_comes() -> None:
    dev = scanner_device(present=False)
    bus = FakeBus(dev)
    waits = Waits()
    waits.hook = lambda n: setattr(dev, "present", n >= 3)
    async with driver(bus, waits) as scanner:
        assert scanner.present is False
        assert scanner.problem == "no USB device 0c2e:0b61 plugged in"
        bus.send(dev, *honeywell_reports(b"A1"))
        (read,) = await asyncio.wait_for(take(scanner, 1), 10)
        assert scanner.present is True and scanner.problem is None
    assert read.data == b"A1"
    assert bus.enumerations == 4  # open + three looks, one per wait: no busy loop
    assert len(waits.seen) == 3


async def test_unplugged_mid_session_reconnects_with_capped_backoff() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    waits = Waits()
    waits.hook = lambda n: dev.replug() if n == 6 else None
    async with driver(bus, waits, reconnect_initial_s=0.5, reconnect_cap_s=4) as scanner:
        bus.send(dev, *honeywell_reports(b"BEFORE"), Unplug(), *honeywell_reports(b"AFTER"))
        async with contextlib.aclosing(scanner.reads()) as reads:
            first = await asyncio.wait_for(anext(reads), 10)
            enumerations = bus.enumerations
            second = await asyncio.wait_for(anext(reads), 10)
            assert scanner.present is True
    assert (first.data, second.data) == (b"BEFORE", b"AFTER")
    # one look at the bus per wait, no more: no busy loop while the scanner is away
    assert len(waits.seen) == 6
    assert bus.enumerations - enumerations == 6
    assert all(0.25 <= w <= 4 for w in waits.seen)  # jittered, floored, capped
    assert scanner.waits == waits.seen


async def test_unplugged_says_so_while_away() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    seen: list[tuple[bool, str | None]] = []
    async with driver(bus) as scanner:
        waits = Waits()
        scanner._sleep = waits
        waits.hook = lambda n: seen.append((scanner.present, scanner.problem))
        bus.send(dev, Unplug())
        task = asyncio.ensure_future(take(scanner, 1))
        while len(waits.seen) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    (present, problem), second = seen[:2]
    assert present is False
    assert problem is not None and problem.startswith("unplugged: ")
    assert "No such device" in problem
    assert second == (False, "no USB device 0c2e:0b61 plugged in")
    assert not dev.claimed


async def test_a_read_error_releases_and_reattaches() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    waits = Waits()
    async with driver(bus, waits) as scanner:
        bus.send(dev, usb_error(errno.EIO, "Input/output error"), *honeywell_reports(b"OK"))
        (read,) = await asyncio.wait_for(take(scanner, 1), 10)
    assert read.data == b"OK"
    assert len(waits.seen) == 1
    events = [c[0] for c in bus.calls if c[0] in {"detach", "claim", "release", "attach"}]
    # keyboard probe, first session, error -> release/attach, second session, close
    assert events.count("detach") == events.count("attach") == 4
    assert dev.kernel == {0: True, 1: True}


async def test_close_during_a_pending_read_is_prompt_and_gives_the_interface_back() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    scanner = driver(bus, read_timeout_ms=200)
    async with scanner:
        task = asyncio.ensure_future(take(scanner, 1))
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert scanner.state == "closed"
    assert dev.kernel == {0: True, 1: True} and not dev.claimed
    assert bus.calls[-1] == ("close", "Xenon 1950g")


async def test_close_while_connecting_releases_what_the_connect_claimed() -> None:
    dev = scanner_device(present=False)
    dev.gate = threading.Event()
    bus = FakeBus(dev)
    waits = Waits()
    waits.hook = lambda n: dev.replug()
    scanner = driver(bus, waits)
    async with scanner:
        task = asyncio.ensure_future(take(scanner, 1))
        while not any(c[0] == "detach" for c in bus.calls):
            await asyncio.sleep(0.01)  # the connect thread is inside the device now
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        dev.gate.set()
    assert ("claim", "Xenon 1950g", 1) in bus.calls
    assert dev.kernel == {0: True, 1: True} and not dev.claimed
    assert bus.calls[-1] == ("close", "Xenon 1950g")


def kernel_copies(root: Path, dev: Any) -> None:
    """The kernel's copies of each interface's report descriptor, laid out as sysfs has them."""
    for number, desc in dev.reports_by_interface.items():
        node = root / f"1-2:1.{number}" / f"0003:0C2E:0B61.000{number}"
        node.mkdir(parents=True)
        (node / "report_descriptor").write_bytes(desc)


async def test_open_reads_the_kernels_copy_and_leaves_the_keyboard_attached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    kernel_copies(tmp_path, dev)
    monkeypatch.setattr(HidPosScanner, "sysfs_root", tmp_path)
    read = await scan(bus, dev, honeywell_reports(b"A1"))
    assert read.data == b"A1"
    assert not any(c[1:] == ("Xenon 1950g", 0) for c in bus.calls if len(c) == 3)


async def test_a_wrong_serial_is_not_taken() -> None:
    dev = scanner_device(serial="AAA")
    bus = FakeBus(dev)
    async with driver(bus, serial="BBB") as scanner:
        assert scanner.present is False
        assert scanner.problem == "no usable USB device 0c2e:0b61 serial BBB: serial 'AAA'"
    assert dev.kernel == {0: True, 1: True}


async def test_a_device_without_a_pos_interface_says_so() -> None:
    kb = keyboard_device()
    bus = FakeBus(kb)
    async with driver(bus, vid_pid="046d:c31c") as scanner:
        assert scanner.present is False
        assert scanner.problem is not None
        assert "no HID POS (usage page 0x8c) interface" in scanner.problem
        assert "interface 0: usage pages [1, 7, 8], not 0x8c" in scanner.problem
    assert kb.kernel == {0: True}


async def test_permission_denied_is_named() -> None:
    bus = FakeBus(scanner_device(denied=True))
    async with driver(bus) as scanner:
        assert scanner.present is False
        assert "permission denied" in (scanner.problem or "")


@pytest.mark.parametrize("text", ["0c2e-0b61", "0c2e:0b6", " c2e:0b61", "+c2e:0b61", "0c2e:0b61:"])
def test_a_bad_vid_pid_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"vid_pid {text!r}: expected")):
        HidPosSettings(vid_pid=text)


def test_a_bad_enable_report_is_a_config_error_naming_the_device(tmp_path: Path) -> None:
    """Caught by `config check`, not when the daemon starts."""
    from agent.config import parse_config
    from agent.errors import ConfigError

    table = {
        "agent": {"id": "a", "state_dir": str(tmp_path)},
        "sync": {"url": "http://127.0.0.1:1", "token_file": "t"},
        "devices": [
            {"id": "h", "driver": "hidpos", "vid_pid": "0c2e:0b61", "enable_report": "04 0x"}
        ],
    }
    with pytest.raises(ConfigError) as err:
        parse_config(table, "agent.toml", tmp_path)
    assert "agent.toml" in str(err.value) and "devices[0]" in str(err.value)
    assert "enable_report '04 0x': not hex" in str(err.value)


async def test_good_feedback_beeps_through_the_output_endpoint_bad_only_logs() -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    async with driver(bus) as scanner:
        await scanner.feedback(Feedback("good", "hidpos-1", "r1"))
        await scanner.feedback(Feedback("bad", "hidpos-1", "r2", "unknown code"))
    assert dev.output_reports == [bytes([0xFD, 0x03, 0x16, 0x07, 0x0D])]


async def test_feedback_without_a_device_only_logs() -> None:
    async with driver(FakeBus()) as scanner:
        await scanner.feedback(Feedback("good", "hidpos-1", "r1"))


# ---- discover / matches -----------------------------------------------------------------


def test_discover_lists_pos_scanners_not_keyboards(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = scanner_device()
    scanner.kernel = {0: False, 1: False}  # nobody holds it: the descriptor is read over USB
    bus = FakeBus(keyboard_device(), scanner)
    bus.devices[0].kernel = {0: False}
    monkeypatch.setattr(HidPosScanner, "backend", bus)
    found = HidPosScanner.discover()
    assert [(f.stable_id, f.name) for f in found] == [("0c2e:0b61:21270B4A2E", "Xenon 1950g")]
    assert found[0].details["hid_pos_interfaces"] == "1"
    assert found[0].details["layout"] == "honeywell"
    assert not scanner.claimed


def test_discover_reads_the_kernels_copy_without_detaching(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scanner = scanner_device()
    bus = FakeBus(scanner)
    kernel_copies(tmp_path, scanner)
    monkeypatch.setattr(HidPosScanner, "backend", bus)
    monkeypatch.setattr(HidPosScanner, "sysfs_root", tmp_path)
    (found,) = HidPosScanner.discover()
    assert found.details["hid_pos_interfaces"] == "1"
    assert not any(c[0] == "detach" for c in bus.calls)


def test_discover_without_sysfs_and_with_the_kernel_driver_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(HidPosScanner, "backend", FakeBus(scanner_device()))
    monkeypatch.setattr(HidPosScanner, "sysfs_root", tmp_path)
    assert HidPosScanner.discover() == []  # unknown is not claimed to be a scanner


def test_discover_names_a_permission_problem_for_a_known_vendor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(HidPosScanner, "backend", FakeBus(scanner_device(denied=True)))
    monkeypatch.setattr(HidPosScanner, "sysfs_root", tmp_path)
    (found,) = HidPosScanner.discover()
    assert "permission denied" in found.details["interface 1"]


def test_discover_with_no_usb_backend_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    def none(*args: Any, **kwargs: Any) -> Any:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(usb.core, "find", none)
    assert HidPosScanner.discover() == []


def test_matches_by_vid_pid_and_serial() -> None:
    found = Found("hidpos", "0c2e:0b61:21270B4A2E", "Xenon")
    assert HidPosScanner.matches(HidPosSettings(vid_pid="0C2E:0B61"), found)[0]
    ok, why = HidPosScanner.matches(HidPosSettings(vid_pid="0c2e:0b61", serial="X"), found)
    assert (ok, why) == (False, "serial '21270B4A2E' is not 'X'")
    ok, why = HidPosScanner.matches(HidPosSettings(vid_pid="05e0:1300"), found)
    assert (ok, why) == (False, "VID:PID 0c2e:0b61 is not 05e0:1300")
    assert not HidPosScanner.matches(HidPosSettings(vid_pid="0c2e:0b61"), Found("wedge", "x", "y"))[
        0
    ]


def test_the_hidpos_driver_is_registered_and_the_example_config_loads() -> None:
    assert DRIVERS["hidpos"] is HidPosScanner
    cfg = load_config(Path(__file__).parents[2] / "config" / "hidpos.toml")
    (dev,) = cfg.devices
    assert dev.driver == "hidpos"
    assert isinstance(dev.options, HidPosSettings)


# ---- end to end: device reports -> daemon -> a Movement in the outbox ---------------------


async def test_a_gtin_scanned_over_hid_pos_becomes_a_receive_movement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = scanner_device()
    bus = FakeBus(dev)
    monkeypatch.setattr(HidPosScanner, "backend", bus)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    cfg = write_config(tmp_path, "http://127.0.0.1:9", token, None, backoff_cap_s=0.5)
    with cfg.open("a", encoding="utf-8") as f:
        f.write(
            '[[devices]]\nid = "hid-1"\ndriver = "hidpos"\nvid_pid = "0c2e:0b61"\n'
            "read_timeout_ms = 20\n\n"
            '[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
            'devices = ["hid-1"]\n'
        )
    item = gtin14(42)
    daemon = make_daemon(cfg, "t0ken")
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        bus.send(dev, *honeywell_reports(item.encode(), b"]E0"))
        for _ in range(500):
            if daemon.counters.reads["good"]:
                break
            await asyncio.sleep(0.02)
        assert daemon.counters.reads["good"] == 1
        (driver_,) = daemon.drivers
        assert driver_.present is True
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    assert dev.kernel == {0: True, 1: True} and not dev.claimed
    conn = sqlite3.connect(daemon.config.outbox_path)
    try:
        rows = conn.execute("SELECT kind, payload, state FROM movements").fetchall()
        read_rows = conn.execute("SELECT data, symbology, outcome FROM reads").fetchall()
    finally:
        conn.close()
    assert read_rows == [(item.encode(), "]E0", "good")]
    ((kind, payload, state),) = rows
    movement = Movement.from_dict(json.loads(payload))
    assert (kind, state) == ("receive", "pending")
    assert (movement.kind, movement.item.gtin, movement.qty, movement.to) == (
        "receive",
        item,
        1,
        "DOCK-7",
    )
    assert movement.device == "hid-1"
