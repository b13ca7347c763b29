"""One client connection: the reader state machine, keepalives, reports and faults."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drivers import llrp_frames as f
from drivers.llrp_emulator.beam import Beam, gpi_event
from drivers.llrp_emulator.flood import write_flood
from drivers.llrp_emulator.scenario import Malformed
from drivers.llrp_emulator.tagmodel import timeline

if TYPE_CHECKING:
    from drivers.llrp_emulator.server import LlrpEmulator

MAX_TAGS_PER_REPORT = 500  # keeps a frame near 20 KiB when the client sets no N
MAX_CATCH_UP = 200  # reports owed after a stall, sent one per interval; past that, one
READER_MAC = bytes.fromhex("0016250000ee")
# The partial-frame-at-close quirk: the first 2 bytes of an RO_ACCESS_REPORT header.
PARTIAL_FRAME = f.HEADER.pack((1 << 10) | f.RO_ACCESS_REPORT, 10, 0)[:2]


def tid_of(epc: bytes) -> bytes:
    """The tid-epcs quirk: a 96-bit TID-like id (class E2, mask designer 801, model 160)
    that stands for one EPC, the same every time."""
    return bytes.fromhex("e2801160") + hashlib.blake2b(epc, digest_size=8).digest()


@dataclass
class ConnectionRecord:
    """What happened on one client connection (for tests and the CLI)."""

    peer: str
    accepted: bool
    closed: str = ""
    messages: list[str] = field(default_factory=list)
    keepalives_sent: int = 0
    keepalive_acks: int = 0
    reports_sent: int = 0
    tags_reported: int = 0
    errors_sent: int = 0


@dataclass
class RoSpecRun:
    spec: f.ROSpec
    state: int = f.ROSPEC_DISABLED
    since_wall: float = 0.0
    last_s: float = 0.0
    next_report_wall: float = 0.0


class Session:
    """One client connection: the reader state machine, keepalives, reports and faults."""

    def __init__(
        self,
        emu: LlrpEmulator,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: ConnectionRecord,
    ) -> None:
        self.emu = emu
        self.scenario = emu.scenario
        self.reader = reader
        self.writer = writer
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.connected_wall = self.loop.time()
        self.next_id = 1
        self.keepalive = f.KeepaliveSpec()
        self.events: dict[int, bool] = {}
        self.default_report = f.ROReportSpec()
        self.rospecs: dict[int, RoSpecRun] = {}
        self.clock_start: float | None = None  # wall (loop) time of scenario t = 0
        self.epoch_us = 0
        self.hung = False
        self.closing = asyncio.Event()
        self.beam = Beam(self.scenario) if self.scenario.beam_gpi is not None else None
        self.beam_seen_s = 0.0
        self.quirks = self.scenario.quirks
        self.partial_sent = False

    # time
    def fault_s(self) -> float:
        return (self.loop.time() - self.connected_wall) * self.scenario.speed

    def scene_s(self, wall: float | None = None) -> float:
        if self.clock_start is None:
            return 0.0
        return (
            (self.loop.time() if wall is None else wall) - self.clock_start
        ) * self.scenario.speed

    def utc_us(self, scene_s: float) -> int:
        return self.epoch_us + round(scene_s / self.scenario.speed * 1e6)

    # output
    def send(self, msg: f.Message) -> None:
        if self.writer.is_closing() or self.hung:
            return
        self.writer.write(msg.encode())

    def reader_id(self) -> int:
        self.next_id = self.next_id % 0xFFFFFFFF + 1
        return self.next_id

    def event(self, *events: f.Parameter) -> f.ReaderEventNotification:
        stamp = f.UTCTimestamp(time.time_ns() // 1000)
        return f.ReaderEventNotification(
            self.reader_id(), f.ReaderEventNotificationData(stamp, events)
        )

    async def run(self) -> None:
        self.send(self.event(f.ConnectionAttemptEvent(f.CONNECTION_SUCCESS)))
        tasks = [
            asyncio.create_task(self._keepalives()),
            asyncio.create_task(self._reports()),
            asyncio.create_task(self._faults()),
        ]
        try:
            await self._read_loop()
        finally:
            self.closing.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._partial_frame()
            await self.shut(self.emu.close_grace_s)

    async def _read_loop(self) -> None:
        buffer = b""
        while not self.closing.is_set():
            try:
                chunk = await self.reader.read(65536)
            except OSError as exc:
                self.record.closed = f"read error: {exc}"
                return
            if not chunk:
                self.record.closed = self.record.closed or "client closed"
                return
            if self.hung:
                continue
            buffer += chunk
            try:
                frames, buffer = f.split_frames(buffer)
            except f.FrameError as exc:
                # A header that cannot be right: answer once, then give up on the stream.
                self._error(exc)
                self.record.closed = f"unframeable input: {exc}"
                return
            for frame in frames:
                self._handle_frame(frame)
                if self.closing.is_set():
                    return

    def _error(self, exc: f.FrameError) -> None:
        kind = exc.msg_type
        reply = f.RESPONSE_TO.get(kind, f.ERROR_MESSAGE) if kind is not None else f.ERROR_MESSAGE
        if exc.status == f.M_UNSUPPORTED_MESSAGE or exc.status == f.M_UNSUPPORTED_VERSION:
            reply = f.ERROR_MESSAGE
        self.record.errors_sent += 1
        self.send(f.StatusResponse(reply, exc.msg_id or 0, f.status(exc.status, str(exc))))

    def _handle_frame(self, frame: bytes) -> None:
        try:
            msg = f.decode_message(frame)
        except f.FrameError as exc:
            name = f.MESSAGE_NAMES.get(exc.msg_type or -1, f"type {exc.msg_type}")
            self._note(name)
            self._error(exc)
            return
        self._note(
            msg.name
            if not isinstance(msg, f.CustomMessage)
            else f"CUSTOM_MESSAGE({msg.vendor}/{msg.subtype})"
        )
        reply = self._dispatch(msg)
        if reply is not None:
            if isinstance(reply, f.StatusResponse) and not reply.status.ok:
                self.record.errors_sent += 1
            self.send(reply)

    def _note(self, name: str) -> None:
        self.record.messages.append(name)
        self.emu.messages_received.append(name)
        self.emu.message_counts[name] += 1

    def _dispatch(self, msg: f.Message) -> f.Message | None:
        mid = msg.msg_id
        if msg.name in self.scenario.faults.unsupported or (
            msg.kind == f.ENABLE_EVENTS_AND_REPORTS and "events-unsupported" in self.quirks
        ):
            text = f"{msg.name} is not supported"
            return f.StatusResponse(f.ERROR_MESSAGE, mid, f.status(f.M_UNSUPPORTED_MESSAGE, text))
        if isinstance(msg, f.GetReaderCapabilities):
            return self._capabilities(msg)
        if isinstance(msg, f.GetReaderConfig):
            return self._get_config(msg)
        if isinstance(msg, f.SetReaderConfig):
            return f.StatusResponse(f.SET_READER_CONFIG_RESPONSE, mid, self._set_config(msg))
        if isinstance(msg, f.AddROSpec):
            return f.StatusResponse(f.ADD_ROSPEC_RESPONSE, mid, self._add_rospec(msg.rospec))
        if isinstance(msg, f.SpecCommand):
            return f.StatusResponse(f.RESPONSE_TO[msg.kind], mid, self._spec_command(msg))
        if isinstance(msg, f.CustomMessage):
            if msg.vendor == f.VENDOR_IMPINJ and msg.subtype == f.IMPINJ_ENABLE_EXTENSIONS:
                payload = f.LLRPStatus().encode()
                return f.CustomMessage(
                    mid, f.VENDOR_IMPINJ, f.IMPINJ_ENABLE_EXTENSIONS_RESPONSE, payload
                )
            text = f"custom message vendor {msg.vendor} subtype {msg.subtype} is not supported"
            return f.StatusResponse(f.ERROR_MESSAGE, mid, f.status(f.M_UNSUPPORTED_MESSAGE, text))
        if isinstance(msg, f.Bare):
            if msg.kind == f.KEEPALIVE_ACK:
                self.record.keepalive_acks += 1
                return None
            if msg.kind == f.ENABLE_EVENTS_AND_REPORTS:
                return None  # no response by design (spec 16.1.34)
            if msg.kind == f.CLOSE_CONNECTION:
                self.send(f.StatusResponse(f.CLOSE_CONNECTION_RESPONSE, mid, f.LLRPStatus()))
                self.record.closed = "CLOSE_CONNECTION"
                self.closing.set()
                return None
            if msg.kind == f.GET_REPORT:
                for run in self.rospecs.values():
                    if run.state == f.ROSPEC_ACTIVE:
                        self._report(run, self.loop.time())
                return None
        text = f"{msg.name} is not a message this reader accepts"
        return f.StatusResponse(f.ERROR_MESSAGE, mid, f.status(f.M_UNSUPPORTED_MESSAGE, text))

    # capabilities and configuration

    def _capabilities(self, msg: f.GetReaderCapabilities) -> f.Message:
        if msg.requested > 4:
            st = f.status(f.M_FIELD_ERROR, f"RequestedData {msg.requested} is not 0..4", 0)
            return f.GetReaderCapabilitiesResponse(msg.msg_id, st)
        want = {msg.requested} if msg.requested else {1, 2, 3, 4}
        n = self.scenario.max_antenna
        general = f.GeneralDeviceCapabilities(
            max_antennas=n,
            firmware="edgetally-llrp-emulator 1.0",
            air_protocols=tuple(f.PerAntennaAirProtocol(i) for i in range(1, n + 1)),
        )
        powers = tuple(
            f.TransmitPowerLevelTableEntry(i + 1, 1000 + 25 * i) for i in range(81)
        )  # 10..30 dBm
        hops = tuple(902_750 + 500 * i for i in range(50))
        modes = (
            f.UHFC1G2RFModeTableEntry(0, 1, False, 0, 2, 2, 640_000, 1500, 6250, 6250, 0),
            f.UHFC1G2RFModeTableEntry(1, 1, False, 1, 2, 2, 640_000, 1500, 6250, 6250, 0),
            f.UHFC1G2RFModeTableEntry(2, 1, False, 2, 2, 3, 274_000, 2000, 20_000, 20_000, 0),
            f.UHFC1G2RFModeTableEntry(3, 1, False, 3, 2, 3, 170_600, 2000, 20_000, 20_000, 0),
        )
        band = f.UHFBandCapabilities(
            powers,
            f.FrequencyInformation(True, (f.FrequencyHopTable(1, hops),)),
            f.UHFC1G2RFModeTable(modes),
        )
        return f.GetReaderCapabilitiesResponse(
            msg.msg_id,
            f.LLRPStatus(),
            general if 1 in want else None,
            f.LLRPCapabilities(
                supports_event_and_report_holding="events-unsupported" in self.quirks,
                max_rospecs=8,
                max_specs_per_rospec=4,
            )
            if 2 in want
            else None,
            f.RegulatoryCapabilities(840, 1, band) if 3 in want else None,
            f.C1G2LLRPCapabilities() if 4 in want else None,
        )

    def _get_config(self, msg: f.GetReaderConfig) -> f.Message:
        ids = [a.id for a in self.scenario.antennas]
        if msg.requested > 11:
            st = f.status(f.M_FIELD_ERROR, f"RequestedData {msg.requested} is not 0..11", 1)
            return f.GetReaderConfigResponse(msg.msg_id, st)
        if msg.antenna_id and msg.antenna_id not in ids:
            st = f.status(f.M_FIELD_ERROR, f"no antenna {msg.antenna_id}", 0)
            return f.GetReaderConfigResponse(msg.msg_id, st)
        r = msg.requested
        antennas = tuple(f.AntennaProperties(i) for i in ids if msg.antenna_id in (0, i))
        events = f.ReaderEventNotificationSpec(
            tuple(f.EventNotificationState(e, self.events.get(e, False)) for e in range(9))
        )
        return f.GetReaderConfigResponse(
            msg.msg_id,
            f.LLRPStatus(),
            f.Identification(0, READER_MAC) if r in (0, 1) else None,
            antennas if r in (0, 2) else (),
            events if r in (0, 5) else None,
            self.default_report if r in (0, 4) else None,
            f.AccessReportSpec() if r in (0, 6) else None,
            self.keepalive if r in (0, 8) else None,
            f.EventsAndReports() if r in (0, 11) else None,
        )

    def _set_config(self, msg: f.SetReaderConfig) -> f.LLRPStatus:
        if msg.keepalive is not None:
            if msg.keepalive.trigger not in (0, 1):
                return f.status(
                    f.M_PARAMETER_ERROR, f"KeepaliveTriggerType {msg.keepalive.trigger}"
                )
            if msg.keepalive.trigger == 1 and msg.keepalive.interval_ms == 0:
                return f.status(f.M_PARAMETER_ERROR, "periodic KeepaliveSpec with a 0 ms interval")
        if msg.reset:
            self.keepalive, self.events, self.default_report = (
                f.KeepaliveSpec(),
                {},
                f.ROReportSpec(),
            )
        if msg.keepalive is not None:
            self.keepalive = msg.keepalive
        if msg.event_spec is not None:
            self.events.update({s.event_type: s.enabled for s in msg.event_spec.states})
        if msg.report_spec is not None:
            self.default_report = msg.report_spec
        return f.LLRPStatus()

    # ROSpecs

    def _add_rospec(self, spec: f.ROSpec) -> f.LLRPStatus:
        ids = {a.id for a in self.scenario.antennas}
        if spec.rospec_id == 0:
            return f.status(f.M_FIELD_ERROR, "ROSpecID 0 is reserved", 0)
        if spec.rospec_id in self.rospecs:
            return f.status(f.M_FIELD_ERROR, f"ROSpec {spec.rospec_id} exists", 0)
        if spec.state != f.ROSPEC_DISABLED:
            return f.status(f.M_FIELD_ERROR, "a new ROSpec must be Disabled", 2)
        if len(self.rospecs) >= 8:
            return f.status(f.M_FIELD_ERROR, "at most 8 ROSpecs", 0, f.A_OUT_OF_RANGE)
        if not spec.specs:
            return f.status(
                f.M_MISSING_PARAMETER, "ROSpec has no AISpec (RFSurvey is not supported)"
            )
        for ai in spec.specs:
            bad = [i for i in ai.antenna_ids if i and i not in ids]
            if bad or not ai.antenna_ids:
                return f.status(
                    f.M_PARAMETER_ERROR,
                    f"AISpec antennas {list(ai.antenna_ids)}: reader has {sorted(ids)}",
                )
        if spec.boundary.start.trigger not in (0, 1):
            return f.status(
                f.M_PARAMETER_ERROR, "only Null and Immediate ROSpec start triggers are supported"
            )
        self.rospecs[spec.rospec_id] = RoSpecRun(spec)
        return f.LLRPStatus()

    def _spec_command(self, msg: f.SpecCommand) -> f.LLRPStatus:
        kind, sid = msg.kind, msg.spec_id
        if kind in (f.DELETE_ACCESSSPEC, f.ENABLE_ACCESSSPEC, f.DISABLE_ACCESSSPEC):
            if kind == f.DELETE_ACCESSSPEC and sid == 0:
                return f.LLRPStatus()  # there are none to delete
            return f.status(
                f.M_FIELD_ERROR, f"no AccessSpec {sid} (AccessSpecs are not supported)", 0
            )
        if sid == 0 and kind == f.DELETE_ROSPEC and "delete-all-refused" in self.quirks:
            return f.status(f.M_PARAMETER_ERROR, "no ROSpec 0", 0)
        if sid == 0 and kind in (f.START_ROSPEC, f.STOP_ROSPEC):
            return f.status(f.M_FIELD_ERROR, "ROSpecID 0 is not allowed here", 0)
        if sid and sid not in self.rospecs:
            return f.status(f.M_FIELD_ERROR, f"no ROSpec {sid}", 0)
        runs = list(self.rospecs.values()) if sid == 0 else [self.rospecs[sid]]
        now = self.loop.time()
        if kind == f.START_ROSPEC and runs[0].state == f.ROSPEC_DISABLED:
            return f.status(f.M_FIELD_ERROR, f"ROSpec {sid} is disabled", 0)
        for run in runs:
            if kind == f.ENABLE_ROSPEC and run.state == f.ROSPEC_DISABLED:
                run.state = f.ROSPEC_INACTIVE
                immediate = run.spec.boundary.start.trigger == 1
                if immediate and "immediate-never-starts" not in self.quirks:
                    self._start(run, now)
            elif kind == f.START_ROSPEC and run.state == f.ROSPEC_INACTIVE:
                self._start(run, now)
            elif kind == f.STOP_ROSPEC and run.state == f.ROSPEC_ACTIVE:
                self._stop(run, now, f.ROSPEC_INACTIVE)
            elif kind in (f.DISABLE_ROSPEC, f.DELETE_ROSPEC):
                self._stop(run, now, f.ROSPEC_DISABLED)
        if kind == f.DELETE_ROSPEC:
            for run in runs:
                del self.rospecs[run.spec.rospec_id]
        return f.LLRPStatus()

    def _start(self, run: RoSpecRun, now: float) -> None:
        if self.clock_start is None:
            self.clock_start = now
            self.epoch_us = time.time_ns() // 1000
        run.state, run.since_wall, run.last_s = f.ROSPEC_ACTIVE, now, self.scene_s(now)
        run.next_report_wall = now + self._interval(run)
        if self.events.get(2):
            self.send(self.event(f.ROSpecEvent(0, run.spec.rospec_id)))

    def _stop(self, run: RoSpecRun, now: float, state: int) -> None:
        if run.state == f.ROSPEC_ACTIVE:
            self._report(run, now)
            if self.events.get(2):
                self.send(self.event(f.ROSpecEvent(1, run.spec.rospec_id)))
        run.state = state

    def _interval(self, run: RoSpecRun) -> float:
        """Wall seconds between reports: the AISpec's boundary, else the scenario's interval."""
        stop = run.spec.specs[0].stop
        if stop.trigger == 1 and stop.duration_ms:
            return stop.duration_ms / 1000
        if stop.trigger == 3 and stop.tag_observation and stop.tag_observation.timeout_ms:
            return stop.tag_observation.timeout_ms / 1000
        return self.scenario.report_interval_s

    def _chunk(self, run: RoSpecRun) -> int:
        n = (run.spec.report or self.default_report).n
        stop = run.spec.specs[0].stop
        if stop.trigger == 3 and stop.tag_observation and stop.tag_observation.number_of_tags:
            n = min(n or MAX_TAGS_PER_REPORT, stop.tag_observation.number_of_tags)
        return min(n or MAX_TAGS_PER_REPORT, MAX_TAGS_PER_REPORT)

    def _report(self, run: RoSpecRun, now: float) -> None:
        s0, s1 = run.last_s, self.scene_s(now)
        run.last_s = s1
        if self.scenario.flood is not None or s1 <= s0:
            return
        wanted: set[int] = set()
        for ai in run.spec.specs:
            wanted.update(ai.antenna_ids)
        antennas = None if 0 in wanted else frozenset(wanted)
        sel = (run.spec.report or self.default_report).selector
        rid = run.spec.rospec_id
        tid = "tid-epcs" in self.quirks
        tags = [
            f.TagReportData(
                tid_of(o.epc) if tid else o.epc,
                epc96=len(o.epc) == 12,
                rospec_id=rid if sel.rospec_id else None,
                spec_index=1 if sel.spec_index else None,
                inventory_parameter_spec_id=1 if sel.inventory_parameter_spec_id else None,
                antenna_id=o.antenna if sel.antenna_id else None,
                peak_rssi=o.rssi if sel.peak_rssi else None,
                channel_index=1 if sel.channel_index else None,
                first_seen=self.utc_us(o.first_seen_s) if sel.first_seen else None,
                last_seen=self.utc_us(o.last_seen_s) if sel.last_seen else None,
                tag_seen_count=min(o.count, 0xFFFF) if sel.tag_seen_count else None,
                access_spec_id=0 if sel.access_spec_id else None,
            )
            for o in timeline(self.scenario, s0, s1, antennas)
        ]
        size = self._chunk(run)
        for i in range(0, len(tags), size):
            self.send(f.ROAccessReport(self.reader_id(), tuple(tags[i : i + size])))
            self.record.reports_sent += 1
            self.record.tags_reported += len(tags[i : i + size])

    # background loops

    async def _reports(self) -> None:
        while not self.closing.is_set():
            now = self.loop.time()
            flooding = self.scenario.flood is not None
            for run in list(self.rospecs.values()):
                if run.state != f.ROSPEC_ACTIVE or self.hung:
                    continue
                boundary = run.spec.boundary.stop
                if boundary.trigger == 1 and now - run.since_wall >= boundary.duration_ms / 1000:
                    self._stop(run, now, f.ROSPEC_INACTIVE)
                elif flooding:
                    await write_flood(self, run)
                elif now >= run.next_report_wall:
                    self._reports_due(run, now)
            if self.beam is not None and self.clock_start is not None:
                self._beam(now)
            await asyncio.sleep(0.005)

    def _reports_due(self, run: RoSpecRun, now: float) -> None:
        """The reports due by ``now``, each over its own interval of the scenario.

        A reader has a CPU of its own: when this task runs late (the emulator shares
        a loaded host, or the agent's loop, with the agent) it still sends what the
        reader would have sent, one report per interval, and not one report over the
        whole stall, whose aggregated entries (first/last seen, count) would blur the
        order of a pass and make the agent's verdicts depend on the host's load.
        """
        interval = self._interval(run)
        due = run.next_report_wall
        for _ in range(MAX_CATCH_UP):
            self._report(run, due)
            if self.beam is not None and self.clock_start is not None:
                self._beam(due)  # the beam's changes in time order with the tags' reports
            due += interval
            if due > now:
                break
        else:
            self._report(run, now)  # a stall longer than that: the rest in one report
            due = now + interval
        run.next_report_wall = due

    def _beam(self, now: float) -> None:
        """A GPIEvent when the beam changes, if the client asked for GPI events (type 1)."""
        assert self.beam is not None and self.beam.port is not None
        s1 = self.scene_s(now)
        changes, self.beam_seen_s = self.beam.changes(self.beam_seen_s, s1), s1
        if self.events.get(1):
            for high in changes:
                self.send(self.event(gpi_event(self.beam.port, high)))

    async def _keepalives(self) -> None:
        stop_at = self.scenario.faults.stop_keepalives_at_s
        while not self.closing.is_set():
            spec = self.keepalive
            if spec.trigger != 1 or spec.interval_ms == 0:
                await asyncio.sleep(0.01)
                continue
            await asyncio.sleep(spec.interval_ms / 1000)
            if self.keepalive is not spec or self.hung:
                continue
            if stop_at is not None and self.fault_s() >= stop_at:
                continue
            self.send(f.Bare(f.KEEPALIVE, self.reader_id()))
            self.record.keepalives_sent += 1

    async def _faults(self) -> None:
        faults = self.scenario.faults
        plan = sorted(
            (at, what)
            for at, what in (
                (faults.hang_at_s, "hang"),
                (faults.malformed_frame_at_s, "malformed"),
                (faults.drop_connection_at_s, "drop"),
            )
            if at is not None
        )
        for at, what in plan:
            delay = (at - self.fault_s()) / self.scenario.speed
            if delay > 0:
                await asyncio.sleep(delay)
            if what == "hang":
                self.hung = True
            elif what == "malformed":
                self.send_raw(_malformed(faults.malformed, self.reader_id()))
            else:
                self.record.closed = "dropped (fault)"
                if "partial-frame-at-close" in self.quirks:
                    self._partial_frame()
                    self.writer.close()  # after the partial frame: FIN, not RST
                else:
                    self.writer.transport.abort()
                self.closing.set()
                return

    def _partial_frame(self) -> None:
        """partial-frame-at-close: the start of a frame the reader never finishes."""
        if "partial-frame-at-close" in self.quirks and not self.partial_sent:
            self.partial_sent = True
            self.send_raw(PARTIAL_FRAME)

    def send_raw(self, data: bytes) -> None:
        if not self.writer.is_closing() and not self.hung:
            self.writer.write(data)

    async def close(self) -> None:
        """The reader closes the connection: it says so with a ConnectionCloseEvent first."""
        if not self.writer.is_closing():
            self.send(self.event(f.ConnectionCloseEvent()))
            self._partial_frame()
        self.record.closed = self.record.closed or "reader closed"
        self.closing.set()
        await self.shut(self.emu.close_grace_s)

    async def shut(self, grace_s: float) -> None:
        """Close the socket: FIN once what is buffered has gone, or RST after ``grace_s``.

        A client that stopped reading (frozen, killed mid-stream, wedged) takes nothing, so
        neither a drain nor a close that waits for the buffer to flush would ever end, and
        the emulator could not stop. A reader drops such a client; this does the same. (A
        timer, not a timeout around ``wait_closed``: cancelling that wait would cancel the
        stream's one close future, and every later wait for it.)
        """
        self.writer.close()
        timer = self.loop.call_later(grace_s, self._reset, grace_s)
        try:
            with contextlib.suppress(OSError):  # the client reset it first: closed too
                await self.writer.wait_closed()
        except asyncio.CancelledError:
            self.writer.transport.abort()  # a no-op once the connection is gone
            raise
        finally:
            timer.cancel()

    def _reset(self, grace_s: float) -> None:
        unsent = self.writer.transport.get_write_buffer_size()
        self.writer.transport.abort()
        self.record.closed = (
            f"{self.record.closed or 'closed'}; reset: {unsent} bytes still unsent "
            f"after {grace_s:g} s (the client stopped reading)"
        )


def _malformed(kind: Malformed, msg_id: int) -> bytes:
    """A deliberately bad frame; each kind trips a different path in a client's decoder."""
    if kind == "unknown_type":
        return f.HEADER.pack((1 << 10) | 999, 10, msg_id)
    if kind == "short_length":
        return f.HEADER.pack((1 << 10) | f.RO_ACCESS_REPORT, 4, msg_id)
    if kind == "bad_parameter":  # a TV type no spec defines inside a TagReportData
        body = b"\x8d" + bytes(12) + b"\xff\x00"
        trd = f.Tlv(240, body).encode()
        return f.HEADER.pack((1 << 10) | f.RO_ACCESS_REPORT, 10 + len(trd), msg_id) + trd
    # truncated_parameter: a TagReportData whose length runs past the end of the message
    trd = _tlv_header(240, 200) + b"\x8d" + bytes(12)
    return f.HEADER.pack((1 << 10) | f.RO_ACCESS_REPORT, 10 + len(trd), msg_id) + trd


def _tlv_header(ptype: int, length: int) -> bytes:
    return ptype.to_bytes(2, "big") + length.to_bytes(2, "big")
