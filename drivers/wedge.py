"""Keyboard-wedge scanners through evdev: matched, grabbed, decoded in their own layout.

A wedge scanner is a USB or Bluetooth keyboard that types what it scans. We
open its /dev/input/event node, grab it (so scans never type into a console
or desktop), decode the keys with the scanner's layout (drivers/keymap.py)
and frame them into scans: a scan ends on the configured suffix key, or when
no key has come for ``inter_key_timeout_ms``.

Three layers, so tests can fake only what this machine lacks:

- ``ScanAssembler``: evdev events in, finished ``Scan``s out. Pure.
- ``InputSystem`` / ``EventDevice`` / ``Hotplug``: the small seams to udev and
  evdev (list devices, open one, hotplug changes). ``LinuxInput`` is the real
  one (pyudev + evdev); tests give fakes with real file descriptors.
- ``WedgeScanner``: the driver. It opens even when the scanner is absent
  (``present=False``) and follows udev: a scanner that appears is opened once
  its permissions settle, one that goes (ENODEV) is closed and waited for
  again, under the same device id, so a Bluetooth handheld that sleeps and
  wakes is the same device. No threads and no polling: the device and udev
  file descriptors are watched with ``loop.add_reader`` only while waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import logging
import os
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from evdev import InputEvent, ecodes
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from agent.errors import DriverError
from agent.logs import event
from agent.model import Feedback, Read
from drivers.base import Driver, Found, ReadFactory
from drivers.framing import MAX_SCAN_BYTES, Scan, finish
from drivers.keymap import KeyDecoder, Layout, LayoutError

log = logging.getLogger("edgetally.drivers.wedge")
_VID_PID_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")
BY_ID = "/dev/input/by-id/"
OPEN_ATTEMPTS = 8  # waits 0.05 .. 1 s: about 3.5 s for udev to apply permissions
_TERMINATORS = {
    "enter": (ecodes.KEY_ENTER, ecodes.KEY_KPENTER),
    "tab": (ecodes.KEY_TAB,),
    "none": (),
}
# USB vendors that make scanners (Symbol/Zebra, Metrologic and Hand Held Products/
# Honeywell, PSC and Datalogic, Newland, Opticon): only to label `edgetally
# devices` output; matching always needs the configured identity.
_SCANNER_VIDS = frozenset({"05e0", "0c2e", "0536", "05f9", "080c", "1eab", "065a"})
_SCANNER_WORDS = re.compile(
    r"scan|barcode|bar code|honeywell|zebra|symbol|datalogic|newland|metrologic|opticon|"
    r"hand held products|socket mobile",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class WedgeSettings:
    path: str | None = field(
        default=None,
        metadata={"help": "the scanner's /dev/input/by-id/... path (USB scanners)"},
    )
    vid_pid: str | None = field(
        default=None, metadata={"help": 'USB or Bluetooth vendor:product id, e.g. "05e0:1200"'}
    )
    serial: str | None = field(
        default=None,
        metadata={"help": "serial number (USB) or address (Bluetooth) to tell twins apart"},
    )
    name_pattern: str | None = field(
        default=None,
        metadata={"help": 'glob on the device name, case-insensitive, e.g. "Honeywell*"'},
    )
    layout: str = field(
        default="us", metadata={"help": "XKB keyboard layout the scanner is set to: us, de, fr…"}
    )
    variant: str | None = field(default=None, metadata={"help": "XKB layout variant, if any"})
    suffix: Literal["enter", "tab", "none"] = field(
        default="enter",
        metadata={"help": "key that ends a scan (enter includes keypad Enter); none: timeout only"},
    )
    prefix: str | None = field(
        default=None, metadata={"help": "text the scanner sends first, stripped when present"}
    )
    inter_key_timeout_ms: int = field(
        default=100,
        metadata={
            "help": "no key for this long ends a scan (cut short, a bad read, if a suffix is set)",
            "minimum": 1,
            "maximum": 10_000,
        },
    )
    aim: bool = field(
        default=True, metadata={"help": "split AIM symbology ids (]C1, ]d2, ]Q3…) off the data"}
    )
    max_length: int = field(
        default=MAX_SCAN_BYTES,
        metadata={"help": "longest scan in bytes; longer is a bad read", "minimum": 1},
    )
    grab: bool = field(
        default=True, metadata={"help": "grab the device so scans never type anywhere else"}
    )

    def __post_init__(self) -> None:
        if self.path is None and self.vid_pid is None and self.name_pattern is None:
            raise ValueError(
                "set path, vid_pid or name_pattern: a wedge scanner is matched by its "
                "identity, never by chance (any keyboard would do)"
            )
        if self.path is not None and not self.path.startswith("/dev/"):
            raise ValueError(f"path: a /dev/input/by-id/... path, got {self.path!r}")
        if self.vid_pid is not None and not _VID_PID_RE.match(self.vid_pid):
            raise ValueError(
                f'vid_pid: four hex digits, ":", four hex digits, got {self.vid_pid!r}'
            )
        try:  # a few ms; so that `edgetally config check` catches a wrong layout
            Layout(self.layout, self.variant or "")
        except LayoutError as exc:
            raise ValueError(f"layout: {exc}") from exc

    def identity(self) -> str:
        """The configured identity, as people read it."""
        parts = []
        if self.path:
            parts.append(self.path)
        if self.vid_pid:
            parts.append(f"vid:pid {self.vid_pid.lower()}")
        if self.serial:
            parts.append(f"serial {self.serial}")
        if self.name_pattern:
            parts.append(f"name {self.name_pattern!r}")
        return ", ".join(parts)


# ---- the seams to evdev and udev ----------------------------------------------------


class EventDevice(Protocol):
    """What we use of an ``evdev.InputDevice``."""

    fd: int

    def read(self) -> Iterable[InputEvent]: ...
    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Change:
    """A udev event for an input node: ``found`` is None when it is being removed."""

    action: str  # add, change, remove (udev's words)
    path: str
    found: Found | None = None


class Hotplug(Protocol):
    def fileno(self) -> int: ...
    def changes(self) -> list[Change]:
        """Every change waiting now; never blocks."""
        ...

    def close(self) -> None: ...


class InputSystem(Protocol):
    def devices(self) -> list[Found]: ...
    def open(self, path: str) -> EventDevice: ...
    def watch(self) -> Hotplug: ...


def describe(
    node: str, links: Iterable[str], props: Mapping[str, str], attrs: Mapping[str, str]
) -> Found:
    """A udev input node (its properties and its parent's sysfs attributes) as a Found."""
    name = attrs.get("name", "").rstrip("\n") or props.get("NAME", "").strip('"') or node
    vid = (props.get("ID_VENDOR_ID") or attrs.get("id/vendor", "")).lower()
    pid = (props.get("ID_MODEL_ID") or attrs.get("id/product", "")).lower()
    serial = props.get("ID_SERIAL_SHORT", "")
    uniq = attrs.get("uniq", "").rstrip("\n")
    by_id = sorted(link for link in links if link.startswith(BY_ID))
    if _SCANNER_WORDS.search(name) or vid in _SCANNER_VIDS:
        looks = "scanner"
    elif props.get("ID_INPUT_KEYBOARD") == "1":
        looks = "keyboard"
    else:
        looks = "keys"  # buttons, remote controls, power keys
    details = {"looks_like": looks, "bus": props.get("ID_BUS", "")}
    for key, value in (
        ("vid_pid", f"{vid}:{pid}" if vid and pid else ""),
        ("serial", serial),
        ("uniq", uniq),
        ("by_id", " ".join(by_id)),
    ):
        if value:
            details[key] = value
    stable = by_id[0] if by_id else details.get("vid_pid", node)
    if not by_id and (serial or uniq) and "vid_pid" in details:
        stable = f"{stable}:{serial or uniq}"
    return Found("wedge", stable, name, node, details)


class _UdevHotplug:
    def __init__(self, monitor: Any) -> None:
        self._monitor = monitor

    def fileno(self) -> int:
        return int(self._monitor.fileno())

    def changes(self) -> list[Change]:
        out = []
        while (dev := self._monitor.poll(timeout=0)) is not None:
            node = dev.device_node
            if not node or not os.path.basename(node).startswith("event"):
                continue
            found = None if dev.action == "remove" else _found_from_udev(dev)
            if dev.action == "remove" or found is not None:
                out.append(Change(str(dev.action), str(node), found))
        return out

    def close(self) -> None:
        self._monitor = None  # libudev closes the socket when its monitor is unreferenced


def _found_from_udev(dev: Any) -> Found | None:
    node = dev.device_node
    props = {str(k): str(v) for k, v in dev.properties.items()}
    if not node or "1" not in (props.get("ID_INPUT_KEY"), props.get("ID_INPUT_KEYBOARD")):
        return None
    attrs: dict[str, str] = {}
    parent = dev.parent
    for name in ("name", "uniq", "id/vendor", "id/product"):
        with contextlib.suppress(KeyError, AttributeError, UnicodeDecodeError):
            attrs[name] = str(parent.attributes.asstring(name))
    return describe(str(node), [str(link) for link in dev.device_links], props, attrs)


class LinuxInput:
    """The real input system: udev to find and follow devices, evdev to read them."""

    def __init__(self) -> None:
        import pyudev

        self._pyudev = pyudev
        self._context = pyudev.Context()

    def devices(self) -> list[Found]:
        found = (_found_from_udev(d) for d in self._context.list_devices(subsystem="input"))
        return sorted((f for f in found if f is not None), key=lambda f: f.path or "")

    def open(self, path: str) -> EventDevice:
        from evdev import InputDevice

        return InputDevice(path)

    def watch(self) -> Hotplug:
        monitor = self._pyudev.Monitor.from_netlink(self._context)
        monitor.filter_by("input")
        monitor.start()
        return _UdevHotplug(monitor)


# ---- framing: key events -> scans (no I/O) ------------------------------------------


class ScanAssembler:
    """One device's key events -> finished scans: terminator, timeout, faults."""

    def __init__(self, decoder: KeyDecoder, settings: WedgeSettings) -> None:
        self.decoder = decoder
        self.settings = settings
        self._prefix = (settings.prefix or "").encode("utf-8")
        self._terminators = _TERMINATORS[settings.suffix]
        self._timeout_us = settings.inter_key_timeout_ms * 1000
        # Keep what finish() may strip (prefix, AIM id) beyond max_length; count the rest.
        self._cap = settings.max_length + len(self._prefix) + 3
        self._buf = bytearray()
        self._dropped = 0
        self._no_char: list[str] = []
        self._lost = False
        self._syncing = False
        self._last_us: int | None = None

    @property
    def pending(self) -> bool:
        """Whether a scan has begun (a timeout would end it)."""
        return bool(self._buf or self._dropped or self._no_char or self._lost)

    def feed(self, ev: InputEvent) -> list[Scan]:
        """One evdev event; the scans it finished (a gap before it, or its suffix)."""
        if ev.type == ecodes.EV_SYN:
            if ev.code == ecodes.SYN_DROPPED:
                # The kernel's buffer overflowed: events up to the next SYN_REPORT
                # are incomplete and the key state is unknown.
                self._lost = self._syncing = True
            elif ev.code == ecodes.SYN_REPORT and self._syncing:
                self._syncing = False
                self.decoder.reset()
            return []
        if ev.type != ecodes.EV_KEY or self._syncing:
            return []
        out = []
        now_us = ev.sec * 1_000_000 + ev.usec
        if (
            ev.value == 1
            and self.pending
            and self._last_us is not None
            and now_us - self._last_us > self._timeout_us
        ):
            out.append(self._finish("timeout"))  # read late: the gap still ends the scan
        text = self.decoder.key(ev.code, ev.value)
        if ev.value != 1:
            return out
        self._last_us = now_us
        if ev.code in self._terminators:
            out.append(self._finish("suffix"))
        elif text is None:
            self._no_char.append(key_name(ev.code))
        elif text:
            self._append(text.encode("utf-8"))
        return out

    def _append(self, data: bytes) -> None:
        room = self._cap - len(self._buf)
        self._buf += data[:room]
        self._dropped += max(0, len(data) - room)

    def expire(self) -> Scan | None:
        """No key for inter_key_timeout_ms: the scan so far, if any."""
        return self._finish("timeout") if self.pending else None

    def gone(self) -> Scan | None:
        """The device went away: the scan so far, if any, is a bad read."""
        return self._finish("gone") if self.pending else None

    def _finish(self, ended: Literal["suffix", "timeout", "gone"]) -> Scan:
        scan = finish(
            bytes(self._buf),
            prefix=self._prefix,
            aim=self.settings.aim,
            max_length=self.settings.max_length,
            dropped=self._dropped,
        )
        faults = [scan.fault] if scan.fault else []
        if self._no_char:
            shown = ", ".join(self._no_char[:5]) + (", …" if len(self._no_char) > 5 else "")
            faults.append(
                f"{len(self._no_char)} key(s) with no character in layout "
                f"{self.decoder.layout.name!r}: {shown}"
            )
        if self._lost:
            faults.append("the kernel dropped key events (SYN_DROPPED): scan incomplete")
        if ended == "timeout" and self.settings.suffix != "none":
            faults.append(
                f"cut short: no {self.settings.suffix} key within "
                f"{self.settings.inter_key_timeout_ms} ms"
            )
        elif ended == "gone":
            faults.append("cut short: the device went away mid-scan")
        self._buf = bytearray()
        self._dropped = 0
        self._no_char = []
        self._lost = False
        return Scan(scan.data, scan.symbology, "; ".join(faults) or None)


# ---- the driver ----------------------------------------------------------------------


def key_name(code: int) -> str:
    """KEY_F5 for 63: what a person can look up (evdev lists aliases for some codes)."""
    name = ecodes.KEY.get(code)
    if isinstance(name, list | tuple):
        return str(name[0])
    return str(name) if name else f"key {code}"


def _is_eacces(exc: BaseException) -> bool:
    return isinstance(exc, PermissionError)


class WedgeScanner(Driver):
    Settings = WedgeSettings
    # The seam for tests: what lists, opens and follows input devices. Tests that run
    # a whole daemon register a subclass with a fake; config never reaches it.
    System: ClassVar[type[InputSystem]] = LinuxInput

    def __init__(
        self,
        device_id: str,
        settings: WedgeSettings,
        reads: ReadFactory,
        *,
        system: InputSystem | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(device_id, settings, reads)
        self.settings: WedgeSettings = settings
        self._system_given = system
        self._system: InputSystem | None = None
        self._sleep = sleep
        self._layout: Layout | None = None
        self._hotplug: Hotplug | None = None
        self._dev: EventDevice | None = None
        self._dev_path: str | None = None
        self._assembler: ScanAssembler | None = None
        self._candidate: Found | None = None
        self._ready: deque[Scan] = deque()
        self._waiter: asyncio.Future[set[str]] | None = None
        self.problem = f"waiting for {settings.identity()}"

    # -- discovery and matching

    @classmethod
    def discover(cls) -> list[Found]:
        try:
            return cls.System().devices()
        except (OSError, ImportError):
            return []  # no udev here (a container, a build machine)

    @classmethod
    def matches(cls, settings: Any, found: Found) -> tuple[bool, str]:
        if found.driver != "wedge":
            return False, f"not an input device ({found.driver})"
        s: WedgeSettings = settings
        checks: list[tuple[bool, str]] = []
        if s.path is not None:
            links = found.details.get("by_id", "").split(" ")
            ok = s.path in links or s.path == found.path
            checks.append((ok, f"path {s.path} {'is' if ok else 'is not'} this device"))
        if s.vid_pid is not None:
            have = found.details.get("vid_pid", "none")
            ok = have == s.vid_pid.lower()
            verb = "matches" if ok else f"is not the configured {s.vid_pid.lower()}"
            checks.append((ok, f"vid:pid {have} {verb}"))
        if s.serial is not None:
            serials = {found.details.get("serial", ""), found.details.get("uniq", "")} - {""}
            ok = s.serial in serials
            shown = "/".join(sorted(serials)) or "none"
            verb = "matches" if ok else f"is not the configured {s.serial!r}"
            checks.append((ok, f"serial {shown} {verb}"))
        if s.name_pattern is not None:
            ok = fnmatch.fnmatchcase(found.name.casefold(), s.name_pattern.casefold())
            verb = "matches" if ok else "does not match"
            checks.append((ok, f"name {found.name!r} {verb} pattern {s.name_pattern!r}"))
        failed = [why for ok, why in checks if not ok]
        if failed:
            return False, "; ".join(failed)
        why = "; ".join(why for _, why in checks)
        if found.details.get("looks_like") == "keyboard":
            why += " (it looks like an ordinary keyboard: check the config)"
        return True, why

    # -- lifecycle

    async def open(self) -> None:
        try:
            self._layout = Layout(self.settings.layout, self.settings.variant or "")
        except LayoutError as exc:
            raise DriverError(f"device {self.device_id}: {exc}") from exc
        self._system = self._system_given or self.System()
        try:
            # Watch before listing, so a scanner plugged in between is not missed.
            self._hotplug = self._system.watch()
            found = self._system.devices()
        except OSError as exc:
            raise DriverError(f"device {self.device_id}: cannot watch udev: {exc}") from exc
        self._candidate = self._first_match(found)
        event(
            log,
            "wedge_open",
            device=self.device_id,
            identity=self.settings.identity(),
            found=self._candidate.path if self._candidate else None,
        )

    async def close(self) -> None:
        self._detach()
        if self._hotplug is not None:
            self._hotplug.close()
            self._hotplug = None
        self._wake(set())

    def _first_match(self, found: Sequence[Found]) -> Found | None:
        for f in found:
            ok, why = self.matches(self.settings, f)
            if ok:
                event(log, "wedge_match", device=self.device_id, path=f.path, why=why)
                return f
        return None

    async def reads(self) -> AsyncIterator[Read]:
        try:
            while self.state == "open":
                if self._ready:
                    scan = self._ready.popleft()
                    yield self.read_factory.make(
                        self.device_id, scan.data, symbology=scan.symbology, fault=scan.fault
                    )
                elif self._dev is None:
                    if self._candidate is not None:
                        found, self._candidate = self._candidate, None
                        await self._attach(found)
                    else:
                        await self._wait(None)
                else:
                    self._drain()
                    if not self._ready and self._dev is not None:
                        assembler = self._assembler
                        assert assembler is not None
                        timeout = self.settings.inter_key_timeout_ms / 1000
                        woke = await self._wait(timeout if assembler.pending else None)
                        if not woke and (expired := assembler.expire()) is not None:
                            self._ready.append(expired)
        finally:
            self._detach()  # ungrab and close on every way out, errors included

    async def feedback(self, feedback: Feedback) -> None:
        # A wedge has no beeper we can reach: the log is its feedback.
        event(
            log,
            "feedback",
            level=logging.INFO if feedback.kind == "good" else logging.WARNING,
            device=self.device_id,
            kind=feedback.kind,
            read_id=feedback.read_id,
            reason=feedback.reason,
        )

    # -- device in and out

    async def _attach(self, found: Found) -> None:
        assert self._system is not None and self._layout is not None and found.path
        path = found.path
        system = self._system
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_is_eacces),
                wait=wait_exponential(multiplier=0.05, max=1.0),
                stop=stop_after_attempt(OPEN_ATTEMPTS),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    dev = system.open(path)
        except PermissionError:
            self._waiting(
                f"permission denied on {path}: the service user needs access "
                "(install the udev rule, or add it to the input group)"
            )
            return
        except OSError as exc:
            self._waiting(f"cannot open {path}: {exc.strerror or exc}")
            return
        if self.settings.grab:
            try:
                dev.grab()
            except OSError as exc:
                dev.close()
                why = "another program holds it" if exc.errno == errno.EBUSY else exc.strerror
                self._waiting(f"cannot grab {path}: {why}")
                return
        self._dev, self._dev_path = dev, path
        self._assembler = ScanAssembler(self._layout.decoder(), self.settings)
        self.present, self.problem = True, None
        event(log, "wedge_attached", device=self.device_id, path=path, device_name=found.name)

    def _waiting(self, why: str) -> None:
        self.present = False
        self.problem = f"waiting for {self.settings.identity()}: {why}"
        event(log, "wedge_waiting", level=logging.WARNING, device=self.device_id, problem=why)

    def _detach(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        try:
            if self.settings.grab:
                with contextlib.suppress(OSError):  # ENODEV: a gone device holds no grab
                    dev.ungrab()
        finally:
            dev.close()
            self.present = False

    def _gone(self, why: str) -> None:
        if self._assembler is not None and (scan := self._assembler.gone()) is not None:
            self._ready.append(scan)
        path = self._dev_path
        self._detach()
        self._waiting(f"{path} went away ({why})")

    def _drain(self) -> None:
        """Read every event waiting on the device into scans."""
        dev, assembler = self._dev, self._assembler
        assert dev is not None and assembler is not None
        try:
            events = list(dev.read())
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                self._gone("unplugged")
                return
            raise DriverError(
                f"device {self.device_id}: reading {self._dev_path} failed: {exc}"
            ) from exc
        for ev in events:
            self._ready.extend(assembler.feed(ev))

    # -- waiting: the device's and udev's file descriptors, only while we wait

    async def _wait(self, timeout: float | None) -> bool:
        """Until the device has events (True), udev has news, close() or the timeout (False)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[set[str]] = loop.create_future()
        self._waiter = waiter
        ready: set[str] = set()

        def on(which: str) -> None:
            ready.add(which)
            self._wake(ready)

        fds = []
        if self._dev is not None:
            fds.append(self._dev.fd)
            loop.add_reader(self._dev.fd, on, "device")
        if self._hotplug is not None:
            fds.append(self._hotplug.fileno())
            loop.add_reader(fds[-1], on, "udev")
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            for fd in fds:
                loop.remove_reader(fd)
            self._waiter = None
        if "udev" in ready:
            self._on_hotplug()
        return "device" in ready

    def _wake(self, ready: set[str]) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(ready)

    def _on_hotplug(self) -> None:
        assert self._hotplug is not None and self._system is not None
        try:
            changes = self._hotplug.changes()
        except OSError as exc:
            # ENOBUFS: udev events were lost in a storm; ask for the whole list again.
            event(log, "udev_overrun", level=logging.WARNING, device=self.device_id, error=str(exc))
            if self._dev is None:
                self._candidate = self._first_match(self._system.devices())
            return
        for change in changes:
            if change.action == "remove":
                if self._dev is not None and change.path == self._dev_path:
                    self._gone("removed")
                elif self._candidate is not None and change.path == self._candidate.path:
                    self._candidate = None
            elif change.found is not None and self._dev is None:
                match = self._first_match([change.found])
                if match is not None:
                    self._candidate = match
