"""What a driver is: an async context manager that yields Reads and takes feedback.

Drivers know devices and nothing else: no identification, no rules, no
storage. Each has a ``Settings`` dataclass that the config loader checks, and
an explicit lifecycle (unopened -> open -> closed) like httpx's ClientState: a
closed driver refuses to reopen.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from agent.clock import Clock, Uuid7, utc_iso
from agent.errors import DriverError
from agent.frozen import positional
from agent.model import Feedback, Read, ReadKind

_READ = positional(Read)


class ReadFactory:
    """Stamps raw data as a Read: id, wall and monotonic time, boot id."""

    def __init__(self, clock: Clock, ids: Uuid7) -> None:
        self.clock = clock
        self.ids = ids

    def make(
        self,
        device: str,
        data: bytes,
        kind: ReadKind = "barcode",
        symbology: str | None = None,
        **extra: Any,
    ) -> Read:
        return Read(
            id=self.ids.new(),
            device=device,
            kind=kind,
            data=data,
            observed_at=utc_iso(self.clock.wall()),
            mono_ns=self.clock.mono_ns(),
            boot_id=self.clock.boot_id,
            symbology=symbology,
            **extra,
        )

    def batch(self) -> Callable[..., Read]:
        """``make`` for reads that arrived together (the tags of one RFID report).

        The clock is read and formatted once, not per read (``utc_iso`` alone
        costs more than the Read itself), the ids count up from one clock reading
        (``Uuid7.batch``), and the Read is built by ``agent.frozen.positional``:
        a frozen dataclass's own ``__init__`` costs ~3 µs for Read's 15 fields.
        """
        clock, new_id, new_read = self.clock, self.ids.batch(), _READ
        observed_at, mono_ns, boot_id = utc_iso(clock.wall()), clock.mono_ns(), clock.boot_id

        def make(
            device: str,
            data: bytes,
            kind: ReadKind = "barcode",
            symbology: str | None = None,
            antenna: int | None = None,
            rssi: float | None = None,
            seen_count: int | None = None,
            fault: str | None = None,
            reader_first_seen_us: int | None = None,
            reader_last_seen_us: int | None = None,
            reader_offset_us: int | None = None,
        ) -> Read:
            return new_read(
                new_id(),
                device,
                kind,
                data,
                observed_at,
                mono_ns,
                boot_id,
                symbology,
                antenna,
                rssi,
                seen_count,
                fault,
                reader_first_seen_us,
                reader_last_seen_us,
                reader_offset_us,
            )

        return make


@dataclass(frozen=True)
class Found:
    """A device seen on this machine, for `edgetally devices` and for matching config to it."""

    driver: str  # the driver that can read it: "wedge", "serial", "hidpos", ...
    stable_id: str  # what a config should name it by: by-id path, VID:PID[:serial], host
    name: str  # what the device calls itself
    path: str | None = None  # the node it is opened through now (/dev/input/event3, ...)
    details: dict[str, str] = field(default_factory=dict)


class Driver(abc.ABC):
    Settings: ClassVar[type[Any]]
    State = Literal["unopened", "open", "closed"]

    def __init__(self, device_id: str, settings: Any, reads: ReadFactory) -> None:
        self.device_id = device_id
        self.settings = settings
        self.read_factory = reads
        self.state: Driver.State = "unopened"
        # For status and /healthz: whether the device is there now, and if not, why.
        # A hotplug driver opens with its device absent and keeps these current.
        self.present = False
        self.problem: str | None = None

    async def __aenter__(self) -> Driver:
        if self.state != "unopened":
            raise DriverError(f"device {self.device_id}: a {self.state} driver cannot be opened")
        await self.open()
        self.state = "open"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.state == "open":
            self.state = "closed"
            await self.close()

    @classmethod
    def discover(cls) -> list[Found]:
        """The devices of this kind on this machine; [] when there are none (or no bus)."""
        return []

    @classmethod
    def preflight(cls, settings: Any) -> None:
        """Check what can be checked without opening the device (a script file that
        must exist); raise DriverError naming it. `config check` and `run` call this."""
        return None

    @classmethod
    def matches(cls, settings: Any, found: Found) -> tuple[bool, str]:
        """Whether a device of config ``settings`` is ``found``, and why (shown to the user)."""
        return False, f"not a {found.driver} device"

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def reads(self) -> AsyncIterator[Read]:
        """Reads until the device is closed (or, for a script, until it ends)."""

    async def read_batches(self) -> AsyncIterator[list[Read]]:
        """``reads()`` in the groups they arrived in, for the daemon.

        One read per batch here; a driver whose device delivers many at once
        (an RFID report of a hundred tags) hands them over together, which
        saves the daemon a queue round trip per read.
        """
        async for read in self.reads():
            yield [read]

    # Whether the daemon may send this driver one feedback per kind for a group of
    # reads decided together, instead of one per read. Only for a driver whose
    # signal does not name the read (an LLRP reader's GPO pulse), never a scanner's
    # beep per scan.
    coalesce_feedback: ClassVar[bool] = False

    @abc.abstractmethod
    async def feedback(self, feedback: Feedback) -> None:
        """Tell the operator (beep, LED); a driver without the hardware may only log."""
