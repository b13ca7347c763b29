"""The wedge driver: follows udev for its scanner, grabs it, decodes its keys into reads.

A scanner may expose several event nodes (a keyboard and a consumer-control
interface, or two HID keyboard interfaces): every node that matches the
configured identity is opened and grabbed, and their keys go through one
decoder and one scan assembler, as one device. The device is present while
any of its nodes is; a node that goes away is closed on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from agent.errors import DriverError
from agent.logs import event
from agent.model import Feedback, Read
from drivers.base import Driver, Found, ReadFactory
from drivers.framing import Scan
from drivers.keymap import Layout, LayoutError
from drivers.wedge.assembler import ScanAssembler
from drivers.wedge.linux import EventDevice, Hotplug, InputSystem, LinuxInput
from drivers.wedge.settings import WedgeSettings, match

log = logging.getLogger("edgetally.drivers.wedge")
OPEN_ATTEMPTS = 8  # waits 0.05 .. 1 s: about 3.5 s for udev to apply permissions


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
        self._devs: dict[str, EventDevice] = {}  # path -> open node
        self._assembler: ScanAssembler | None = None
        self._candidates: dict[str, Found] = {}  # matching nodes not opened yet
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
        return match(settings, found)

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
        self._candidates = self._matching(found)
        event(
            log,
            "wedge_open",
            device=self.device_id,
            identity=self.settings.identity(),
            found=sorted(self._candidates) or None,
        )

    async def close(self) -> None:
        self._detach()
        if self._hotplug is not None:
            self._hotplug.close()
            self._hotplug = None
        self._wake(set())

    def _matching(self, found: Sequence[Found]) -> dict[str, Found]:
        """Every node of the configured scanner in ``found`` that is not open yet."""
        out: dict[str, Found] = {}
        for f in found:
            if not f.path or f.path in self._devs:
                continue
            ok, why = self.matches(self.settings, f)
            if ok:
                event(log, "wedge_match", device=self.device_id, path=f.path, why=why)
                out[f.path] = f
        return out

    async def reads(self) -> AsyncIterator[Read]:
        try:
            while self.state == "open":
                if self._ready:
                    scan = self._ready.popleft()
                    yield self.read_factory.make(
                        self.device_id, scan.data, symbology=scan.symbology, fault=scan.fault
                    )
                elif self._candidates:
                    found = list(self._candidates.values())
                    self._candidates.clear()
                    for f in found:
                        await self._attach(f)
                elif not self._devs:
                    await self._wait(None)
                else:
                    self._drain()
                    if not self._ready and self._devs:
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
        if not self._devs:  # the first node: a fresh keyboard state for the device
            self._assembler = ScanAssembler(self._layout.decoder(), self.settings)
        self._devs[path] = dev
        self.present, self.problem = True, None
        event(
            log,
            "wedge_attached",
            device=self.device_id,
            path=path,
            device_name=found.name,
            nodes=len(self._devs),
        )

    def _waiting(self, why: str) -> None:
        """A node could not be opened or went away; the device waits if none is left."""
        if self._devs:
            event(log, "wedge_node_lost", level=logging.WARNING, device=self.device_id, problem=why)
            return
        self.present = False
        self.problem = f"waiting for {self.settings.identity()}: {why}"
        event(log, "wedge_waiting", level=logging.WARNING, device=self.device_id, problem=why)

    def _detach(self, path: str | None = None) -> None:
        """Ungrab and close one node (``path``) or all of them."""
        paths = list(self._devs) if path is None else [path]
        for p in paths:
            dev = self._devs.pop(p, None)
            if dev is None:
                continue
            try:
                if self.settings.grab:
                    with contextlib.suppress(OSError):  # ENODEV: a gone device holds no grab
                        dev.ungrab()
            finally:
                dev.close()
        self.present = bool(self._devs)

    def _gone(self, path: str, why: str) -> None:
        self._detach(path)
        if (
            not self._devs
            and self._assembler is not None
            and (scan := self._assembler.gone()) is not None
        ):
            self._ready.append(scan)
        self._waiting(f"{path} went away ({why})")

    def _drain(self) -> None:
        """Read every event waiting on the device's nodes into scans."""
        assembler = self._assembler
        assert assembler is not None
        for path, dev in list(self._devs.items()):
            try:
                events = list(dev.read())
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENODEV:
                    self._gone(path, "unplugged")
                    continue
                raise DriverError(f"device {self.device_id}: reading {path} failed: {exc}") from exc
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
        for dev in self._devs.values():
            fds.append(dev.fd)
            loop.add_reader(dev.fd, on, "device")
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
            self._candidates = self._matching(self._system.devices())
            return
        for change in changes:
            if change.action == "remove":
                if change.path in self._devs:
                    self._gone(change.path, "removed")
                self._candidates.pop(change.path, None)
            elif change.found is not None:
                self._candidates.update(self._matching([change.found]))
