"""The HID POS driver: opens even when the scanner is absent, follows it, assembles its scans."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import usb.core
import usb.util
from tenacity import wait_random_exponential

from agent.errors import DeviceGone, DriverError
from agent.logs import event
from agent.model import Feedback, Read
from drivers.base import Driver, Found
from drivers.hidpos.device import (
    Claimed,
    find_and_claim,
    read_report,
    release,
    send_output,
    survey,
)
from drivers.hidpos.reports import Assembler, Finished
from drivers.hidpos.settings import HidPosSettings, layout_for, parse_vid_pid
from drivers.reopen import reopen_wait

log = logging.getLogger("edgetally.drivers.hidpos")


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
        self._open: Claimed | None = None
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
        task = self._start(
            functools.partial(
                find_and_claim, self.settings, self.vid, self.pid, self._backend, self.sysfs_root
            )
        )
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
            await asyncio.to_thread(release, opened)
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
                wait = reopen_wait(self._wait, attempt)
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
                report = await self._run(
                    functools.partial(read_report, opened, self.settings.read_timeout_ms)
                )
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
        await self._run(functools.partial(send_output, opened, beep, self.device_id))

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
                found = survey(dev, cls.sysfs_root)
            finally:
                usb.util.dispose_resources(dev)
            if found is not None:
                out.append(found)
        return out

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
