"""drivers/wedge.py's reading and hotplug: fake only the device node and udev, with real fds.

The fake device is an ``evdev.EventIO`` on a pipe: the test writes real
``struct input_event`` bytes and evdev's own C reader decodes them, so the
driver's reading code runs as it does on a scanner.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from driver_kit import eventually, read_factory
from evdev import InputEvent, ecodes
from evdev.eventio import EventIO

from agent.errors import DriverError
from agent.model import Read
from drivers import DRIVERS
from drivers.base import Found
from drivers.wedge import Change, LinuxInput, WedgeScanner, WedgeSettings
from tests.e2e.harness import LedgerProcess, gtin14, write_config

e = ecodes
EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit Linux


class FakeInputDevice(EventIO):
    """A device node stand-in: real fd, evdev's real read(), grab/ungrab/close recorded."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd, self._w = os.pipe()
        os.set_blocking(self.fd, False)
        self.calls: list[str] = []
        self.fail: OSError | None = None

    def read(self) -> Any:
        if self.fail is not None:
            raise self.fail
        return super().read()

    def send(self, events: list[InputEvent]) -> None:
        os.write(
            self._w, b"".join(EVENT.pack(x.sec, x.usec, x.type, x.code, x.value) for x in events)
        )

    def unplug(self, err: int = errno.ENODEV) -> None:
        self.fail = OSError(err, os.strerror(err))
        os.write(self._w, b"x")  # wakes the reader as the kernel does

    def grab(self) -> None:
        self.calls.append("grab")

    def ungrab(self) -> None:
        self.calls.append("ungrab")
        if self.fail is not None and self.fail.errno == errno.ENODEV:
            raise self.fail

    def close(self) -> None:
        self.calls.append("close")
        os.close(self.fd)
        os.close(self._w)


class FakeHotplug:
    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self._pending: list[Change] = []
        self.closed = False

    def fileno(self) -> int:
        return self._r

    def emit(self, change: Change) -> None:
        self._pending.append(change)
        os.write(self._w, b"!")

    def changes(self) -> list[Change]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._r, 4096)
        out, self._pending = self._pending, []
        return out

    def close(self) -> None:
        self.closed = True
        os.close(self._r)
        os.close(self._w)


class FakeInput:
    """Devices present now, what open() does for each path (errors, then a device)."""

    def __init__(self, *present: Found) -> None:
        self.present = list(present)
        self.outcomes: dict[str, list[OSError | None]] = {}
        self.opened: list[FakeInputDevice] = []
        self.hotplugs: list[FakeHotplug] = []  # one udev monitor per driver, as in LinuxInput

    def devices(self) -> list[Found]:
        return list(self.present)

    def open(self, path: str) -> FakeInputDevice:
        outcome = self.outcomes.get(path, [])
        if outcome:
            err = outcome.pop(0)
            if err is not None:
                raise err
        dev = FakeInputDevice(path)
        self.opened.append(dev)
        return dev

    def watch(self) -> FakeHotplug:
        self.hotplugs.append(FakeHotplug())
        return self.hotplugs[-1]

    def emit(self, change: Change) -> None:
        for hotplug in self.hotplugs:
            if not hotplug.closed:
                hotplug.emit(change)

    def plug(self, found: Found) -> None:
        self.present.append(found)
        self.emit(Change("add", found.path or "", found))

    def unplug_node(self, path: str) -> None:
        self.present = [f for f in self.present if f.path != path]
        self.emit(Change("remove", path))


def scanner_found(node: str = "/dev/input/event7", vid_pid: str = "05e0:1200") -> Found:
    return Found("wedge", vid_pid, "Symbol Bar Code Scanner", node, {"vid_pid": vid_pid})


KEYBOARD = Found(
    "wedge", "0001:0001", "AT Translated Set 2 keyboard", "/dev/input/event3",
    {"vid_pid": "0001:0001", "looks_like": "keyboard"},
)  # fmt: skip


def keys_for(text: str, enter: bool = True, t0: float = 1000.0) -> list[InputEvent]:
    """US key events typing digits, capitals and GS, as a USB scanner sends them."""
    out: list[InputEvent] = []
    t = int(t0 * 1e6)

    def ev(type_: int, code: int, value: int) -> None:
        nonlocal t
        out.append(InputEvent(t // 10**6, t % 10**6, type_, code, value))
        if type_ == e.EV_SYN:
            t += 500

    def key(code: int, value: int) -> None:
        ev(e.EV_MSC, e.MSC_SCAN, 0x70000 + code)
        ev(e.EV_KEY, code, value)
        ev(e.EV_SYN, e.SYN_REPORT, 0)

    for ch in text:
        mods = []
        if ch == "\x1d":
            code, mods = e.KEY_RIGHTBRACE, [e.KEY_LEFTCTRL]
        elif ch.isdigit():
            code = getattr(e, f"KEY_{ch}")
        else:
            code, mods = getattr(e, f"KEY_{ch}"), [e.KEY_LEFTSHIFT]
        for m in mods:
            key(m, 1)
        key(code, 1)
        key(code, 0)
        for m in mods:
            key(m, 0)
    if enter:
        key(e.KEY_ENTER, 1)
        key(e.KEY_ENTER, 0)
    return out


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def wedge(system: FakeInput, sleeps: Sleeps | None = None, **settings: Any) -> WedgeScanner:
    settings.setdefault("vid_pid", "05e0:1200")
    return WedgeScanner(
        "wedge-1",
        WedgeSettings(**settings),
        read_factory(1.78e9, "b"),
        system=system,
        sleep=sleeps or Sleeps(),
    )


async def next_read(reads: AsyncIterator[Read]) -> Read:
    return await asyncio.wait_for(anext(reads), 10)


# ---- reading ------------------------------------------------------------------------


async def test_reads_a_gs1_scan_with_gs_intact_and_releases_the_grab_on_close() -> None:
    system = FakeInput(KEYBOARD, scanner_found())
    async with wedge(system) as driver:
        reads = driver.reads()
        first = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: system.opened)
        (dev,) = system.opened
        assert dev.path == "/dev/input/event7"  # the scanner, never the keyboard
        dev.send(keys_for("0109506000134352\x1d10LOT42"))
        read = await first
        assert read.device == "wedge-1"
        assert read.data == b"0109506000134352\x1d10LOT42"
        assert read.fault is None
        assert driver.present and driver.problem is None
        await reads.aclose()
    assert dev.calls == ["grab", "ungrab", "close"]
    assert [h.closed for h in system.hotplugs] == [True]


async def test_grab_is_released_when_reading_raises() -> None:
    system = FakeInput(scanner_found())
    driver = wedge(system)
    await driver.__aenter__()
    reads = driver.reads()
    pending = asyncio.ensure_future(next_read(reads))
    await eventually(lambda: system.opened)
    dev = system.opened[0]
    dev.unplug(errno.EIO)
    with pytest.raises(DriverError, match=r"wedge-1: reading /dev/input/event7 failed"):
        await pending
    assert dev.calls == ["grab", "ungrab", "close"]
    await driver.__aexit__(None, None, None)
    assert dev.calls == ["grab", "ungrab", "close"]  # closed once


async def test_scan_without_suffix_is_flushed_by_the_inter_key_timeout() -> None:
    system = FakeInput(scanner_found())
    async with wedge(system, suffix="none", inter_key_timeout_ms=5) as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: system.opened)
        system.opened[0].send(keys_for("4006381333931", enter=False))
        read = await pending
        assert (read.data, read.fault) == (b"4006381333931", None)
        await reads.aclose()


async def test_two_scanners_reading_at_once_do_not_mix() -> None:
    system = FakeInput(
        scanner_found("/dev/input/event7"), scanner_found("/dev/input/event8", "05e0:1300")
    )
    one, two = wedge(system), wedge(system, vid_pid="05e0:1300")
    async with one, two:
        r1, r2 = one.reads(), two.reads()
        p1, p2 = asyncio.ensure_future(next_read(r1)), asyncio.ensure_future(next_read(r2))
        await eventually(lambda: len(system.opened) == 2)
        d1, d2 = sorted(system.opened, key=lambda d: d.path)
        a, b = keys_for("ABC123"), keys_for("456DEF")
        for i in range(0, max(len(a), len(b)), 3):  # one key report each, in turn
            d1.send(a[i : i + 3])
            d2.send(b[i : i + 3])
        assert ((await p1).data, (await p2).data) == (b"ABC123", b"456DEF")
        await r1.aclose()
        await r2.aclose()


# ---- hotplug ------------------------------------------------------------------------


async def test_opens_absent_then_reads_when_the_scanner_is_plugged_in() -> None:
    system = FakeInput(KEYBOARD)
    async with wedge(system) as driver:
        assert not driver.present
        assert driver.problem == "waiting for vid:pid 05e0:1200"
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        system.plug(KEYBOARD)  # a keyboard appearing is not taken
        await asyncio.sleep(0.01)
        assert system.opened == []
        system.plug(scanner_found())
        await eventually(lambda: system.opened)
        system.opened[0].send(keys_for("42"))
        assert (await pending).data == b"42"
        assert driver.present
        await reads.aclose()


async def test_permission_settling_is_retried_with_backoff() -> None:
    system = FakeInput()
    denied = PermissionError(errno.EACCES, "Permission denied")
    system.outcomes["/dev/input/event7"] = [denied, denied, None]
    sleeps = Sleeps()
    async with wedge(system, sleeps) as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        system.plug(scanner_found())
        await eventually(lambda: system.opened)
        assert sleeps.waits == [0.05, 0.1]
        system.opened[0].send(keys_for("7"))
        assert (await pending).data == b"7"
        await reads.aclose()


async def test_permission_never_granted_is_a_problem_until_udev_says_it_changed() -> None:
    system = FakeInput(scanner_found())
    denied = PermissionError(errno.EACCES, "Permission denied")
    system.outcomes["/dev/input/event7"] = [denied] * 8 + [None]
    sleeps = Sleeps()
    async with wedge(system, sleeps) as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: driver.problem and "permission denied" in driver.problem)
        assert len(sleeps.waits) == 7 and max(sleeps.waits) == 1.0  # bounded, then wait
        assert not driver.present and system.opened == []
        system.emit(Change("change", "/dev/input/event7", scanner_found()))
        await eventually(lambda: system.opened)
        system.opened[0].send(keys_for("9"))
        assert (await pending).data == b"9"
        await reads.aclose()


async def test_unplug_closes_and_the_same_device_id_reads_again_on_replug() -> None:
    system = FakeInput(scanner_found("/dev/input/event7"))
    async with wedge(system) as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: system.opened)
        first = system.opened[0]
        first.send(keys_for("12", enter=False))
        await asyncio.sleep(0.01)
        first.unplug()  # ENODEV: a Bluetooth handheld going to sleep mid-scan
        cut = await pending
        assert (cut.data, cut.fault) == (b"12", "cut short: the device went away mid-scan")
        await eventually(lambda: "close" in first.calls)
        assert first.calls == ["grab", "ungrab", "close"]
        assert not driver.present
        assert "went away" in (driver.problem or "")
        system.unplug_node("/dev/input/event7")
        pending = asyncio.ensure_future(next_read(reads))
        await asyncio.sleep(0.01)
        system.plug(scanner_found("/dev/input/event9"))  # woke up as a new node
        await eventually(lambda: len(system.opened) == 2)
        system.opened[1].send(keys_for("34"))
        again = await pending
        assert (again.device, again.data, again.fault) == ("wedge-1", b"34", None)
        await reads.aclose()


async def test_udev_remove_closes_the_device() -> None:
    system = FakeInput(scanner_found())
    async with wedge(system) as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: system.opened)
        system.unplug_node("/dev/input/event7")
        await eventually(lambda: "close" in system.opened[0].calls)
        assert not driver.present
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await reads.aclose()


async def test_a_grab_held_elsewhere_is_a_problem_not_a_crash() -> None:
    class Busy(FakeInput):
        def open(self, path: str) -> FakeInputDevice:
            dev = super().open(path)

            def grab() -> None:
                raise OSError(errno.EBUSY, "busy")

            dev.grab = grab  # type: ignore[method-assign]
            return dev

    system = Busy(scanner_found())
    async with wedge(system) as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: driver.problem and "another program" in driver.problem)
        assert system.opened[0].calls == ["close"]
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await reads.aclose()


async def test_real_udev_opens_with_no_scanner_present_and_closes_cleanly() -> None:
    try:
        LinuxInput().watch().close()
    except OSError as exc:  # pragma: no cover - a sandbox without netlink
        pytest.skip(f"no udev netlink here: {exc}")
    driver = WedgeScanner(
        "wedge-real", WedgeSettings(vid_pid="ffff:fffe"), read_factory(1.78e9, "b")
    )
    async with driver:
        assert not driver.present
        assert driver.problem == "waiting for vid:pid ffff:fffe"
        reads = driver.reads()
        pending = asyncio.ensure_future(anext(reads))
        await asyncio.sleep(0.01)
        assert not pending.done()
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await reads.aclose()
    assert all(f.driver == "wedge" for f in WedgeScanner.discover())


# ---- end to end: key events -> daemon -> outbox -> ledger ------------------------------


async def test_key_events_become_a_receive_movement_in_the_outbox_and_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.config import load_config
    from agent.daemon import Daemon

    system = FakeInput(scanner_found())

    class Wedge(WedgeScanner):
        System = staticmethod(lambda: system)  # type: ignore[assignment]

    monkeypatch.setitem(DRIVERS, "wedge", Wedge)
    ledger = LedgerProcess(tmp_path)
    ledger.start()
    try:
        path = write_config(tmp_path, ledger.url, ledger.token_file, None)
        path.write_text(
            path.read_text()
            + '[[devices]]\nid = "wedge-1"\ndriver = "wedge"\nvid_pid = "05e0:1200"\nlayout = "de"\n\n'
            '[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
            'devices = ["wedge-1"]\n'
        )
        daemon = Daemon(load_config(path), ledger.token)
        task = asyncio.create_task(daemon.run())
        try:
            await asyncio.wait_for(daemon.ready.wait(), 30)
            await eventually(lambda: system.opened)
            gtin = gtin14(42)
            # A de-configured scanner: digits are the same keys as on us.
            system.opened[0].send(keys_for(gtin))
            outbox = tmp_path / "outbox.db"

            def movements() -> list[tuple[str, str, str]]:
                with sqlite3.connect(outbox) as db:
                    return db.execute("SELECT kind, state, payload FROM movements").fetchall()

            for _ in range(3000):
                rows = movements()
                if rows and rows[0][1] == "delivered":
                    break
                await asyncio.sleep(0.01)
            ((kind, state, payload),) = movements()
            assert (kind, state) == ("receive", "delivered")
            assert f'"gtin":"{gtin}"' in payload and '"device":"wedge-1"' in payload
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 10)
        assert system.opened[0].calls == ["grab", "ungrab", "close"]
        assert ledger.on_hand() == {f"DOCK-7/{gtin}": 1}
    finally:
        ledger.stop()


# ---- a scanner with several event nodes -----------------------------------------------

HONEYWELL = "/dev/input/by-id/usb-Honeywell_Imaging___Mobility_1900_21034B2F0A"


def node(path: str, link: str, name: str = "Honeywell 1900") -> Found:
    return Found(
        "wedge", link, name, path, {"vid_pid": "0c2e:0b61", "by_id": link, "serial": "21034B2F0A"}
    )


async def test_a_scanner_with_two_event_nodes_is_read_on_both_as_one_device() -> None:
    # A keyboard interface and a second HID interface of one scanner: both grabbed,
    # their keys one stream (a scan that moves from one node to the other stays one).
    kbd = node("/dev/input/event7", f"{HONEYWELL}-event-kbd")
    if01 = node("/dev/input/event8", f"{HONEYWELL}-if01-event-kbd", "Honeywell 1900 Keyboard")
    system = FakeInput(KEYBOARD, kbd, if01)
    async with wedge(system, vid_pid="0c2e:0b61") as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: len(system.opened) == 2)
        d7, d8 = sorted(system.opened, key=lambda d: d.path)
        assert (d7.path, d8.path) == ("/dev/input/event7", "/dev/input/event8")
        keys = keys_for("0109506000134352")
        d7.send(keys[: len(keys) // 2])
        d8.send(keys[len(keys) // 2 :])
        assert (await pending).data == b"0109506000134352"
        # one node goes: the device stays present and reads on the other
        pending = asyncio.ensure_future(next_read(reads))
        system.unplug_node("/dev/input/event7")
        await eventually(lambda: d7.calls == ["grab", "ungrab", "close"])
        assert driver.present and driver.problem is None
        d8.send(keys_for("42"))
        assert (await pending).data == b"42"
        # it comes back: opened again beside the one still open
        pending = asyncio.ensure_future(next_read(reads))
        system.plug(kbd)
        await eventually(lambda: len(system.opened) == 3)
        system.opened[2].send(keys_for("7"))
        assert (await pending).data == b"7"
        # both go: the device waits
        pending = asyncio.ensure_future(next_read(reads))
        system.unplug_node("/dev/input/event8")
        system.unplug_node("/dev/input/event7")
        await eventually(lambda: not driver.present)
        assert driver.problem is not None and "went away" in driver.problem
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
        await reads.aclose()
    assert [d.calls for d in system.opened] == [["grab", "ungrab", "close"]] * 3


async def test_a_by_id_path_takes_the_other_event_nodes_of_the_same_usb_device() -> None:
    kbd = node("/dev/input/event7", f"{HONEYWELL}-event-kbd")
    consumer = node("/dev/input/event9", f"{HONEYWELL}-event-if01")
    other = node(
        "/dev/input/event5", "/dev/input/by-id/usb-Honeywell_Imaging___Mobility_1900_99-event-kbd"
    )
    system = FakeInput(kbd, consumer, other)
    async with wedge(system, vid_pid=None, path=f"{HONEYWELL}-event-kbd") as driver:
        reads = driver.reads()
        pending = asyncio.ensure_future(next_read(reads))
        await eventually(lambda: len(system.opened) == 2)
        assert sorted(d.path for d in system.opened) == ["/dev/input/event7", "/dev/input/event9"]
        system.opened[1].send(keys_for("5"))
        assert (await pending).data == b"5"
        await reads.aclose()
    ok, why = WedgeScanner.matches(WedgeSettings(path=f"{HONEYWELL}-event-kbd"), consumer)
    assert ok and "another event node of this device" in why
    assert not WedgeScanner.matches(WedgeSettings(path=f"{HONEYWELL}-event-kbd"), other)[0]
