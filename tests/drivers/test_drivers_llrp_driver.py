"""The LLRP driver (sllurp's state machine on our own asyncio connection) against the
reader emulator over real TCP: inventory, keepalive loss, connection drops, malformed
frames, a reader rejecting a step, clean close; and fuzzed frames into the receive path.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sllurp.llrp import LLRPReaderState

from agent.clock import Clock, Uuid7
from agent.errors import DriverError
from agent.model import Feedback, Read
from bench.fuzz import feed_llrp_driver
from drivers import llrp_frames as f
from drivers.base import ReadFactory
from drivers.llrp import LlrpReader
from drivers.llrp_emulator import LlrpEmulator, Scenario, scenario_from_dict
from drivers.llrp_settings import LlrpSettings

EPCS = ("30340242201d8840009a4e21", "30340242201d8840009a4e22", "30340242201d8840009a4e23")


def scenario(tags: bool = True, **top: Any) -> Scenario:
    obj: dict[str, Any] = {
        "name": "test",
        "rate": 50,
        "report_interval_s": 0.05,
        "antennas": [{"id": 1, "group": "outside"}, {"id": 2, "group": "inside"}],
        "tags": [
            {
                "name": "shelf",
                "epcs": list(EPCS),
                "motion": "shelf",
                "near": "inside",
                "rssi_peak_dbm": -40,
            }
        ]
        if tags
        else [],
        **top,
    }
    return scenario_from_dict(obj)


def quick(port: int, **over: Any) -> LlrpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "antennas": [1, 2],
        "keepalive_s": 0.1,
        "keepalive_misses": 3,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "connect_timeout_s": 2.0,
        "report_timeout_ms": 50,
        **over,
    }
    return LlrpSettings(**values)


class Sleeps:
    """Records the reconnect waits the driver chose; waits only a token real time."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0.01)


def factory() -> ReadFactory:
    return ReadFactory(Clock(boot_id="boot"), Uuid7())


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def collect(driver: LlrpReader, enough: Callable[[list[Read]], bool]) -> list[Read]:
    got: list[Read] = []
    async with asyncio.timeout(10), contextlib.aclosing(driver.reads()) as reads:
        async for read in reads:
            got.append(read)
            if enough(got):
                break
    return got


def threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


async def test_inventory_reads_arrive_with_antenna_rssi_and_reader_times() -> None:
    before = threads()
    async with LlrpEmulator(scenario()) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory())
        async with driver:
            reads = await collect(driver, lambda rs: {r.data.hex() for r in rs} >= set(EPCS))
            assert driver.present and driver.problem is None
            assert driver.reader_state == "inventorying"
            assert threads() == before  # no socket thread: it all runs on this loop
        record = emu.connections[-1]
    assert {r.kind for r in reads} == {"tag"} and {r.device for r in reads} == {"portal"}
    assert all(r.antenna in (1, 2) for r in reads)
    assert all(r.rssi is not None and -100 < r.rssi < 0 for r in reads)
    assert all(r.seen_count is not None and r.seen_count >= 1 for r in reads)
    assert all(r.fault is None for r in reads)
    # The reader's own timestamps are kept, with the offset to the agent's clock.
    times = {t.read_id: t for t in driver.times}
    assert {r.id for r in reads} <= set(times)
    assert all(times[r.id].last_seen_us is not None for r in reads)
    offset = driver.offset.offset_us
    assert offset is not None and abs(offset) < 5_000_000  # same host, same clock
    # The reader was configured the way the settings say, and left politely.
    names = record.messages
    assert names[:3] == [
        "GET_READER_CAPABILITIES",
        "GET_READER_CONFIG",
        "ENABLE_EVENTS_AND_REPORTS",
    ]
    assert "ADD_ROSPEC" in names and "ENABLE_ROSPEC" in names
    assert names[-3:] == ["DELETE_ACCESSSPEC", "DELETE_ROSPEC", "CLOSE_CONNECTION"]
    assert record.closed == "CLOSE_CONNECTION"
    assert record.keepalive_acks >= 0
    assert driver.attempts == 1 and driver.sessions == 1 and not driver.errors
    assert not driver.present


@pytest.mark.parametrize(("tags", "fault"), [(False, "stop_keepalives_at_s"), (True, "hang_at_s")])
async def test_keepalive_loss_is_detected_and_the_driver_reconnects(tags: bool, fault: str) -> None:
    # Without tags in the field nothing but keepalives comes; a hung reader sends nothing.
    sleeps = Sleeps()
    emu_scenario = scenario(tags=tags, faults={fault: 0.3})
    async with LlrpEmulator(emu_scenario) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=sleeps)
        async with driver:
            await until(lambda: driver.sessions >= 2)
            assert driver.present
        records = emu.connections
    assert records[0].keepalive_acks >= 1  # keepalives came, and were answered, before the loss
    assert driver.errors[0] == "no keepalive for 0 s (expected every 0.1 s)"
    assert len(records) >= 2 and driver.attempts >= 2
    # The waits chosen are full-jitter exponential: within [0, initial × 2^n], capped.
    assert sleeps.asked[0] <= 0.05 * 2
    assert all(0 <= d <= 0.2 for d in sleeps.asked)
    assert list(driver.delays) == sleeps.asked


async def test_close_does_not_wait_long_for_a_reader_that_does_not_answer() -> None:
    emu_scenario = scenario(tags=False, faults={"hang_at_s": 0.2})
    async with LlrpEmulator(emu_scenario) as emu:
        driver = LlrpReader("portal", quick(emu.port, keepalive_s=30), factory())
        driver.close_timeout_s = 0.1
        async with driver:
            await until(lambda: driver.present)
            await until(lambda: emu._active is not None and emu._active.hung)
        await until(lambda: not emu.session_active)  # our socket is closed: the reader sees EOF
        assert emu.connections[0].closed == "client closed"
    assert driver.errors == deque()  # closing is not a link error
    assert not driver.present


async def test_a_dropped_connection_is_reported_and_reconnected() -> None:
    sleeps = Sleeps()
    async with LlrpEmulator(scenario(faults={"drop_connection_at_s": 0.3})) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=sleeps)
        async with driver:
            await until(lambda: driver.sessions >= 2)
            reads = await collect(driver, lambda rs: len(rs) >= 3)
        assert len(emu.connections) >= 2
    assert driver.errors[0].startswith(("the reader closed the connection", "connection to"))
    assert len(sleeps.asked) >= 1 and reads


@pytest.mark.parametrize(
    "kind", ["unknown_type", "short_length", "bad_parameter", "truncated_parameter"]
)
async def test_a_malformed_frame_is_reported_and_the_driver_reconnects(kind: str) -> None:
    sleeps = Sleeps()
    faults = {"malformed_frame_at_s": 0.3, "malformed": kind}
    async with LlrpEmulator(scenario(tags=False, faults=faults)) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=sleeps)
        async with driver:
            await until(lambda: bool(driver.errors))
            problem = driver.problem
            await until(lambda: driver.sessions >= 2)
    assert driver.errors[0].startswith("malformed frame from the reader")
    assert problem is not None and "malformed frame" in problem and "reconnecting in" in problem


async def test_a_rejected_step_names_the_llrp_status_and_the_readers_message() -> None:
    # The reader's capabilities allow antenna 2 (it has ports up to 3), but nothing is on it.
    emu_scenario = scenario_from_dict(
        {
            "name": "gap",
            "antennas": [{"id": 1, "group": "outside"}, {"id": 3, "group": "inside"}],
        }
    )
    sleeps = Sleeps()
    async with LlrpEmulator(emu_scenario) as emu:
        driver = LlrpReader("portal", quick(emu.port, antennas=[2]), factory(), sleep=sleeps)
        async with driver:
            await until(lambda: len(driver.errors) >= 2)
            problem = driver.problem
        assert not driver.present and driver.sessions == 0
    assert driver.errors[0] == (
        "reader rejected ADD_ROSPEC: ParameterError: AISpec antennas [2]: reader has [1, 3]"
        " (a required step: no inventory without it)"
    )
    assert problem is not None and problem.startswith("reader rejected ADD_ROSPEC")


async def test_an_antenna_the_reader_lacks_is_named() -> None:
    async with LlrpEmulator(scenario(tags=False)) as emu:
        driver = LlrpReader("portal", quick(emu.port, antennas=[7]), factory(), sleep=Sleeps())
        async with driver:
            await until(lambda: bool(driver.errors))
    assert driver.errors[0].startswith("cannot configure the reader: Invalid antenna set")
    assert "requested=7" in driver.errors[0]


async def test_an_unreachable_reader_opens_absent_and_keeps_trying() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    driver = LlrpReader("portal", quick(port), factory(), sleep=sleeps)
    async with driver:
        assert not driver.present
        await until(lambda: driver.attempts >= 3)
        problem = driver.problem
    assert problem is not None and problem.startswith(f"connection to 127.0.0.1:{port} refused")
    assert "RFID interface set to LLRP" in problem and "reconnecting in" in problem


async def test_a_second_client_is_told_the_reader_is_taken() -> None:
    async with LlrpEmulator(scenario(tags=False)) as emu:
        first = LlrpReader("a", quick(emu.port), factory())
        second = LlrpReader("b", quick(emu.port), factory(), sleep=Sleeps())
        async with first:
            await until(lambda: first.present)
            async with second:
                await until(lambda: bool(second.errors))
    assert "another LLRP client is connected" in second.errors[0]


async def test_feedback_pulses_a_gpo_once_for_a_burst_of_reads() -> None:
    async with LlrpEmulator(scenario(tags=False)) as emu:
        driver = LlrpReader("portal", quick(emu.port, gpo_good=1, gpo_pulse_ms=200), factory())
        async with driver:
            await until(lambda: driver.present)
            configs = emu.message_counts["SET_READER_CONFIG"]  # 1 config + 1 GPO reset
            for _ in range(50):
                await driver.feedback(Feedback("good", "portal", "r1"))
            await driver.feedback(Feedback("bad", "portal", "r2"))  # no gpo_bad: nothing
            await until(lambda: emu.message_counts["SET_READER_CONFIG"] == configs + 2)
            assert not driver._pulses  # on, then off
    assert configs == 2


async def test_feedback_while_disconnected_says_why() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    driver = LlrpReader("portal", quick(port, gpo_bad=2), factory(), sleep=Sleeps())
    async with driver:
        await until(lambda: driver.attempts >= 1 and "refused" in (driver.problem or ""))
        with pytest.raises(DriverError, match="cannot signal bad on GPO 2: connection to"):
            await driver.feedback(Feedback("bad", "portal", "r"))


async def test_a_full_queue_holds_the_socket_instead_of_dropping() -> None:
    async with LlrpEmulator(scenario()) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), queue_max=2)
        async with driver:
            await until(lambda: driver.stalls >= 1)
            reads = await collect(driver, lambda rs: len(rs) >= 20)
            assert driver.present  # waiting for the daemon is not the reader's silence
    assert len(reads) == 20 and driver.discarded >= 0


class BrokenIds(Uuid7):
    def new(self) -> str:
        raise RuntimeError("boom")

    def batch(self) -> Callable[[], str]:
        return self.new


async def test_a_bug_in_the_connection_task_ends_reads_with_the_error() -> None:
    async with LlrpEmulator(scenario()) as emu:
        broken = ReadFactory(Clock(boot_id="boot"), BrokenIds())
        driver = LlrpReader("portal", quick(emu.port), broken)
        async with driver:
            with pytest.raises(DriverError, match=r"task failed: RuntimeError\('boom'\)"):
                await collect(driver, lambda rs: False)
            assert not driver.present


# ---- fuzzed frames into the receive path ----------------------------------------------------

MESSAGE_TYPES = [4, 11, 12, 13, 30, 31, 34, 51, 61, 62, 63, 100, 1023]


def _frame(kind: int, body: bytes, msg_id: int = 1) -> bytes:
    return struct.pack("!HII", (1 << 10) | kind, 10 + len(body), msg_id) + body


def _tlv(ptype: int, body: bytes) -> bytes:
    return struct.pack("!HH", ptype, 4 + len(body)) + body


params = st.one_of(
    st.binary(max_size=40),
    st.builds(
        _tlv, st.sampled_from([240, 241, 246, 248, 256, 257, 287, 288, 289]), st.binary(max_size=30)
    ),
    st.builds(lambda b: b"\x8d" + b, st.binary(min_size=12, max_size=12)),
)
frames = st.one_of(
    st.binary(min_size=10, max_size=200),
    st.builds(
        _frame,
        st.sampled_from(MESSAGE_TYPES),
        st.lists(params, max_size=4).map(b"".join),
        st.integers(0, 2**32 - 1),
    ),
)


STATES = [
    LLRPReaderState.STATE_DISCONNECTED,  # expects the ConnectionAttemptEvent
    LLRPReaderState.STATE_SENT_GET_CAPABILITIES,
    LLRPReaderState.STATE_SENT_GET_CONFIG,
    LLRPReaderState.STATE_SENT_SET_CONFIG,
    LLRPReaderState.STATE_SENT_ADD_ROSPEC,
    LLRPReaderState.STATE_INVENTORYING,
    LLRPReaderState.STATE_SENT_DELETE_ROSPEC,
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=4), st.sampled_from(STATES))
def test_fuzzed_frames_never_crash_the_driver(stream: list[bytes], state: int) -> None:
    _, reads, error = asyncio.run(feed_llrp_driver(stream, state))
    assert error  # the stream ends: every path ends in a reported LinkError, nothing else
    assert all(isinstance(r, Read) and r.kind == "tag" for r in reads)


def test_the_receive_path_takes_gpi_events_and_tags_in_one_stream() -> None:
    gpi = f.Tlv(248, struct.pack("!HB", 1, 0x80))
    note = f.ReaderEventNotification(4, f.ReaderEventNotificationData(f.UTCTimestamp(1), (gpi,)))
    report = f.ROAccessReport(5, (f.TagReportData(bytes.fromhex(EPCS[0]), antenna_id=1),))
    keepalive = f.Bare(f.KEEPALIVE, 6)
    stream = [note.encode(), keepalive.encode(), report.encode()]
    driver, reads, error = asyncio.run(feed_llrp_driver(stream, LLRPReaderState.STATE_INVENTORYING))
    assert [(r.data.hex(), r.antenna) for r in reads] == [(EPCS[0], 1)]
    assert error == "the reader closed the connection"
    event = driver._gpi.get_nowait()
    assert (event.device, event.port, event.high) == ("fuzz", 1, True)
