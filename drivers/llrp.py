"""LLRP RFID readers (Impinj, Zebra, ...) through sllurp's protocol state machine.

sllurp's ``LLRPReaderClient`` runs its own socket thread, has no watchdog for
missed keepalives and reconnects after a fixed 60 s. This driver keeps sllurp
for what it does well (``LLRPClient``: the configure / ROSpec state machine,
every message's encoding and decoding) and owns the connection itself, on the
daemon's loop: one task per reader, started by ``open()`` and awaited by
``close()``; no thread.

- Framing: LLRP frames carry their length in a 10-byte header; the task reads
  exactly one frame at a time (``llrp_link.frame_length``), so a corrupt length
  ends the connection instead of buffering without bound.
- Liveness: the reader is asked for a keepalive every ``keepalive_s``; after
  ``keepalive_misses`` intervals without any frame the link is declared dead.
- Reconnect: full-jitter exponential backoff (tenacity's
  ``wait_random_exponential``) from ``reconnect_initial_s`` up to
  ``reconnect_max_s``; the count starts again once the reader inventories.
- Errors: a reader that rejects a required step is reported with the LLRP
  status and its message ("reader rejected ADD_ROSPEC: M_ParameterError: ...");
  a refused optional step is logged once and skipped, a refused DELETE_ROSPEC 0
  falls back to deleting our own ROSpec, and an enabled ROSpec that never
  starts gets a START_ROSPEC (``llrp_setup``: which steps, and why). What a
  reader needed is kept in ``quirks``. A refused TCP connection says that an
  Impinj reader on firmware 8+ must be in LLRP mode.
- Reads: one ``Read`` (kind "tag") per tag and antenna in each report, its
  repeated entries folded into one counted read (``llrp_report``; or one per
  entry with ``fold_repeats = false``), through a bounded
  queue: when the daemon falls behind, the driver stops reading the socket
  (the reader buffers) instead of growing memory or dropping tags; each such
  stall is counted (``stalls``) and logged.
- Reader time: each Read carries the tag's first/last seen stamps (µs, reader
  clock) and the estimated reader-to-agent offset (``llrp_link.ClockOffset``);
  ``observed_at`` is the agent's clock at arrival. ``times`` shows the latest.
- Batches: the tags of one report reach the daemon together
  (``read_batches``), and feedback for them may be coalesced
  (``coalesce_feedback``): the GPO pulse names no read.
- Feedback: good/bad/alarm pulse a GPO each (``gpo_good``...), coalesced so a
  stream of tags gives one pulse, not a message per tag. A beam sensor on
  ``gpi_port`` comes out of ``gpi_events()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sllurp.llrp import LLRPMessage, LLRPReaderState
from sllurp.llrp_errors import ReaderConfigurationError
from tenacity import wait_random_exponential

from agent.batchqueue import BatchQueue
from agent.clock import utc_iso
from agent.errors import DriverError
from agent.logs import event
from agent.model import Feedback, Read
from drivers.base import Driver, ReadFactory
from drivers.llrp_link import (
    DECODE_ERRORS,
    HEADER_LEN,
    ClockOffset,
    LinkError,
    TagTimes,
    Watchdog,
    connect_problem,
    decode,
    frame_length,
    gpi_event,
    gpo_frame,
    newest_seen,
    refused_session,
    rejection,
    tag_reads,
)
from drivers.llrp_report import folded_tag_reads
from drivers.llrp_settings import LlrpSettings, reader_config
from drivers.llrp_setup import ROSPEC_ID, Answer, Client, Setup, rospec_started
from drivers.reopen import reopen_wait

log = logging.getLogger("edgetally.drivers.llrp")

READY_MAX = 4096  # reads waiting for the daemon; past this the socket is left unread
GPI_MAX = 256  # GPI events waiting; past this the oldest are dropped, counted and logged
TIMES_KEPT = 1024  # the latest tag reads, for ``times`` (status and tests)
CLOSE_TIMEOUT_S = 2.0  # for the polite stop at close; then the socket is closed anyway


@dataclass(frozen=True, slots=True)
class GpiEvent:
    """A GPI input changed (a beam sensor at a portal was broken or cleared)."""

    device: str
    port: int
    high: bool
    observed_at: str
    mono_ns: int


class LlrpReader(Driver):
    Settings = LlrpSettings
    coalesce_feedback = True

    def __init__(
        self,
        device_id: str,
        settings: LlrpSettings,
        reads: ReadFactory,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.monotonic,
        queue_max: int = READY_MAX,
    ) -> None:
        super().__init__(device_id, settings, reads)
        self.settings: LlrpSettings = settings
        for key, expected in settings.check():
            raise DriverError(f"device {device_id}: {key}: expected {expected}")
        self.where = f"{settings.host}:{settings.port}"
        self._sleep = sleep
        self._now = now
        self._wait = wait_random_exponential(
            multiplier=settings.reconnect_initial_s, max=settings.reconnect_max_s
        )
        self._queue: BatchQueue[Read] = BatchQueue(queue_max)  # a report's reads together
        self._gpi: asyncio.Queue[GpiEvent | None] = asyncio.Queue(GPI_MAX)
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._client: Client | None = None
        self._closing = False
        self._failures = 0
        self._setup = Setup(device_id, self.where, settings.start_trigger, settings.start_window_s)
        self._start_timer: asyncio.TimerHandle | None = None
        self._pulses: dict[int, asyncio.TimerHandle] = {}
        self.watchdog = Watchdog(settings.keepalive_s, settings.keepalive_misses, now())
        self.offset = ClockOffset()
        self._recent: deque[Read] = deque(maxlen=TIMES_KEPT)
        # For status and tests: what the link has been through.
        self.attempts = 0  # TCP connects tried
        self.sessions = 0  # times inventory started
        self.delays: deque[float] = deque(maxlen=256)  # reconnect waits chosen
        self.errors: deque[str] = deque(maxlen=64)  # why each connection ended
        self.stalls = 0  # times the read queue was full (the socket was left unread)
        self.gpi_dropped = 0
        self.discarded = 0  # reads that arrived after close began: nobody takes them
        self.reader_state = "disconnected"
        # What this reader needed that a plain one does not: step -> what was done.
        self.quirks = self._setup.quirks
        self.close_timeout_s = CLOSE_TIMEOUT_S
        self._crash: BaseException | None = None

    # -- lifecycle --

    async def open(self) -> None:
        """Start the connection task; an unreachable reader is not an error, it keeps trying."""
        self.problem = f"connecting to {self.where}"
        self._task = asyncio.create_task(self._run(), name=f"llrp:{self.device_id}")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A connection task that died of a bug ends reads() with the error, for the daemon."""
        if task.cancelled() or task.exception() is None:
            return
        self._crash = task.exception()
        self.present = False
        self.problem = f"the LLRP connection task failed: {self._crash!r}"
        event(
            log, "llrp_task_failed", level=logging.ERROR, device=self.device_id, error=self.problem
        )
        self._queue.close()

    async def close(self) -> None:
        """Stop the ROSpec and say goodbye if connected (briefly), then close the socket."""
        self._closing = True
        for handle in self._pulses.values():
            handle.cancel()
        self._pulses.clear()
        task, self._task = self._task, None
        if task is None:
            return
        if self._client is not None and self._writer is not None:
            with contextlib.suppress(LinkError):
                self._stop_politely()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), self.close_timeout_s)
        if not task.done():
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # close() itself was cancelled, not only the task
        except Exception:  # a bug in the task: already reported by _ended; close still ends
            pass
        self.present = False
        left = self._queue.qsize()
        if left or self.discarded:
            event(
                log,
                "llrp_reads_not_taken",
                level=logging.WARNING,
                device=self.device_id,
                queued=left,
                after_close=self.discarded,
            )
        self._queue.close()  # reads() gives what is left, then ends
        with contextlib.suppress(asyncio.QueueFull):
            self._gpi.put_nowait(None)  # and a gpi_events()

    async def reads(self) -> AsyncIterator[Read]:
        async for batch in self.read_batches():
            for read in batch:
                yield read

    async def read_batches(self) -> AsyncIterator[list[Read]]:
        """Whatever reads are waiting, together: at least one, at most the queue."""
        queue = self._queue
        while batch := await queue.get():
            yield batch
        if self._crash is not None:
            raise DriverError(f"device {self.device_id}: {self.problem}") from self._crash

    @property
    def times(self) -> list[TagTimes]:
        """The reader's own stamps of the latest tag reads, for status and tests."""
        return [
            TagTimes(r.id, r.reader_first_seen_us, r.reader_last_seen_us, r.reader_offset_us)
            for r in self._recent
            if r.reader_first_seen_us is not None or r.reader_last_seen_us is not None
        ]

    async def gpi_events(self) -> AsyncIterator[GpiEvent]:
        """GPI changes (beam sensor), until the driver closes."""
        while (ev := await self._gpi.get()) is not None:
            yield ev

    async def feedback(self, feedback: Feedback) -> None:
        s = self.settings
        port = {"good": s.gpo_good, "bad": s.gpo_bad, "alarm": s.gpo_alarm}[feedback.kind]
        if port is None:
            return
        if not self.present or self._writer is None:
            raise DriverError(
                f"device {self.device_id}: cannot signal {feedback.kind} on GPO {port}: "
                f"{self.problem or 'not connected'}"
            )
        handle = self._pulses.get(port)
        if handle is not None:
            handle.cancel()  # a pulse is on: make it longer, send nothing
        else:
            self._send_gpo(port, True)
        loop = asyncio.get_running_loop()
        self._pulses[port] = loop.call_later(s.gpo_pulse_ms / 1000, self._pulse_end, port)

    # -- the connection task --

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._session()
                reason = "the connection ended"
            except LinkError as exc:
                reason = str(exc)
            if self._closing:
                break
            self._failures += 1
            delay = reopen_wait(self._wait, self._failures)
            self.delays.append(delay)
            self.errors.append(reason)
            self.present = False
            self.problem = f"{reason}; reconnecting in {delay:.1f} s"
            event(
                log,
                "llrp_link_down",
                level=logging.WARNING,
                device=self.device_id,
                reader=self.where,
                error=reason,
                attempt=self._failures,
                retry_in_s=round(delay, 3),
            )
            await self._sleep(delay)

    async def _session(self) -> None:
        s = self.settings
        self.attempts += 1
        self.reader_state = "connecting"
        try:
            async with asyncio.timeout(s.connect_timeout_s):
                reader, writer = await asyncio.open_connection(s.host, s.port)
        except (OSError, TimeoutError) as exc:
            raise LinkError(connect_problem(s.host, s.port, exc, s.connect_timeout_s)) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._writer = writer
        self._setup.connected()
        self._client = Client(
            reader_config(s),
            transport_tx_write=self._write,
            state_change_callback=self._on_state,
            start_trigger=s.start_trigger,
        )
        self.watchdog.heard(self._now())
        if self.problem is None or self.problem.startswith("connecting"):
            self.problem = f"connected to {self.where}; configuring the reader"
        try:
            while True:
                frame = await self._frame(reader)
                await self._handle(frame)
        finally:
            self._client = None
            self._writer = None
            self.present = False
            self.reader_state = "disconnected"
            for handle in self._pulses.values():
                handle.cancel()
            self._pulses.clear()
            if self._start_timer is not None:
                self._start_timer.cancel()
                self._start_timer = None
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def _frame(self, reader: asyncio.StreamReader) -> bytes:
        header = await self._exactly(reader, HEADER_LEN)
        length = frame_length(header)
        if length == HEADER_LEN:
            return header
        return header + await self._exactly(reader, length - HEADER_LEN, HEADER_LEN)

    async def _exactly(self, reader: asyncio.StreamReader, n: int, have: int = 0) -> bytes:
        """``n`` more bytes of a frame of which ``have`` came already."""
        timeout = self.watchdog.remaining(self._now())
        try:
            if timeout <= 0:
                raise TimeoutError
            async with asyncio.timeout(timeout):
                data = await reader.readexactly(n)
        except TimeoutError as exc:
            raise LinkError(self.watchdog.why(self._now())) from exc
        except asyncio.IncompleteReadError as exc:
            # What came of an unfinished frame is dropped here, never decoded: no bad read.
            got = have + len(exc.partial)
            mid = f" ({got} bytes of an unfinished frame dropped)" if got else ""
            raise LinkError(f"the reader closed the connection{mid}") from exc
        except OSError as exc:
            raise LinkError(f"connection to {self.where} lost: {exc.strerror or exc}") from exc
        self.watchdog.heard(self._now())
        return data

    async def _handle(self, frame: bytes) -> None:
        msg = decode(frame)
        name: str = msg.msgname
        body: dict[str, Any] = msg.msgdict[name]
        client = self._client
        assert client is not None
        if name == "RO_ACCESS_REPORT":
            await self._report(body)
            return
        if name == "KEEPALIVE":
            client.send_KEEPALIVE_ACK()
            return
        msg_id = body.get("ID")
        setup = self._setup
        own = setup.own(msg_id) if name != "READER_EVENT_NOTIFICATION" else None
        if own is not None:  # the answer to a frame of ours, not sllurp's business
            self._act(setup.own_answer(own, name, body, self._closing))
            return
        if name == "CLOSE_CONNECTION_RESPONSE":
            raise LinkError("connection closed")
        if name == "READER_EVENT_NOTIFICATION":
            self._reader_event(body)
        else:
            why = rejection(name, body)
            if why is None:
                setup.sent.answer(msg_id)
            else:
                answer = setup.refused(name, msg_id, why, self._closing)
                if answer is not None:
                    self._act(answer)
                    return
        self._feed(msg)

    def _act(self, answer: Answer) -> None:
        if answer.send is not None:
            self._write(answer.send)
        if answer.feed is not None:
            self._feed(answer.feed)

    def _feed(self, msg: LLRPMessage) -> None:
        """sllurp's state machine takes a message; its errors become LinkErrors."""
        client = self._client
        assert client is not None
        name = msg.msgname
        try:
            client.handleMessage(msg)
        except ReaderConfigurationError as exc:
            raise LinkError(f"cannot configure the reader: {exc}") from exc
        except DECODE_ERRORS as exc:
            raise LinkError(
                f"the reader's {name} could not be used: {type(exc).__name__}: {exc}"
            ) from exc

    def _reader_event(self, body: dict[str, Any]) -> None:
        refused = refused_session(body)
        if refused is not None:
            raise LinkError(refused)
        if rospec_started(body) == ROSPEC_ID:
            self._setup.start.heard_start()
        data = body.get("ReaderEventNotificationData")
        if isinstance(data, dict) and "ConnectionCloseEvent" in data and not self._closing:
            raise LinkError("the reader closed the session (ConnectionCloseEvent)")
        gpi = gpi_event(body)
        if gpi is not None:
            port, high = gpi
            clock = self.read_factory.clock
            ev = GpiEvent(self.device_id, port, high, utc_iso(clock.wall()), clock.mono_ns())
            event(log, "llrp_gpi", device=self.device_id, port=port, high=high)
            if self._gpi.full():
                self._gpi.get_nowait()
                self.gpi_dropped += 1
                if self.gpi_dropped % GPI_MAX == 1:  # the first, then one line per queue-full
                    event(
                        log,
                        "llrp_gpi_dropped",
                        level=logging.WARNING,
                        device=self.device_id,
                        dropped=self.gpi_dropped,
                    )
            self._gpi.put_nowait(ev)

    async def _report(self, body: dict[str, Any]) -> None:
        self._setup.start.heard_start()
        tags = body.get("TagReportData") or []
        if not isinstance(tags, list):
            tags = [tags]
        factory = self.read_factory
        newest = newest_seen(tags)
        if newest is not None:
            self.offset.observe(int(factory.clock.wall() * 1e6), newest)
        if self.settings.fold_repeats:
            reads = folded_tag_reads(self.device_id, tags, factory.batch(), self.offset.offset_us)
        else:
            reads, _ = tag_reads(self.device_id, tags, factory.batch(), self.offset.offset_us)
        self._recent.extend(reads)
        if self._closing:
            self.discarded += len(reads)
            return
        queue = self._queue
        if not queue.full():
            queue.put_nowait(reads)
            return
        self.stalls += 1
        event(
            log,
            "llrp_backpressure",
            level=logging.WARNING,
            device=self.device_id,
            queued=queue.qsize(),
            stalls=self.stalls,
        )
        if not await queue.put(reads):
            self.discarded += len(reads)  # closed while waiting: nobody takes them
        self.watchdog.heard(self._now())  # we were busy; the reader was not silent

    # -- writing --

    def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise LinkError(f"not connected to {self.where}")
        self._setup.sent.note(data)
        writer.write(data)

    def _on_state(self, state: int) -> None:
        self.reader_state = LLRPReaderState.getStateName(state).removeprefix("STATE_").lower()
        if state == LLRPReaderState.STATE_INVENTORYING and not self._closing:
            self._failures = 0
            self.sessions += 1
            self.present = True
            self.problem = None
            event(
                log,
                "llrp_inventorying",
                device=self.device_id,
                reader=self.where,
                antennas=list(self.settings.antennas),
                session=self.sessions,
            )
            for port in (self.settings.gpo_good, self.settings.gpo_bad, self.settings.gpo_alarm):
                if port is not None:
                    self._send_gpo(port, False)  # a pulse cut short by a lost link ends here
            setup = self._setup
            if setup.start.enabled(self._now()):
                self._write(setup.own_frame("start", "START_ROSPEC"))
            else:
                loop = asyncio.get_running_loop()
                self._start_timer = loop.call_later(setup.start.window_s, self._start_check)

    def _start_check(self) -> None:
        self._start_timer = None
        if self._closing or self._writer is None:
            return
        frame = self._setup.start_needed(self._now())
        if frame is not None:
            with contextlib.suppress(LinkError):
                self._write(frame)

    def _stop_politely(self) -> None:
        client = self._client
        assert client is not None
        if client.state == LLRPReaderState.STATE_INVENTORYING:
            client.stopPolitely(onCompletion=lambda *_: self._say_goodbye(), disconnect=True)
        else:
            self._say_goodbye()

    def _say_goodbye(self) -> None:
        if self._client is not None:
            self._client.sendMessage({"CLOSE_CONNECTION": {}})

    def _send_gpo(self, port: int, high: bool) -> None:
        self._write(gpo_frame(self._setup.own_id("gpo"), port, high))

    def _pulse_end(self, port: int) -> None:
        self._pulses.pop(port, None)
        if self._writer is not None:
            with contextlib.suppress(LinkError):
                self._send_gpo(port, False)
