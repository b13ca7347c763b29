"""The USB side: find, claim, read, write and let go of a HID POS interface.

Blocking pyusb calls: the driver runs each in a thread it owns and awaits.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import usb.core
import usb.util

from agent.errors import DeviceGone, DeviceNotFound, DriverError
from agent.logs import event
from drivers.base import Found
from drivers.hidpos.descriptor import (
    POS_BARCODE_PAGE,
    REPORT_DESCRIPTOR,
    report_descriptor_length,
    usage_pages,
)
from drivers.hidpos.layouts import VENDOR_LAYOUTS, Layout
from drivers.hidpos.settings import HidPosSettings, layout_for

log = logging.getLogger("edgetally.drivers.hidpos")
HID_CLASS = 3
_GET_DESCRIPTOR = 0x06
_SET_REPORT = 0x09
_FEATURE, _OUTPUT = 3, 2
# libusb maps NO_DEVICE, NOT_FOUND and PIPE to these: the scanner is gone (or wedged).
_GONE = frozenset({errno.ENODEV, errno.ENOENT, errno.EPIPE, errno.ESHUTDOWN})


@dataclass
class Claimed:
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
        0x81, _GET_DESCRIPTOR, REPORT_DESCRIPTOR << 8, intf.bInterfaceNumber, length, 1000
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


def find_and_claim(
    settings: HidPosSettings, vid: int, pid: int, backend: Any, sysfs_root: Path
) -> Claimed:
    """The first device with these ids (and serial) whose HID POS interface can be claimed."""
    serial = settings.serial
    want = f"{vid:04x}:{pid:04x}" + (f" serial {serial}" if serial else "")
    try:
        devices = list(usb.core.find(find_all=True, backend=backend, idVendor=vid, idProduct=pid))
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
            return claim(dev, settings, sysfs_root)
        except (usb.core.USBError, ValueError) as exc:
            why.append(usb_why(exc))
            usb.util.dispose_resources(dev)
        except DriverError as exc:
            why.append(str(exc))
            usb.util.dispose_resources(dev)
    raise DeviceNotFound(f"no usable USB device {want}: {'; '.join(why)}")


def usb_why(exc: BaseException) -> str:
    if _errno(exc) == errno.EACCES:
        return "permission denied (add a udev rule giving the agent's user the device)"
    return str(exc)


def claim(dev: Any, settings: HidPosSettings, sysfs_root: Path) -> Claimed:
    """Find the 0x8C interface, detach the kernel driver, claim, enable. Undone on failure."""
    layout = layout_for(settings, dev.idVendor)
    tried = []
    cfg_value = dev.get_active_configuration().bConfigurationValue
    for intf in _hid_interfaces(dev, settings.interface):
        number = intf.bInterfaceNumber
        detached = False
        try:
            held = dev.is_kernel_driver_active(number)
            # The kernel's copy first: a keyboard interface is then never detached to look.
            desc = _sysfs_report_descriptor(sysfs_root, dev, cfg_value, number) if held else None
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
                undo(dev, number, detached)
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
            return Claimed(dev, number, ep_in, ep_out, packet, detached, layout, _name(dev))
        except (usb.core.USBError, ValueError, DriverError) as exc:
            undo(dev, number, detached)
            if isinstance(exc, DriverError):
                raise
            raise DriverError(f"interface {number}: {usb_why(exc)}") from exc
    found = "; ".join(tried) or "no HID interface"
    raise DeviceNotFound(f"no HID POS (usage page 0x8c) interface: {found}")


def undo(dev: Any, number: int, detached: bool) -> None:
    """Release (pyusb claims an interface for any request to it), give it back to the kernel."""
    try:
        usb.util.release_interface(dev, number)  # a no-op when pyusb holds no claim
    except usb.core.USBError as exc:
        event(log, "release_failed", level=logging.WARNING, interface=number, error=str(exc))
    if detached:
        try:
            dev.attach_kernel_driver(number)
        except usb.core.USBError as exc:
            event(log, "reattach_failed", level=logging.WARNING, interface=number, error=str(exc))


def release(opened: Claimed) -> None:
    """Every exit path: release, give the interface back to the kernel, free the handle."""
    try:
        undo(opened.dev, opened.interface, opened.detached)
    finally:
        usb.util.dispose_resources(opened.dev)


def read_report(opened: Claimed, timeout_ms: int) -> bytes | None:
    """One input report, or None when none came within ``timeout_ms``."""
    try:
        got = opened.dev.read(opened.ep_in, opened.packet, timeout_ms)
    except usb.core.USBTimeoutError:
        return None
    except (usb.core.USBError, ValueError) as exc:  # ValueError: pyusb lost the endpoint
        what = "unplugged" if _errno(exc) in _GONE else "read failed"
        raise DeviceGone(f"{what}: {exc}") from exc
    return bytes(got)


def send_output(opened: Claimed, report: bytes, device_id: str) -> None:
    try:
        if opened.ep_out is not None:
            opened.dev.write(opened.ep_out, report, 1000)
        else:
            opened.dev.ctrl_transfer(
                0x21, _SET_REPORT, (_OUTPUT << 8) | report[0], opened.interface, report, 1000
            )
    except usb.core.USBError as exc:
        raise DriverError(f"device {device_id}: beep failed: {exc}") from exc


def survey(dev: Any, sysfs_root: Path) -> Found | None:
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
        desc = _sysfs_report_descriptor(sysfs_root, dev, cfg_value, number)
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
            details[f"interface {number}"] = f"report descriptor unreadable: {usb_why(exc)}"
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
        details["serial"] = f"unreadable: {usb_why(exc)}"
    if pos:
        details["hid_pos_interfaces"] = ", ".join(map(str, pos))
    details["layout"] = VENDOR_LAYOUTS.get(dev.idVendor, "generic")
    stable = vid_pid + (f":{serial}" if serial else "")
    path = f"usb:{dev.bus}-{'.'.join(map(str, dev.port_numbers or ()))}" if dev.bus else None
    return Found("hidpos", stable, _name(dev), path, details)
