"""drivers/llrp_frames.py: the LLRP 1.0.1 codec the emulator speaks (round trips, goldens, totality)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sllurp.llrp import LLRPMessage
from sllurp.llrp_proto import LLRPROSpec

from drivers import llrp_frames as f

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
s8 = st.integers(-128, 127)
s16 = st.integers(-32768, 32767)
text = st.text(max_size=20)
customs = st.lists(st.builds(f.Custom, u32, u32, st.binary(max_size=8)), max_size=2).map(tuple)
opt = st.none

field_errors = st.builds(f.FieldError, u16, u16)
statuses = st.builds(
    f.LLRPStatus,
    u16,
    text,
    opt() | field_errors,
    opt() | st.builds(f.ParameterError, u16, u16, opt() | field_errors),
)
tag_reports = st.builds(
    f.TagReportData,
    st.binary(min_size=12, max_size=12),
    st.just(True),
    st.just(-1),
    **{
        name: opt() | strat
        for name, strat in {
            "rospec_id": u32,
            "spec_index": u16,
            "inventory_parameter_spec_id": u16,
            "antenna_id": u16,
            "peak_rssi": s8,
            "channel_index": u16,
            "first_seen": u64,
            "first_seen_uptime": u64,
            "last_seen": u64,
            "last_seen_uptime": u64,
            "tag_seen_count": u16,
            "pc": u16,
            "crc": u16,
            "access_spec_id": u32,
        }.items()
    },
    other=customs,
) | st.builds(
    f.TagReportData,
    st.binary(min_size=1, max_size=62),
    epc96=st.just(False),
    antenna_id=opt() | u16,
    peak_rssi=opt() | s8,
)
selectors = st.builds(
    f.TagReportContentSelector,
    *[st.booleans()] * 10,
    epc_memory=opt() | st.builds(f.C1G2EPCMemorySelector, st.booleans(), st.booleans()),
)
rospecs = st.builds(
    f.ROSpec,
    u32,
    st.builds(
        f.ROBoundarySpec,
        st.builds(f.ROSpecStartTrigger, u8),
        st.builds(f.ROSpecStopTrigger, u8, u32),
    ),
    st.lists(
        st.builds(
            f.AISpec,
            st.lists(u16, max_size=4).map(tuple),
            st.builds(
                f.AISpecStopTrigger,
                u8,
                u32,
                opt() | st.builds(f.TagObservationTrigger, u8, u16, u16, u16, u32),
            ),
            st.lists(st.builds(f.Tlv, st.just(186), st.binary(max_size=6)), max_size=2).map(tuple),
        ),
        min_size=1,
        max_size=2,
    ).map(tuple),
    u8,
    u8,
    opt() | st.builds(f.ROReportSpec, u8, u16, selectors),
)
capabilities = st.builds(
    f.GetReaderCapabilitiesResponse,
    u32,
    statuses,
    opt()
    | st.builds(
        f.GeneralDeviceCapabilities,
        u16,
        text,
        u32,
        u32,
        st.booleans(),
        st.booleans(),
        st.lists(st.builds(f.ReceiveSensitivityTableEntry, u16, s16), max_size=3).map(tuple),
        st.builds(f.GPIOCapabilities, u16, u16),
        st.lists(
            st.builds(f.PerAntennaAirProtocol, u16, st.lists(u8, max_size=3).map(tuple)), max_size=3
        ).map(tuple),
    ),
    opt() | st.builds(f.LLRPCapabilities, *[st.booleans()] * 5, u8, u16, u32, u32, u32, u32, u32),
    opt()
    | st.builds(
        f.RegulatoryCapabilities,
        u16,
        u16,
        opt()
        | st.builds(
            f.UHFBandCapabilities,
            st.lists(st.builds(f.TransmitPowerLevelTableEntry, u16, s16), max_size=4).map(tuple),
            st.builds(
                f.FrequencyInformation,
                st.booleans(),
                st.lists(
                    st.builds(f.FrequencyHopTable, u8, st.lists(u32, max_size=5).map(tuple)),
                    max_size=2,
                ).map(tuple),
            ),
            st.builds(
                f.UHFC1G2RFModeTable,
                st.lists(
                    st.builds(
                        f.UHFC1G2RFModeTableEntry,
                        u32,
                        st.integers(0, 1),
                        st.booleans(),
                        u8,
                        u8,
                        u8,
                        u32,
                        u32,
                        u32,
                        u32,
                        u32,
                    ),
                    max_size=3,
                ).map(tuple),
            ),
        ),
    ),
    opt() | st.builds(f.C1G2LLRPCapabilities, st.booleans(), st.booleans(), u16),
)
messages = st.one_of(
    capabilities,
    st.builds(f.GetReaderCapabilities, u32, u8, customs),
    st.builds(f.GetReaderConfig, u32, u16, u8, u16, u16, customs),
    st.builds(
        f.SetReaderConfig,
        u32,
        st.booleans(),
        opt()
        | st.builds(
            f.ReaderEventNotificationSpec,
            st.lists(st.builds(f.EventNotificationState, u16, st.booleans()), max_size=4).map(
                tuple
            ),
        ),
        st.lists(st.builds(f.AntennaProperties, u16, st.booleans(), s16), max_size=3).map(tuple),
        opt() | st.builds(f.ROReportSpec, u8, u16, selectors),
        opt() | st.builds(f.AccessReportSpec, u8),
        opt() | st.builds(f.KeepaliveSpec, u8, u32),
        opt() | st.builds(f.EventsAndReports, st.booleans()),
        customs,
    ),
    st.builds(
        f.GetReaderConfigResponse,
        u32,
        statuses,
        opt() | st.builds(f.Identification, u8, st.binary(max_size=8)),
        st.lists(st.builds(f.AntennaProperties, u16, st.booleans(), s16), max_size=3).map(tuple),
        keepalive=opt() | st.builds(f.KeepaliveSpec, u8, u32),
    ),
    st.builds(f.AddROSpec, u32, rospecs),
    st.builds(f.ROAccessReport, u32, st.lists(tag_reports, max_size=5).map(tuple), customs),
    st.builds(
        f.ReaderEventNotification,
        u32,
        st.builds(
            f.ReaderEventNotificationData,
            st.builds(f.UTCTimestamp, u64) | st.builds(f.Uptime, u64),
            st.lists(
                st.builds(f.ConnectionAttemptEvent, u16)
                | st.just(f.ConnectionCloseEvent())
                | st.builds(f.ROSpecEvent, u8, u32, u32),
                max_size=2,
            ).map(tuple),
        ),
    ),
    st.builds(
        f.SpecCommand,
        st.sampled_from([f.DELETE_ROSPEC, f.START_ROSPEC, f.ENABLE_ROSPEC, f.DELETE_ACCESSSPEC]),
        u32,
        u32,
    ),
    st.builds(
        f.StatusResponse,
        st.sampled_from([f.ADD_ROSPEC_RESPONSE, f.ERROR_MESSAGE, f.CLOSE_CONNECTION_RESPONSE]),
        u32,
        statuses,
    ),
    st.builds(f.Bare, st.sampled_from([f.KEEPALIVE, f.KEEPALIVE_ACK, f.CLOSE_CONNECTION]), u32),
    st.builds(f.CustomMessage, u32, u32, u8, st.binary(max_size=16)),
)


@given(messages)
def test_every_message_survives_encode_then_decode(msg: f.Message) -> None:
    frame = msg.encode()
    assert f.read_header(frame).length == len(frame)
    assert f.decode_message(frame) == msg


@given(st.lists(messages, min_size=1, max_size=4), st.integers(1, 64))
def test_a_stream_cut_anywhere_splits_back_into_the_same_frames(
    msgs: list[f.Message], cut: int
) -> None:
    stream = b"".join(m.encode() for m in msgs)
    got: list[bytes] = []
    rest = b""
    for i in range(0, len(stream), cut):
        frames, rest = f.split_frames(rest + stream[i : i + cut])
        got.extend(frames)
    assert rest == b""
    assert [f.decode_message(frame) for frame in got] == msgs


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_frame_error(data: bytes) -> None:
    with contextlib.suppress(f.FrameError):
        f.decode_message(data)


@given(messages, st.data())
def test_a_frame_with_a_byte_changed_or_cut_decodes_or_raises_frame_error(
    msg: f.Message, data: st.DataObject
) -> None:
    frame = bytearray(msg.encode())
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] = data.draw(u8)
    for candidate in (bytes(frame), bytes(frame[: data.draw(st.integers(0, len(frame)))])):
        with contextlib.suppress(f.FrameError):
            f.decode_message(candidate)


def test_keepalive_golden_frame_matches_the_spec_layout() -> None:
    # Rsvd(3)=0 Ver(3)=1 Type(10)=62 → 0x043E; length 10; id 0x01020304; no body
    assert f.Bare(f.KEEPALIVE, 0x01020304).encode() == bytes.fromhex("043e0000000a01020304")
    assert f.decode_message(bytes.fromhex("04480000000a00000007")) == f.Bare(f.KEEPALIVE_ACK, 7)


def test_tag_report_golden_frame_uses_tv_parameters() -> None:
    epc = bytes.fromhex("3034257bf40c0e4000000001")
    report = f.ROAccessReport(
        9, (f.TagReportData(epc, antenna_id=2, peak_rssi=-60, last_seen=1, tag_seen_count=3),)
    )
    body = (
        b"\x8d" + epc  # EPC-96: TV 13
        + b"\x81\x00\x02"  # AntennaID: TV 1, u16
        + b"\x86\xc4"  # PeakRSSI: TV 6, s8 (-60)
        + b"\x84" + (1).to_bytes(8, "big")  # LastSeenTimestampUTC: TV 4, u64
        + b"\x88\x00\x03"  # TagSeenCount: TV 8, u16
    )  # fmt: skip
    trd = struct.pack(">HH", 240, 4 + len(body)) + body
    assert report.encode() == struct.pack(">HII", 0x0400 | 61, 10 + len(trd), 9) + trd


def test_llrp_status_golden_parameter() -> None:
    status = f.LLRPStatus(f.M_UNSUPPORTED_MESSAGE, "no")
    assert status.encode() == bytes.fromhex("011f000a006d00026e6f")


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"\x04\x3e\x00", "shorter than the 10-byte header"),
        (bytes.fromhex("043e0000000401020304"), "below the 10-byte header"),
        (bytes.fromhex("043e0000000b01020304"), "header says 11 bytes"),
        (bytes.fromhex("083e0000000a01020304"), "protocol version 2"),
        (bytes.fromhex("07e70000000a00000001"), "unknown message type 999"),
        (bytes.fromhex("041a0000000a00000001"), "unsupported message GET_ROSPECS"),
        (bytes.fromhex("043d0000001200000001") + bytes.fromhex("00f000c88d000000"), "overruns"),
        (
            bytes.fromhex("043d0000001000000001") + bytes.fromhex("ff0000000000"),
            "unknown TV parameter",
        ),
        (bytes.fromhex("040d0000000a00000001"), "missing LLRPStatus"),
        (bytes.fromhex("04150000000c00000001") + b"\x00\x01", "truncated at spec id"),
    ],
)
def test_bad_frames_raise_frame_error_naming_the_problem(frame: bytes, expected: str) -> None:
    with pytest.raises(f.FrameError, match=expected):
        f.decode_message(frame)


def test_frame_error_carries_the_status_and_message_id_to_answer_with() -> None:
    with pytest.raises(f.FrameError) as info:
        f.decode_message(bytes.fromhex("041a0000000a0000002a"))
    assert (info.value.status, info.value.msg_type, info.value.msg_id) == (
        f.M_UNSUPPORTED_MESSAGE,
        f.GET_ROSPECS,
        42,
    )


def test_sllurp_decodes_what_we_encode() -> None:
    epc = bytes.fromhex("3034257bf40c0e4000000001")
    report = f.ROAccessReport(
        3, (f.TagReportData(epc, antenna_id=4, peak_rssi=-51, first_seen=10, tag_seen_count=2),)
    )
    got = LLRPMessage(msgbytes=report.encode()).msgdict["RO_ACCESS_REPORT"]
    assert got["ID"] == 3
    (tag,) = got["TagReportData"]
    assert (tag["EPC"], tag["AntennaID"], tag["PeakRSSI"], tag["FirstSeenTimestampUTC"]) == (
        epc.hex().encode(),
        4,
        -51,
        10,
    )
    event = f.ReaderEventNotification(
        1,
        f.ReaderEventNotificationData(
            f.UTCTimestamp(5), (f.ConnectionAttemptEvent(f.CONNECTION_SUCCESS),)
        ),
    )
    assert LLRPMessage(msgbytes=event.encode()).isSuccess()


def test_we_decode_what_sllurp_encodes() -> None:
    rospec = LLRPROSpec(None, 7, antennas=[1, 3], report_every_n_tags=25, report_timeout_ms=40)
    sent = LLRPMessage(msgdict={"ADD_ROSPEC": {"ID": 11, "ROSpecID": 7, "ROSpec": rospec}})
    msg = f.decode_message(sent.msgbytes)
    assert isinstance(msg, f.AddROSpec)
    assert msg.msg_id == 11
    assert msg.rospec.rospec_id == 7
    assert msg.rospec.boundary.start.trigger == 1  # Immediate
    (ai,) = msg.rospec.specs
    assert ai.antenna_ids == (1, 3)
    assert ai.stop.tag_observation == f.TagObservationTrigger(0, 25, 0, 0, 40)
    assert msg.rospec.report is not None
    assert msg.rospec.report.selector.antenna_id and msg.rospec.report.selector.peak_rssi
    keepalive = LLRPMessage(
        msgdict={
            "SET_READER_CONFIG": {
                "ID": 2,
                "ResetToFactoryDefaults": False,
                "KeepaliveSpec": {"KeepaliveTriggerType": 1, "TimeInterval": 250},
            }
        }
    )
    config = f.decode_message(keepalive.msgbytes)
    assert isinstance(config, f.SetReaderConfig)
    assert config.keepalive == f.KeepaliveSpec(1, 250)
