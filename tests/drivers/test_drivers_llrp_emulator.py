"""The LLRP reader emulator over real TCP: sllurp's own client against it, and a raw LLRP peer."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from driver_kit import eventually
from sllurp.llrp import LLRPMessage, LLRPReaderClient, LLRPReaderConfig

from drivers import llrp_frames as f
from drivers.llrp_emulator import (
    LlrpEmulator,
    Scenario,
    bundled_scenario,
    load_scenario,
    scenario_from_dict,
)
from drivers.llrp_emulator.beam import Beam
from drivers.llrp_emulator.session import ConnectionRecord, RoSpecRun, Session

EPCS = [f"3034257bf40c0e40000{i:05x}" for i in range(1, 21)]
JOIN_S = 10.0  # a bound on two round trips over loopback: reached only if the stop is lost


def portal(**extra: Any) -> Scenario:
    """20 tags pass a 4-antenna portal, 10× faster than life; faults and knobs from ``extra``."""
    obj: dict[str, Any] = {
        "name": "test-portal",
        "speed": 10.0,
        "rate": 10.0,
        "door_db": 15,
        "antennas": [
            {"id": 1, "group": "outside"},
            {"id": 2, "group": "outside"},
            {"id": 3, "group": "inside"},
            {"id": 4, "group": "inside"},
        ],
        "tags": [
            {
                "epcs": EPCS,
                "motion": "pass",
                "direction": "in",
                "start_s": 0.5,
                "path_m": 4.0,
                "spread_m": 0.5,
            }
        ],
    }
    obj.update(extra)
    return scenario_from_dict(obj, "test")


def sllurp_config(**extra: Any) -> LLRPReaderConfig:
    config = {
        "antennas": [1, 2, 3, 4],
        "report_every_n_tags": 40,
        "report_timeout_ms": 50,
        "keepalive_interval": 0,
        "tag_content_selector": {
            "EnableAntennaID": True,
            "EnablePeakRSSI": True,
            "EnableFirstSeenTimestamp": True,
        },
    }
    config.update(extra)
    return LLRPReaderConfig(config)


@asynccontextmanager
async def sllurp_client(
    emu: LlrpEmulator, **config: Any
) -> AsyncIterator[tuple[LLRPReaderClient, list[dict[str, Any]]]]:
    """sllurp's real client in its own thread; always joined and its socket closed afterwards.

    sllurp's state machine is not thread-safe, and its polite stop (``disconnect``) sends
    DELETE_ACCESSSPEC before it registers the callback for the answer, on the caller's
    thread, while the client's thread handles the answer. When the answer is handled in
    between (a loaded host, a thread switch), no callback ever runs, the goodbye never
    completes and the thread never ends. One lock around both sides keeps that order.
    """
    client = LLRPReaderClient("127.0.0.1", emu.port, sllurp_config(**config))
    tags: list[dict[str, Any]] = []
    client.add_tag_report_callback(lambda _reader, report: tags.extend(report))
    one_at_a_time = threading.Lock()
    handle = client.raw_data_received

    def handle_locked(data: bytes) -> None:
        with one_at_a_time:
            handle(data)

    def stop_politely() -> None:
        with one_at_a_time:
            client.disconnect()  # returns once sent; the thread ends when it is answered

    client.raw_data_received = handle_locked  # type: ignore[method-assign]
    await asyncio.to_thread(client.connect)
    try:
        yield client, tags
    finally:
        if client.is_alive():
            await asyncio.to_thread(stop_politely)
            await asyncio.to_thread(client.join, JOIN_S)
        client.hard_disconnect()  # wakes a thread still in select() (none if all went well)
        await asyncio.to_thread(client.join, JOIN_S)
        assert not client.is_alive()


async def test_sllurp_inventories_a_portal_pass_with_antennas_and_rssi() -> None:
    async with LlrpEmulator(portal()) as emu, sllurp_client(emu) as (_client, tags):
        await eventually(lambda: {t["EPC"].decode() for t in tags} == set(EPCS))
        assert {t["AntennaID"] for t in tags} <= {1, 2, 3, 4}
        assert all(-100 < t["PeakRSSI"] < -20 for t in tags)
        first_inside = min(t["FirstSeenTimestampUTC"] for t in tags if t["AntennaID"] >= 3)
        first_outside = min(t["FirstSeenTimestampUTC"] for t in tags if t["AntennaID"] <= 2)
        assert first_outside < first_inside
        seen = list(emu.messages_received)
        for earlier, later in [
            ("GET_READER_CAPABILITIES", "SET_READER_CONFIG"),
            ("SET_READER_CONFIG", "ADD_ROSPEC"),
            ("ADD_ROSPEC", "ENABLE_ROSPEC"),
        ]:
            assert seen.index(earlier) < seen.index(later)
        record = emu.connections[0]
        assert record.accepted and record.errors_sent == 0
        assert record.tags_reported >= len(tags)
    assert "DELETE_ROSPEC" in emu.messages_received  # sllurp's polite stop was answered


async def test_sllurp_with_impinj_extensions_gets_them_enabled() -> None:
    async with (
        LlrpEmulator(portal()) as emu,
        sllurp_client(emu, impinj_search_mode=2) as (_c, tags),
    ):
        await eventually(lambda: len(tags) > 0)
    assert (
        emu.messages_received[0]
        == f"CUSTOM_MESSAGE({f.VENDOR_IMPINJ}/{f.IMPINJ_ENABLE_EXTENSIONS})"
    )


async def test_keepalives_follow_the_clients_spec_and_are_acked_until_they_stop() -> None:
    scenario = portal(faults={"stop_keepalives_at_s": 6.0})  # 0.6 s of wall time
    async with LlrpEmulator(scenario) as emu, sllurp_client(emu, keepalive_interval=50):
        await eventually(lambda: bool(emu.connections))  # sllurp returns before we accept
        record = emu.connections[0]
        await eventually(lambda: record.keepalive_acks >= 3)
        await eventually(lambda: record.keepalive_acks == record.keepalives_sent)
        await asyncio.sleep(0.8)  # past the fault
        stopped = record.keepalives_sent
        await asyncio.sleep(0.3)  # six intervals
        assert record.keepalives_sent == stopped
        assert record.keepalive_acks == stopped


async def test_a_dropped_connection_is_seen_by_sllurp() -> None:
    gone: list[object] = []
    async with LlrpEmulator(portal(faults={"drop_connection_at_s": 3.0})) as emu:
        async with sllurp_client(emu) as (client, _tags):
            client.add_disconnected_callback(gone.append)
            await eventually(lambda: bool(gone), timeout=5)
            await eventually(lambda: not client.is_alive())
        assert emu.connections[0].closed == "dropped (fault)"


async def test_an_unknown_frame_type_is_an_error_sllurp_logs_and_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="sllurp")
    scenario = portal(faults={"malformed_frame_at_s": 2.0, "malformed": "unknown_type"})
    async with LlrpEmulator(scenario) as emu, sllurp_client(emu) as (client, tags):
        await eventually(lambda: any("Failed to decode" in r.getMessage() for r in caplog.records))
        before = len(tags)
        await eventually(lambda: len(tags) > before)  # still inventorying afterwards
        assert client.is_alive()


async def test_a_frame_shorter_than_its_header_kills_sllurps_loop_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # sllurp's decoder raises struct.error here and its receive thread exits (logged), leaving
    # the socket open: the driver above it needs a watchdog, which is what this shows.
    caplog.set_level(logging.ERROR, logger="sllurp")
    scenario = portal(faults={"malformed_frame_at_s": 2.0, "malformed": "short_length"})
    async with LlrpEmulator(scenario) as emu, sllurp_client(emu) as (client, _tags):
        await eventually(lambda: not client.is_alive())
        assert any("main loop" in r.getMessage() for r in caplog.records)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, msg: f.Message
) -> f.Message:
    writer.write(msg.encode())
    return await receive(reader)


async def receive(reader: asyncio.StreamReader) -> f.Message:
    head = await asyncio.wait_for(reader.readexactly(10), 5)
    length = f.read_header(head).length
    return f.decode_message(head + await reader.readexactly(length - 10))


async def test_a_raw_peer_gets_llrp_status_errors_and_only_one_client_is_served() -> None:
    async with LlrpEmulator(portal()) as emu:
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        try:
            hello = await receive(reader)
            assert isinstance(hello, f.ReaderEventNotification)
            assert hello.data.connection_attempt == f.CONNECTION_SUCCESS

            reply = await exchange(reader, writer, f.Bare(f.GET_ROSPECS, 77))
            assert reply == f.StatusResponse(f.ERROR_MESSAGE, 77, reply.status)  # type: ignore[attr-defined]
            assert (
                isinstance(reply, f.StatusResponse) and reply.status.code == f.M_UNSUPPORTED_MESSAGE
            )

            reply = await exchange(reader, writer, f.CustomMessage(78, 4242, 1))
            assert (
                isinstance(reply, f.StatusResponse)
                and reply.kind == f.ERROR_MESSAGE
                and reply.msg_id == 78
            )

            bad = f.ROSpec(5, f.ROBoundarySpec(), (f.AISpec((9,)),))
            reply = await exchange(reader, writer, f.AddROSpec(79, bad))
            assert isinstance(reply, f.StatusResponse) and reply.kind == f.ADD_ROSPEC_RESPONSE
            assert (
                reply.msg_id == 79
                and not reply.status.ok
                and "antennas" in reply.status.description
            )

            reply = await exchange(reader, writer, f.SpecCommand(f.START_ROSPEC, 80, 5))
            assert isinstance(reply, f.StatusResponse) and reply.status.code == f.M_FIELD_ERROR

            truncated = f.AddROSpec(81, bad).encode()[:-3]
            truncated = truncated[:2] + len(truncated).to_bytes(4, "big") + truncated[6:]
            writer.write(truncated)
            reply = await receive(reader)
            assert isinstance(reply, f.StatusResponse) and reply.kind == f.ADD_ROSPEC_RESPONSE
            assert reply.msg_id == 81 and reply.status.code == f.M_PARAMETER_ERROR

            caps = await exchange(reader, writer, f.GetReaderCapabilities(82))
            assert isinstance(caps, f.GetReaderCapabilitiesResponse) and caps.general is not None
            assert caps.general.max_antennas == 4

            second_reader, second_writer = await asyncio.open_connection("127.0.0.1", emu.port)
            refused = await receive(second_reader)
            assert isinstance(refused, f.ReaderEventNotification)
            assert refused.data.connection_attempt == f.CONNECTION_FAILED_CLIENT_INITIATED_EXISTS
            assert await second_reader.read() == b""  # and the reader closed it
            second_writer.close()
            await second_writer.wait_closed()

            reply = await exchange(reader, writer, f.Bare(f.CLOSE_CONNECTION, 83))
            assert reply == f.StatusResponse(f.CLOSE_CONNECTION_RESPONSE, 83, f.LLRPStatus())
            assert await reader.read() == b""
        finally:
            writer.close()
            await writer.wait_closed()
    assert [c.accepted for c in emu.connections] == [True, False]


async def test_flood_mode_streams_the_requested_number_of_reads() -> None:
    scenario = portal(
        flood={"tags": 50, "tags_per_report": 25, "reports_per_write": 4, "total_reads": 1000}
    )
    async with LlrpEmulator(scenario) as emu, sllurp_client(emu) as (_client, tags):
        await eventually(lambda: len(tags) >= 1000)
        await asyncio.sleep(0.1)
        assert len(tags) == 1000
        assert {t["EPC"].decode() for t in tags} == set(EPCS)
    assert emu.connections[0].tags_reported == 1000


def test_the_beam_is_broken_while_the_pallet_goes_through_the_door_only() -> None:
    inbound = dataclasses.replace(load_scenario(bundled_scenario("portal-inbound")), beam_gpi=1)
    beam = Beam(inbound)
    assert beam.changes(0.0, 60.0) == [True, False]  # one pallet: broken once, cleared once
    steps = [beam.changes(t / 10, (t + 1) / 10) for t in range(600)]
    assert [c for step in steps for c in step] == [True, False]  # however the time is cut
    broken_s = sum(beam.broken(t / 100) for t in range(6000)) / 100
    assert 1.0 < broken_s < 2.0  # a 1.2 m pallet at 1 m/s, and the curtain's depth
    parked = dataclasses.replace(load_scenario(bundled_scenario("portal-crossread")), beam_gpi=1)
    assert Beam(parked).changes(0.0, 600.0) == []  # tags parked by the door never break it


class _Frames:
    """The writer a session sends through: keeps the frames."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.frames.append(data)

    def is_closing(self) -> bool:
        return False


def _session_reports(late_by: float) -> list[list[tuple[int, int, int]]]:
    """The reports of one second of portal-inbound at 50 ms a report, the session's task
    running ``late_by`` seconds late each time: per report, (antenna, first, last seen)."""

    class _Emu:
        scenario = load_scenario(bundled_scenario("portal-inbound"))

    async def main() -> list[bytes]:
        out = _Frames()
        session = Session(_Emu(), None, out, ConnectionRecord("test", True))  # type: ignore[arg-type]
        session.clock_start, session.epoch_us = 0.0, 1_800_000_000_000_000
        stop = f.AISpecStopTrigger(trigger=1, duration_ms=50)
        spec = f.ROSpec(1, f.ROBoundarySpec(), (f.AISpec((0,), stop),))
        run = RoSpecRun(spec, f.ROSPEC_ACTIVE, 0.0, 5.0, 5.05)  # scene 5 s: the pallet
        now = 5.05
        while now < 6.0:
            now += late_by or 0.05
            session._reports_due(run, now)
        return out.frames

    reports = []
    for frame in asyncio.run(main()):
        msg = LLRPMessage(msgbytes=frame)
        tags = msg.msgdict["RO_ACCESS_REPORT"].get("TagReportData") or []
        reports.append(
            sorted(
                (t["AntennaID"], t["FirstSeenTimestampUTC"], t["LastSeenTimestampUTC"])
                for t in tags
            )
        )
    return reports


def test_a_late_session_sends_the_reports_it_owes_one_per_interval() -> None:
    """A reader has a CPU of its own: an emulator that shares a loaded host and runs late
    sends the same reports (one per 50 ms of the scenario) as one on time, so what the
    agent judges does not depend on the host's load."""
    on_time = _session_reports(0)
    late = _session_reports(0.4)  # the task runs every 400 ms instead of every 50
    assert len(on_time) >= 18 and sum(map(len, on_time)) > 100
    assert late[: len(on_time)] == on_time
