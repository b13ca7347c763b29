"""The daemon: one asyncio loop owning drivers, rules, outbox and sync.

Tasks and their owner, like a nursery: every task is started here, kept, and
stopped here in order on SIGTERM/SIGINT: drivers first (no new reads), then
the rules task drains what was read, then the outbox flushes, then sync stops,
then the outbox closes. An unexpected error in any task stops the rest in the
same order and is re-raised, so systemd sees the failure and restarts us. A
cancel from outside (``asyncio.wait_for``, a supervisor) gets the same stop, run
to its end, at any point of the start as of the run: nothing outlives ``run()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.alarms import Alarm, Alarms
from agent.batchqueue import BatchQueue
from agent.clock import Clock, Uuid7, utc_iso
from agent.config import Config, read_secrets
from agent.dock import RecentScans, scan_of
from agent.errors import DriverError, OutboxError
from agent.flow import FlowLog, Totals
from agent.frozen import positional
from agent.health import HealthServer
from agent.logs import event
from agent.memory import kept_out_of_full_collections, release_freed_heap
from agent.metrics import Metrics
from agent.model import Feedback, FeedbackKind, Read
from agent.notify import Notifier
from agent.observe import Observer
from agent.outbox import Commit, Outbox, Stored, recent_tag_reads
from agent.replay import Recorder
from agent.rules import Context, Rules, Ruling, Tick, identify_for
from agent.sync import RetryPolicy, Syncer
from agent.sync.registry import Sink, SinkContext, make_sink
from agent.tasks import finished, to_the_end
from agent.tickgate import TickGate
from drivers import DRIVERS, Driver, ReadFactory

log = logging.getLogger("edgetally.daemon")
_COMMIT = positional(Commit)  # one per read: a frozen dataclass's __init__ is slow
READ_QUEUE_MAX = 10_000
DRAIN_S = 2.0  # at SIGTERM, how long closed drivers may still hand over what they hold
TICK_S = 0.1  # how often RFID stations decide what time decides (a pass gone quiet)
TICK_WAITS_MAX = 10  # ticks in a row that may wait for reads still queued (1 s)


@dataclass
class Counters:
    reads: Counter[str]  # reads stored (rows), by result
    stored: int = 0  # movements stored, for the flow log
    # The tag reads (singulations) those rows stand for: an RFID read that folds
    # repeats counts its seen_count. Stored reads only, as ``reads``.
    tag_reads: int = 0


@dataclass
class _Run:
    """What one run has started, each part kept the moment it exists, so that the stop
    ends exactly what is there, however far the start got."""

    drivers: contextlib.AsyncExitStack
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    rules: asyncio.Task[None] | None = None
    ticks: list[asyncio.Task[None]] = field(default_factory=list)
    sync: list[asyncio.Task[None]] = field(default_factory=list)
    side: list[asyncio.Task[None]] = field(default_factory=list)
    stop_wait: asyncio.Task[Any] | None = None
    sinks: list[Sink] = field(default_factory=list)
    recorder: Recorder | None = None
    health: HealthServer | None = None


class Daemon:
    def __init__(
        self,
        config: Config,
        token: str,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.ids = Uuid7(self.clock.wall)
        self._token = token
        self._transport = transport
        self._sleep = sleep
        self.alarms = Alarms(self._on_alarm, wall=self.clock.wall)
        self.notifier = notifier if notifier is not None else Notifier()
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self.counters = Counters(reads=Counter())
        self.metrics = Metrics()
        self.started_at = self.clock.wall()
        self.observer = Observer(self)
        self.device_errors: dict[str, str] = {}
        self.last_read_at: dict[str, float] = {}
        self.outbox: Outbox | None = None
        self.syncer: Syncer | None = None  # the first sink's (its alarms and metrics are unnamed)
        self.syncers: dict[str, Syncer] = {}  # every sink's, by name, in config order
        self.drivers: list[Driver] = []
        self._reads: BatchQueue[tuple[Driver, Read]] = BatchQueue(READ_QUEUE_MAX)
        self._alarm_queue: asyncio.Queue[tuple[Alarm, bool]] = asyncio.Queue()
        self._pumps: list[asyncio.Task[None]] = []
        self._busy = 0  # groups taken off the queue and not yet stored
        self.rules: Rules | None = None  # for /status: open sessions and pairings
        self.scans = RecentScans()  # for the dock page: the last scans per station

    def stop(self) -> None:
        self.stopping.set()

    async def wait_settled(self, poll_s: float = 0.1) -> None:
        """Wait until every device has ended, every read is stored and delivered or rejected.

        For scripted sessions (the demo, tests); a real scanner never ends.
        """
        await self.ready.wait()
        while True:
            if (
                all(t.done() for t in self._pumps)
                and self._reads.empty()
                and self._busy == 0
                and self.outbox is not None
                and self.outbox.pending_count == 0
            ):
                return
            await asyncio.sleep(poll_s)

    async def run(self, handle_signals: bool = False) -> None:
        """Run until stopped (``stop()``, SIGTERM) or cancelled; either way the same
        ordered stop runs to its end, and the outbox closes after all that writes to it."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._reads = BatchQueue(READ_QUEUE_MAX)  # closed at the end of each run
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        try:
            # A cancel while the file opens (in a thread, which a cancel cannot stop)
            # waits for the open and closes it again: no writer thread is left behind.
            outbox, cancelled = await finished(
                asyncio.to_thread(
                    Outbox.open,
                    cfg.outbox_path,
                    cfg.agent.id,
                    cfg.outbox.max_bytes,
                    retention_days=cfg.outbox.retention_days,
                    group_max=cfg.outbox.group_max,
                    wall=self.clock.wall,
                    sinks=tuple(s.name for s in cfg.sinks),
                )
            )
            self.outbox = outbox
            try:
                if cancelled:
                    raise asyncio.CancelledError
                await self._run_with(outbox)
            finally:
                await to_the_end(asyncio.to_thread(outbox.close))
        finally:
            self.notifier.close()
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            event(log, "stopped")

    async def _run_with(self, outbox: Outbox) -> None:
        run = _Run(contextlib.AsyncExitStack())
        failure: BaseException | None = None
        try:
            watched, stop_wait = await self._start(run, outbox)
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop_wait and not task.cancelled() and task.exception():
                    failure = task.exception()
                    event(
                        log,
                        "task_failed",
                        level=logging.CRITICAL,
                        task=task.get_name(),
                        error=f"{type(failure).__name__}: {failure}",
                    )
        finally:
            # Whatever ended the run (a stop, a failed task, a failed start, a cancel
            # from outside, even a second one), all that was started stops in order.
            await to_the_end(self._stop(run, outbox))
        if failure is not None:
            raise failure

    async def _start(
        self, run: _Run, outbox: Outbox
    ) -> tuple[set[asyncio.Task[Any]], asyncio.Task[Any]]:
        """Start everything, keeping each part in ``run`` the moment it exists (so that
        ``_stop`` ends it whenever the start is cut short); the tasks whose end ends the
        run, and the one that waits for ``stop()``."""
        cfg = self.config
        state = await asyncio.to_thread(outbox.station_state)
        rules = Rules(
            cfg.stations,
            Context(cfg.agent.id, self.clock, self.ids),
            state,
            identify=identify_for(cfg),
        )
        self.rules = rules
        if rules.ticking:
            await self._resume(rules)
        recorder = run.recorder = Recorder(cfg.record_path, cfg.record.max_bytes, self.alarms)
        factory = ReadFactory(self.clock, self.ids)
        run.sinks = await self._make_sinks(outbox)
        # before the devices: a port another agent holds stops the start here
        run.health = await self.observer.start()
        for dev in cfg.devices:
            driver = DRIVERS[dev.driver](dev.id, dev.options, factory)
            await run.drivers.enter_async_context(driver)
            self.drivers.append(driver)
        run.pumps = self._pumps = [
            asyncio.create_task(self._pump(d), name=f"driver:{d.device_id}") for d in self.drivers
        ]
        run.rules = asyncio.create_task(self._rules_loop(rules, outbox, recorder), name="rules")
        run.sync = [
            asyncio.create_task(syncer.run(), name=f"sync:{name}")
            for name, syncer in self.syncers.items()
        ]
        if rules.ticking:
            run.ticks.append(asyncio.create_task(self._tick_loop(rules, outbox), name="ticks"))
        run.side.append(asyncio.create_task(self._prune_loop(outbox), name="prune"))
        run.side.append(asyncio.create_task(self._alarm_loop(), name="alarms"))
        if cfg.agent.log_flow_s:
            run.side.append(asyncio.create_task(self._flow_loop(outbox), name="flow"))
        run.drivers.enter_context(kept_out_of_full_collections())  # until the stop
        await asyncio.to_thread(release_freed_heap)  # start-up's garbage, once
        self.ready.set()
        self.notifier.ready(self._one_line_status(outbox))
        run.side.append(asyncio.create_task(self._watchdog_loop(outbox), name="watchdog"))
        event(
            log,
            "ready",
            agent=cfg.agent.id,
            devices=len(self.drivers),
            stations=len(cfg.stations),
            outbox=str(cfg.outbox_path),
        )
        stop_wait = asyncio.create_task(self.stopping.wait(), name="stop")
        run.stop_wait = stop_wait
        watched: set[asyncio.Task[Any]] = {run.rules, *run.sync, stop_wait, *run.side, *run.ticks}
        run.side.extend(self._beams(rules, recorder))
        return watched, stop_wait

    async def _stop(self, run: _Run, outbox: Outbox) -> None:
        """Stop what ``run`` holds in data-flow order: drivers, rules, outbox writes, sinks."""
        event(log, "stopping")
        self.stopping.set()
        self.notifier.stopping()
        # 1. drivers: closed first, so no new reads; what a driver already holds (the
        # rest of an LLRP report, a serial line) still reaches the rules queue. A pump
        # still busy after DRAIN_S is cancelled. A device that fails to close does not
        # stop the rest: its error is raised once all has stopped.
        close_failed: Exception | None = None
        try:
            await run.drivers.aclose()
        except Exception as exc:  # any driver's: raised below, not swallowed
            close_failed = exc
        if run.pumps:
            _, late = await asyncio.wait(run.pumps, timeout=DRAIN_S)
            for t in late:
                t.cancel()
        await asyncio.gather(*run.pumps, return_exceptions=True)
        # 2. rules: decide and store what was read; the queue's close ends them
        self._reads.close()
        if run.rules is not None:
            await asyncio.gather(run.rules, return_exceptions=True)
        # 2b. RFID ticks end (open passes stay open: rebuilt at the next start)
        await asyncio.gather(*run.ticks, return_exceptions=True)
        # 3. outbox: flush queued writes
        with contextlib.suppress(OutboxError):
            await outbox.flush()
        # 4. sync (every sink's task) and the rest; then what they used
        others = [*run.sync, *run.side, *([run.stop_wait] if run.stop_wait else [])]
        for other in others:
            other.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._close_sinks(run.sinks)
        if run.recorder is not None:
            run.recorder.close()
        if run.health is not None:
            await run.health.close()
        if close_failed is not None:
            raise close_failed

    async def _make_sinks(self, outbox: Outbox) -> list[Sink]:
        """Each configured sink and its Syncer; the first is ``self.syncer``."""
        cfg = self.config
        sinks: list[Sink] = []
        try:
            for i, s in enumerate(cfg.sinks):
                if s.where == "sync":  # [sync]'s url: its token came in with the daemon
                    secrets = {"token_file": self._token}
                else:
                    secrets = await asyncio.to_thread(read_secrets, cfg, s)
                ctx = SinkContext(cfg.agent.id, secrets, self.clock.wall, self._transport)
                sink = make_sink(s, ctx)
                sinks.append(sink)
                o = s.options
                self.syncers[s.name] = Syncer(
                    outbox,
                    sink,
                    RetryPolicy(o.backoff_initial_s, o.backoff_cap_s, o.auth_retry_s),
                    self.alarms,
                    batch_max=o.batch_max,
                    batch_max_bytes=o.batch_max_bytes,
                    stall_alarm_s=o.stall_alarm_s,
                    sleep=self._sleep,
                    wall=self.clock.wall,
                    ids=self.ids,
                    metrics=self.metrics,
                    name=s.name,
                    primary=i == 0,
                    kind=s.type,
                )
        except BaseException:
            await self._close_sinks(sinks)
            raise
        self.syncer = next(iter(self.syncers.values()))
        return sinks

    @staticmethod
    async def _close_sinks(sinks: list[Sink]) -> None:
        for sink in sinks:
            await sink.aclose()

    async def _pump(self, driver: Driver) -> None:
        """Move reads from one device to the rules queue (backpressure when it is full).

        Reads go on in the batches the device delivered (an RFID report); the
        queue's bound counts reads.
        """
        queue = self._reads
        try:
            async for batch in driver.read_batches():
                if not await queue.put([(driver, read) for read in batch]):
                    return  # the rules have ended (the daemon is stopping)
        except DriverError as exc:
            self.device_errors[driver.device_id] = str(exc)
            event(
                log, "device_failed", level=logging.ERROR, device=driver.device_id, error=str(exc)
            )
        else:
            event(log, "device_ended", device=driver.device_id)

    async def _rules_loop(self, rules: Rules, outbox: Outbox, recorder: Recorder) -> None:
        """Decide and store reads; under a burst, everything waiting goes in one commit."""
        group_max = self.config.outbox.group_max
        while group := await self._reads.get(group_max):
            self._busy += 1
            try:
                await self._process(rules, outbox, group, recorder)
            finally:
                self._busy -= 1

    async def _process(
        self,
        rules: Rules,
        outbox: Outbox,
        group: list[tuple[Driver, Read]],
        recorder: Recorder | None = None,
    ) -> None:
        commits: list[Commit] = []
        rulings: list[Ruling] = []
        new_commit = _COMMIT
        start, size = 0, len(group)
        while start < size:  # each run of one device's reads decided together
            driver = group[start][0]
            end = start + 1
            while end < size and group[end][0] is driver:
                end += 1
            run = [read for _, read in group[start:end]]
            if recorder is not None:
                for read in run:  # before deciding: a read that breaks the rules is kept
                    recorder.write(read)
            rulings.extend(rules.decide_all(driver.device_id, run))
            start = end
        for (_, read), ruling in zip(group, rulings, strict=True):
            decision = ruling.decision
            if decision.feedback == "bad":
                outcome = f"bad: {decision.reason}"
            else:
                outcome = "double read" if ruling.double else decision.reason or "good"
            commits.append(
                new_commit(read, decision.movements, ruling.changes, outcome, decision.cancel)
            )
        try:
            stored = await outbox.store(commits)
        except OutboxError as exc:
            stored = [Stored(error=exc)] * len(commits)
        errors: list[Exception | None] = [s.error for s in stored]
        if any(errors):
            rules.restore(await asyncio.to_thread(outbox.station_state))
            first_error = next(e for e in errors if e is not None)
            self.alarms.raise_("outbox_refusing", f"reads are refused: {first_error}")
        else:
            self.alarms.clear("outbox_refusing")
        # Counted, logged and signalled per group: the counts and the metrics once per
        # (device, result); a tag read's bad outcome is one log line per group (each
        # read's outcome is in the outbox); a driver whose signal names no read (an
        # RFID reader's GPO pulse) gets one feedback per kind, the group's last.
        tally: Counter[tuple[str, str]] = Counter()
        moved: Counter[str] = Counter()
        tags_refused: dict[tuple[str, str, str | None], list[tuple[Read, str | None]]] = {}
        coalesced: dict[tuple[Driver, FeedbackKind], tuple[Read, str | None]] = {}
        signals: list[tuple[Driver, Feedback]] = []
        debug = log.isEnabledFor(logging.DEBUG)
        tag_reads = 0
        kind: str
        signal: FeedbackKind
        reason: str | None
        # A plain read (a portal's "tracked" tag: stored, good, nothing moved, nothing to
        # log) is settled with identity checks: its decision is a shared object, its result
        # the outbox's shared record. A coalescing driver's good signal is noted once per
        # run of such reads (the run's last read), where each read used to move it.
        plain_decision: object = None
        plain_result: object = None
        good: FeedbackKind = "good"
        s_driver: Driver | None = None  # the run: its driver, last read and reason
        s_read: Read | None = None
        s_reason: str | None = None

        def end_run() -> None:
            if s_driver is not None and s_read is not None:
                coalesced.pop((s_driver, good), None)  # keeps the order of last signals
                coalesced[s_driver, good] = (s_read, s_reason)

        for (driver, read), ruling, result in zip(group, rulings, stored, strict=True):
            decision = ruling.decision
            if decision is not plain_decision and (
                decision.feedback == "good" and not decision.movements and not decision.log
            ):
                plain_decision = decision
            if result is not plain_result and (
                result.error is None and not result.movements and result.cancel is None
            ):
                plain_result = result
            if decision is plain_decision and result is plain_result:
                kind, signal, reason = (
                    "double" if ruling.double else "good",
                    "good",
                    decision.reason,
                )
                if read.kind == "tag":  # no scan line, no warning: counted and signalled
                    tag_reads += read.seen_count or 1
                    tally[driver.device_id, kind] += 1
                    if debug:
                        self._log_read(logging.DEBUG, read, ruling, kind, reason, result)
                    if not driver.coalesce_feedback:
                        signals.append((driver, Feedback(signal, read.device, read.id, reason)))
                    elif s_driver is driver:
                        s_read, s_reason = read, reason
                    else:
                        end_run()
                        s_driver, s_read, s_reason = driver, read, reason
                    continue
            else:
                kind, signal, reason = self._settled(ruling, result, moved)
            if read.kind == "tag" and result.error is None:
                tag_reads += read.seen_count or 1
            tally[driver.device_id, kind] += 1
            if read.kind != "tag" or result.movements:
                self.scans.add(
                    scan_of(
                        self.clock.wall(),
                        ruling.station,
                        read.device,
                        read.data,
                        kind,
                        reason,
                        result.movements,
                    )
                )
            if kind not in ("good", "double"):
                if read.kind == "tag":
                    key = (read.device, kind, ruling.station)
                    tags_refused.setdefault(key, []).append((read, reason))
                else:
                    self._log_read(logging.WARNING, read, ruling, kind, reason, result)
            elif debug:
                self._log_read(logging.DEBUG, read, ruling, kind, reason, result)
            if driver.coalesce_feedback:
                end_run()
                s_driver = None
                coalesced.pop((driver, signal), None)  # keeps the order of last signals
                coalesced[driver, signal] = (read, reason)
            else:
                signals.append((driver, Feedback(signal, read.device, read.id, reason)))
        end_run()
        self.counters.tag_reads += tag_reads
        now = self.clock.wall()
        for (device, kind), n in tally.items():
            self.counters.reads[kind] += n
            self.metrics.reads.labels(device, kind).inc(n)
            self.last_read_at[device] = now
        for mkind, n in moved.items():
            self.metrics.movements.labels(mkind, "stored").inc(n)
            self.counters.stored += n
        for (device, kind, station), reads in tags_refused.items():
            reasons = {reason for _, reason in reads}
            event(
                log,
                "tag_reads",
                level=logging.WARNING,
                device=device,
                station=station,
                result=kind,
                count=len(reads),
                first_read_id=reads[0][0].id,
                last_read_id=reads[-1][0].id,
                reason=reads[0][1],
                reasons=len(reasons),
            )
        for (driver, signal), (read, reason) in coalesced.items():
            signals.append((driver, Feedback(signal, read.device, read.id, reason)))
        for driver, feedback in signals:
            await self._feedback(driver, feedback)

    def _settled(
        self, ruling: Ruling, result: Stored, moved: Counter[str]
    ) -> tuple[str, FeedbackKind, str | None]:
        """(result, signal, reason) of one read once its fate is on disk; logs its decision."""
        decision = ruling.decision
        reason: str | None = decision.reason
        signal: FeedbackKind = "good"
        if result.error is not None:
            return "refused", "bad", f"not stored: {result.error}"
        if decision.feedback == "bad":
            return "bad", "bad", reason
        kind = "double" if ruling.double else "good"
        signal = "alarm" if decision.feedback == "alarm" else "good"
        if result.cancel is not None:
            reason = result.cancel.describe()
            if result.cancel.refused:
                kind, signal = "bad", "bad"
        for m in result.movements:
            moved[m.kind] += 1
        for name, fields in decision.log:
            event(
                log,
                name,
                level=logging.WARNING if signal == "alarm" else logging.INFO,
                **fields,
            )
        return kind, signal, reason

    @staticmethod
    def _log_read(
        level: int, read: Read, ruling: Ruling, kind: str, reason: str | None, result: Stored
    ) -> None:
        event(
            log,
            "read",
            level=level,
            device=read.device,
            read_id=read.id,
            data=read.data.decode("utf-8", "backslashreplace"),
            station=ruling.station,
            result=kind,
            reason=reason,
            movements=len(result.movements),
        )

    async def _feedback(self, driver: Driver, feedback: Feedback) -> None:
        try:
            await driver.feedback(feedback)
        except DriverError as exc:
            event(
                log,
                "feedback_failed",
                level=logging.WARNING,
                device=driver.device_id,
                error=str(exc),
            )

    def _on_alarm(self, alarm: Alarm, raised: bool) -> None:
        self._alarm_queue.put_nowait((alarm, raised))

    async def _alarm_loop(self) -> None:
        """Alarms reach the operators' devices, not only the log."""
        while True:
            alarm, raised = await self._alarm_queue.get()
            for syncer in self.syncers.values():
                publish = getattr(syncer.sink, "publish_alarm", None)
                if publish is not None:
                    await publish(alarm, raised)
            if raised:
                for driver in self.drivers:
                    if driver.state == "open":
                        await self._feedback(
                            driver, Feedback("alarm", driver.device_id, None, alarm.message)
                        )

    async def _watchdog_loop(self, outbox: Outbox) -> None:
        """Ping systemd's watchdog from this loop: if the loop hangs, the pings stop."""
        interval = self.notifier.watchdog_interval_s()
        shown = ""
        while not self.stopping.is_set():  # STOPPING=1 is the last word
            self.notifier.watchdog()
            line = self._one_line_status(outbox)
            if line != shown:
                self.notifier.status(line)
                shown = line
            await asyncio.sleep(interval if interval is not None else 10.0)

    async def _flow_loop(self, outbox: Outbox) -> None:
        """One ``flow`` line at info every agent.log_flow_s when something moved."""
        flow = FlowLog(self._totals(outbox))
        while True:
            await asyncio.sleep(self.config.agent.log_flow_s)
            last = self.syncer.status.last_success_at if self.syncer else None
            age = None if last is None else round(self.clock.wall() - last, 1)
            fields = flow.fields(self._totals(outbox), age)
            if fields is not None:
                event(log, "flow", **fields)

    def _totals(self, outbox: Outbox) -> Totals:
        st = self.syncer.status if self.syncer else None
        return Totals(
            reads=dict(self.counters.reads),
            stored=self.counters.stored,
            delivered=st.delivered if st else 0,
            rejected=st.rejected if st else 0,
            pending=outbox.pending_count,
        )

    def _one_line_status(self, outbox: Outbox) -> str:
        """What `systemctl status edgetally` shows."""
        last = self.syncer.status.last_success_at if self.syncer else None
        ago = "never" if last is None else f"{self.clock.wall() - last:.0f}s ago"
        alarms = ", ".join(self.alarms.active()) or "none"
        return f"{outbox.pending_count} pending; last delivery {ago}; alarms: {alarms}"

    async def _resume(self, rules: Rules) -> None:
        """Give the RFID stations the tag reads of their last window back, so passes that
        were open at the last stop are decided (DESIGN §3: nothing in flight is lost)."""
        devices: set[str] = set()
        horizon_ms = 0
        for st in self.config.stations:
            if st.kind == "portal":
                devices.update(st.devices)
                horizon_ms = max(horizon_ms, st.max_track_ms + st.quiet_ms)
        if not devices:
            return
        reads = await asyncio.to_thread(
            recent_tag_reads,
            str(self.config.outbox_path),
            devices,
            self.clock.wall() - 2 * horizon_ms / 1000,  # wall time may have stepped: margin
            self.clock.boot_id,
            self.clock.mono_ns() - horizon_ms * 1_000_000,
        )
        taken = rules.resume(reads)
        if taken:
            event(log, "rfid_resumed", reads=taken)

    async def _tick_loop(self, rules: Rules, outbox: Outbox) -> None:
        """Store what time decides (a portal pass gone quiet, a zone departure), stored
        without a read. Ends once the daemon stops: passes still open are not decided
        then (they would be guesses); the next start rebuilds them (``_resume``).
        Decisions the outbox refused are held and stored again at the next tick."""
        by_device = {d.device_id: d for d in self.drivers}
        held: list[Tick] = []
        gate = TickGate(TICK_S, TICK_WAITS_MAX)
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            due_at = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            # A pass is quiet only if the agent has decided every read that reached it
            # (agent/tickgate.py): after a stall, silence counts afresh.
            go, stalled = gate.woke(loop.time() - due_at, not self._reads.empty())
            if stalled:
                rules.unwatched(self.clock.mono_ns())
            if not go:
                continue
            retry = {id(t) for t in held}
            fresh = rules.tick(self.clock.mono_ns(), self.clock.boot_id)
            self._verdicts(fresh)
            due = held + fresh
            due = [t for t in due if t.decision.movements or t.changes or t.decision.log]
            held = []
            if not due:
                continue
            self._busy += 1
            try:
                commits = [
                    Commit(None, t.decision.movements, t.changes, t.decision.reason) for t in due
                ]
                try:
                    stored = await outbox.store(commits)
                except OutboxError as exc:
                    stored = [Stored(error=exc)] * len(commits)
                signals: dict[str, Feedback] = {}
                for tick, result in zip(due, stored, strict=True):
                    if result.error is not None:
                        held.append(tick)
                        continue
                    if id(tick) in retry:
                        rules.apply(tick.changes)  # a failed read store may have restored
                    for m in result.movements:
                        self.metrics.movements.labels(m.kind, "stored").inc()
                    for name, fields in tick.decision.log:
                        event(log, name, **fields)
                    if result.movements:
                        event(
                            log,
                            "rfid_decision",
                            station=tick.station,
                            device=tick.device,
                            reason=tick.decision.reason,
                            movements=len(result.movements),
                        )
                        signals[tick.device] = Feedback(
                            tick.decision.feedback, tick.device, None, tick.decision.reason
                        )
                first_error = next((r.error for r in stored if r.error is not None), None)
                if first_error is not None:
                    self.alarms.raise_("outbox_refusing", f"RFID decisions are held: {first_error}")
                for device, feedback in signals.items():
                    if device in by_device:
                        await self._feedback(by_device[device], feedback)
            finally:
                self._busy -= 1

    def _beams(self, rules: Rules, recorder: Recorder) -> list[asyncio.Task[None]]:
        """A task per device whose GPI a station watches (a portal's beam sensor)."""
        wanted = rules.beam_devices()
        return [
            asyncio.create_task(self._gpi_loop(rules, d, recorder), name=f"gpi:{d.device_id}")
            for d in self.drivers
            if d.device_id in wanted
        ]

    async def _gpi_loop(self, rules: Rules, driver: Driver, recorder: Recorder) -> None:
        """GPI changes of one reader into the rules, until the driver closes; recorded
        with the reads, so that ``replay`` gates the passes as this run does."""
        # Only the LLRP driver has GPI inputs; the config check makes sure it is one.
        events = getattr(driver, "gpi_events", None)
        if events is None:
            return
        clock = self.clock
        since = clock.mono_ns()
        rules.watch_beam(driver.device_id, since)
        recorder.write_gpi_watch(driver.device_id, since, utc_iso(clock.wall()), clock.boot_id)
        async for ev in events():
            rules.gpi(ev.device, ev.port, ev.high, ev.mono_ns)
            recorder.write_gpi(
                ev.device, ev.port, ev.high, ev.mono_ns, ev.observed_at, clock.boot_id
            )

    def _verdicts(self, ticks: list[Tick]) -> None:
        """Each portal verdict counted per station; why nothing moved, logged at debug."""
        debug = log.isEnabledFor(logging.DEBUG)
        for tick in ticks:
            d = tick.decision
            if d.verdict is None:
                continue
            self.metrics.portal_passes.labels(tick.station, d.verdict).inc()
            moved = d.verdict.startswith(("crossed", "duplicate"))
            if debug and not moved:
                event(
                    log,
                    "portal_no_move",
                    level=logging.DEBUG,
                    station=tick.station,
                    device=tick.device,
                    verdict=d.verdict,
                    reason=d.reason,
                )

    async def _prune_loop(self, outbox: Outbox) -> None:
        while True:
            try:
                removed = await outbox.prune()
            except OutboxError as exc:  # a full disk; pruning is what frees it, so keep trying
                event(log, "prune_failed", level=logging.ERROR, error=str(exc))
                removed = 0
            if removed:
                event(log, "pruned", rows=removed)
            await asyncio.sleep(self.config.outbox.prune_interval_s)
