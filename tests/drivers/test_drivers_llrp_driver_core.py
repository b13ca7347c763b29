"""The LLRP driver's pieces without a socket: settings, framing, watchdog, clock offset,
tag reports to Reads, rejection texts, GPO frames.

Frames are built with ``drivers.llrp_frames`` (the emulator's codec, written
independently of sllurp) and decoded by sllurp, as on the wire.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from sllurp.llrp import LLRPClient

from agent.clock import Clock, Uuid7
from agent.config import load_config
from agent.errors import ConfigError, DriverError
from agent.model import MAX_INT
from drivers import llrp_frames as f
from drivers.base import ReadFactory
from drivers.llrp import LlrpReader
from drivers.llrp_link import (
    ClockOffset,
    LinkError,
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
from drivers.llrp_settings import SEARCH_MODES, LlrpSettings, reader_config
from drivers.llrp_setup import (
    AWAITED,
    OPTIONAL,
    REQUIRED,
    Client,
    Request,
    Sent,
    Setup,
    StartTrigger,
    StartWatch,
    answered,
    rospec_started,
    spec_frame,
    succeeded,
)

EPC1 = bytes.fromhex("30340242201d8840009a4e21")
EPC2 = bytes.fromhex("30340242201d8840009a4e22")


def factory(wall: float = 1_700_000_000.0) -> ReadFactory:
    return ReadFactory(Clock(wall=lambda: wall, mono_ns=lambda: 42, boot_id="b"), Uuid7())


def sllurp_body(msg: f.Message) -> tuple[str, dict]:
    decoded = decode(msg.encode())
    return decoded.msgname, decoded.msgdict[decoded.msgname]


# ---- settings -------------------------------------------------------------------------------


def test_settings_map_onto_sllurp_config_and_rospec() -> None:
    s = LlrpSettings(
        host="10.0.0.5",
        antennas=[1, 3],
        tx_power_dbm=27.5,
        session=1,
        tag_population=100,
        mode_identifier=1002,
        report_every_n_tags=10,
        report_timeout_ms=100,
        keepalive_s=2.5,
        impinj_extensions=True,
        search_mode="dual-target",
        gpi_port=2,
    )
    c = reader_config(s)
    assert c.antennas == [1, 3]
    assert c.tx_power_dbm == {1: 27.5, 3: 27.5}
    assert (c.session, c.tag_population, c.mode_identifier) == (1, 100, 1002)
    assert (c.report_every_n_tags, c.report_timeout_ms) == (10, 100)
    assert c.keepalive_interval == 2500
    assert c.impinj_search_mode == SEARCH_MODES["dual-target"] == 2
    assert c.impinj_extended_configuration is True
    assert c.reconnect is False and c.reset_on_connect and c.start_inventory
    for key in ("AntennaID", "PeakRSSI", "FirstSeenTimestamp", "LastSeenTimestamp", "TagSeenCount"):
        assert c.tag_content_selector[f"Enable{key}"] is True
    assert c.event_selector["GPIEvent"] is True
    assert c.gpi_ports_config == {2: True}
    # The ROSpec sllurp builds from it carries the per-antenna session and population.
    rospec = LLRPClient(c).getROSpec()
    confs = rospec["AISpec"][0]["InventoryParameterSpec"][0]["AntennaConfiguration"]
    assert [a["AntennaID"] for a in confs] == [1, 3]
    ctl = confs[0]["C1G2InventoryCommand"][0]["C1G2SingulationControl"]
    assert (ctl["Session"], ctl["TagPopulation"]) == (1, 100)
    assert confs[0]["C1G2InventoryCommand"][0]["ImpinjInventorySearchMode"] == {
        "InventorySearchMode": 2
    }
    assert rospec["ROReportSpec"]["TagReportContentSelector"]["EnableFirstSeenTimestamp"]


def test_each_connection_gets_a_fresh_config() -> None:
    s = LlrpSettings(host="r")
    a, b = reader_config(s), reader_config(s)
    a.tx_power[1] = 7  # sllurp does this while connecting
    assert b.tx_power == {1: 0}  # 0 = the reader's maximum
    assert a.tx_power_dbm is None and a.event_selector["GPIEvent"] is False


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"search_mode": "single-target"}, "search_mode"),
        ({"antennas": [1, 1]}, "antennas"),
        ({"antennas": []}, "antennas"),
        ({"gpo_good": 1, "gpo_bad": 1}, "gpo_bad"),
        ({"gpo_good": 2, "gpo_alarm": 2}, "gpo_alarm"),
        ({"reconnect_initial_s": 5.0, "reconnect_max_s": 1.0}, "reconnect_max_s"),
    ],
)
def test_inconsistent_settings_are_refused_naming_the_key(changes: dict, key: str) -> None:
    s = LlrpSettings(host="r", **changes)
    assert [k for k, _ in s.check()] == [key]
    with pytest.raises(DriverError, match=rf"device dock-1: {key}: expected"):
        LlrpReader("dock-1", s, factory())


CONFIG = """
[agent]
id = "dock-1"
state_dir = "{state}"
[sync]
url = "http://127.0.0.1:9/"
token_file = "{token}"
[[devices]]
id = "portal"
driver = "llrp"
{options}
"""


def _load(tmp_path: Path, options: str):
    token = tmp_path / "token"
    token.write_text("t")
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG.format(state=tmp_path, token=token, options=options))
    return load_config(path)


def test_config_file_fills_the_settings(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        'host = "10.0.0.5"\nantennas = [1, 2]\ntx_power_dbm = 30\nsearch_mode = "dual-target"\n'
        "impinj_extensions = true\ngpo_good = 1\n",
    )
    s = cfg.devices[0].options
    assert isinstance(s, LlrpSettings)
    assert (s.host, s.port, s.antennas, s.tx_power_dbm) == ("10.0.0.5", 5084, [1, 2], 30.0)
    assert s.search_mode == "dual-target" and s.gpo_good == 1


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ('host = "r"\nsession = 4', "devices[0].session"),
        ('host = "r"\nantennas = [0]', "devices[0].antennas"),
        ('host = "r"\nsearch_mode = "fast"', "devices[0].search_mode"),
        ('host = "r"\nkeepalive_misses = 0', "devices[0].keepalive_misses"),
        ('host = "r"\ntx_power = 30', "devices[0].tx_power"),
        ("port = 5084", "devices[0].host"),
        ('host = "r"\nstart_window_s = 0', "devices[0].start_window_s"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, options: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, options)
    assert info.value.key == key


def test_a_start_trigger_that_is_not_one_says_which_are(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, 'host = "r"\nstart_trigger = "explicitly"')
    assert info.value.key == "devices[0].start_trigger"
    assert "explicit" in str(info.value) and "immediate" in str(info.value)
    ok = _load(tmp_path, 'host = "r"\nstart_trigger = "explicit"\nstart_window_s = 1.5')
    s = ok.devices[0].options
    assert isinstance(s, LlrpSettings)
    assert (s.start_trigger, s.start_window_s) == ("explicit", 1.5)


def test_example_config_loads() -> None:
    cfg = load_config(Path(__file__).parents[2] / "config" / "llrp-reader.toml")
    assert any(d.driver == "llrp" for d in cfg.devices)


# ---- framing ------------------------------------------------------------------------------------


def test_frame_length_reads_the_header_and_refuses_corrupt_lengths() -> None:
    keepalive = f.Bare(f.KEEPALIVE, 7).encode()
    assert frame_length(keepalive[:10]) == len(keepalive) == 10
    with pytest.raises(LinkError, match="length 3"):
        frame_length(struct.pack("!HII", (1 << 10) | 62, 3, 1))
    with pytest.raises(LinkError, match="length 4294967295"):
        frame_length(struct.pack("!HII", (1 << 10) | 61, 0xFFFFFFFF, 1))
    with pytest.raises(LinkError, match="version 5"):
        frame_length(struct.pack("!HII", (5 << 10) | 62, 10, 1))


def test_a_frame_sllurp_cannot_decode_is_a_link_error_naming_it() -> None:
    frame = struct.pack("!HII", (1 << 10) | 999, 14, 1) + b"\x00\x01\x02\x03"
    with pytest.raises(LinkError, match=r"malformed frame .*message type 999, 14 bytes"):
        decode(frame)


# ---- watchdog and clock offset ----------------------------------------------------------------


def test_watchdog_declares_death_after_the_missed_keepalives() -> None:
    dog = Watchdog(keepalive_s=5, misses=3, now=100.0)
    assert dog.remaining(100.0) == 15
    assert dog.remaining(110.0) == 5
    dog.heard(110.0)  # any frame is life
    assert dog.remaining(124.0) == 1
    assert dog.remaining(126.0) < 0
    assert dog.why(126.0) == "no keepalive for 16 s (expected every 5 s)"


def test_clock_offset_is_the_least_delayed_report_over_a_window() -> None:
    off = ClockOffset(window=3)
    assert off.offset_us is None and off.to_agent(5) is None
    reader_ahead = 3_600_000_000  # the reader's clock is an hour fast
    for agent_us, delay_us in ((1_000_000, 40_000), (2_000_000, 5_000), (3_000_000, 90_000)):
        off.observe(agent_us, agent_us + reader_ahead - delay_us)
    assert off.offset_us == -reader_ahead + 5_000  # the 5 ms report is the closest
    assert off.to_agent(10 * reader_ahead) == 10 * reader_ahead - reader_ahead + 5_000
    # The window moves on: a reader clock stepped back to the truth is followed.
    for agent_us in (4_000_000, 5_000_000, 6_000_000):
        off.observe(agent_us, agent_us - 1_000)
    assert off.offset_us == 1_000


# ---- tag reports -----------------------------------------------------------------------------


def test_a_report_becomes_one_read_per_tag_with_reader_times() -> None:
    report = f.ROAccessReport(
        9,
        (
            f.TagReportData(
                EPC1,
                antenna_id=2,
                peak_rssi=-52,
                first_seen=1_700_000_000_000_000,
                last_seen=1_700_000_000_400_000,
                tag_seen_count=7,
            ),
            f.TagReportData(EPC2, epc96=False, antenna_id=1, last_seen=1_700_000_000_900_000),
            f.TagReportData(EPC1[:8], epc96=False),
        ),
    )
    name, body = sllurp_body(report)
    assert name == "RO_ACCESS_REPORT"
    tags = body["TagReportData"]
    reads, timed = tag_reads("portal", tags, factory().make)
    assert [r.data for r in reads] == [EPC1, EPC2, EPC1[:8]]
    assert {r.kind for r in reads} == {"tag"} and {r.device for r in reads} == {"portal"}
    assert (reads[0].antenna, reads[0].rssi, reads[0].seen_count) == (2, -52.0, 7)
    assert (reads[1].antenna, reads[1].rssi, reads[1].seen_count) == (1, None, None)
    assert all(r.fault is None for r in reads)
    assert [(r.id, first, last) for r, first, last in timed] == [
        (reads[0].id, 1_700_000_000_000_000, 1_700_000_000_400_000),
        (reads[1].id, None, 1_700_000_000_900_000),
    ]
    assert newest_seen(tags) == 1_700_000_000_900_000


def test_a_tag_without_an_epc_is_kept_with_a_fault() -> None:
    reads, _ = tag_reads("p", [{"AntennaID": 1}, {"EPC": b""}, "junk"], factory().make)
    assert [r.fault for r in reads] == [
        "tag report without an EPC",
        "tag report with an empty EPC",
        "tag report that is not a tag",
    ]


def test_gpi_event_from_a_reader_event_notification() -> None:
    gpi = f.Tlv(248, struct.pack("!HB", 3, 0x80))
    note = f.ReaderEventNotification(4, f.ReaderEventNotificationData(f.UTCTimestamp(1), (gpi,)))
    assert gpi_event(sllurp_body(note)[1]) == (3, True)
    assert gpi_event({"ReaderEventNotificationData": {}}) is None


# ---- what a person reads ------------------------------------------------------------------------


def test_a_rejection_names_the_request_the_status_and_the_readers_words() -> None:
    resp = f.StatusResponse(
        f.SET_READER_CONFIG_RESPONSE,
        5,
        f.status(
            f.M_FIELD_ERROR, "KeepaliveSpec: bad interval", field_num=1, field_code=f.A_OUT_OF_RANGE
        ),
    )
    name, body = sllurp_body(resp)
    assert rejection(name, body) == (
        "reader rejected SET_READER_CONFIG: FieldError: KeepaliveSpec: bad interval "
        "(field 1: A_OutOfRange)"
    )
    ok = f.StatusResponse(f.SET_READER_CONFIG_RESPONSE, 6, f.status())
    assert rejection(*sllurp_body(ok)) is None
    err = f.StatusResponse(f.ERROR_MESSAGE, 7, f.status(f.M_UNSUPPORTED_MESSAGE, "no"))
    assert rejection(*sllurp_body(err)) == (
        "reader could not take a message (ERROR_MESSAGE): UnsupportedMessage: no"
    )


def test_a_session_turned_down_says_another_client_holds_the_reader() -> None:
    data = f.ReaderEventNotificationData(
        f.UTCTimestamp(1), (f.ConnectionAttemptEvent(f.CONNECTION_FAILED_CLIENT_INITIATED_EXISTS),)
    )
    why = refused_session(sllurp_body(f.ReaderEventNotification(1, data))[1])
    assert why is not None and "another LLRP client is connected" in why
    good = f.ReaderEventNotificationData(f.UTCTimestamp(1), (f.ConnectionAttemptEvent(0),))
    assert refused_session(sllurp_body(f.ReaderEventNotification(1, good))[1]) is None


def test_connection_refused_says_impinj_readers_need_llrp_mode() -> None:
    why = connect_problem("10.0.0.5", 5084, ConnectionRefusedError(111, "refused"), 5)
    assert why.startswith("connection to 10.0.0.5:5084 refused")
    assert "firmware 8" in why and "RFID interface set to LLRP" in why
    assert "within 5 s" in connect_problem("h", 1, TimeoutError(), 5)
    assert "cannot resolve nowhere" in connect_problem(
        "nowhere", 1, socket.gaierror(-2, "Name or service not known"), 5
    )


def test_gpo_frame_is_a_set_reader_config_with_gpo_write_data() -> None:
    msg = f.decode_message(gpo_frame(0x80000001, 2, True))
    assert isinstance(msg, f.SetReaderConfig)
    assert msg.msg_id == 0x80000001 and msg.reset is False
    assert msg.other == (f.Tlv(219, struct.pack("!HB", 2, 0x80)),)
    off = f.decode_message(gpo_frame(5, 2, False))
    assert isinstance(off, f.SetReaderConfig)
    assert off.other == (f.Tlv(219, struct.pack("!HB", 2, 0)),)


# ---- the setup sequence's tolerance (drivers/llrp_setup) ----------------------------------------


def test_sent_requests_are_matched_to_their_answers_by_id() -> None:
    sent = Sent()
    sent.note(spec_frame("DELETE_ROSPEC", 7, 0))
    sent.note(struct.pack("!HII", (1 << 10) | 64, 10, 8))  # ENABLE_EVENTS_AND_REPORTS
    sent.note(struct.pack("!HII", (1 << 10) | 999, 10, 9))  # not a request we track
    assert sent.answer(8) == Request("ENABLE_EVENTS_AND_REPORTS")
    assert sent.answer(8) is None  # answered once
    assert sent.answer(7) == Request("DELETE_ROSPEC", 0)
    assert sent.answer(9) is None and sent.answer("7") is None
    for i in range(200):  # bounded: the oldest go first
        sent.note(struct.pack("!HII", (1 << 10) | 72, 10, 100 + i))
    assert sent.answer(100) is None and sent.answer(299) == Request("KEEPALIVE_ACK")
    assert answered("ERROR_MESSAGE", None) is None
    assert answered("ADD_ROSPEC_RESPONSE", None) == "ADD_ROSPEC"


def test_optional_and_required_steps_do_not_overlap() -> None:
    assert not set(OPTIONAL) & set(REQUIRED)
    assert set(AWAITED) == set(OPTIONAL)


def test_start_watch_asks_for_start_rospec_only_when_nothing_ran() -> None:
    watch = StartWatch("immediate", 2.0)
    assert not watch.due(100.0)  # nothing enabled yet
    assert watch.enabled(10.0) is False
    assert not watch.due(11.9) and watch.due(12.0)
    watch.heard_start()
    assert not watch.due(50.0)
    watch.reset()
    assert not watch.due(50.0)
    explicit = StartWatch("explicit", 2.0)
    assert explicit.enabled(10.0) is True and not explicit.due(99.0)


def test_explicit_start_trigger_makes_the_rospec_wait_for_start() -> None:
    s = LlrpSettings(host="r")
    assert reader_config(s).event_selector["ROSpecEvent"] is True  # "ROSpec started" is heard

    def trigger(start: StartTrigger) -> str:
        rospec = Client(reader_config(s), start_trigger=start).getROSpec()
        return str(rospec["ROBoundarySpec"]["ROSpecStartTrigger"]["ROSpecStartTriggerType"])

    assert (trigger("immediate"), trigger("explicit")) == ("Immediate", "Null")


def test_a_synthesised_success_and_rospec_start_events() -> None:
    message = succeeded("DELETE_ROSPEC_RESPONSE", 5)
    assert message.isSuccess() and message.getName() == "DELETE_ROSPEC_RESPONSE"
    assert (
        rospec_started(
            {
                "ReaderEventNotificationData": {
                    "ROSpecEvent": {"EventType": "Start_of_ROSpec", "ROSpecID": 1}
                }
            }
        )
        == 1
    )
    assert (
        rospec_started(
            {
                "ReaderEventNotificationData": {
                    "ROSpecEvent": {"EventType": "End_of_ROSpec", "ROSpecID": 1}
                }
            }
        )
        is None
    )


def test_setup_skips_only_refusals_of_what_it_sent() -> None:
    setup = Setup("portal", "r:5084", "immediate", 3.0)
    why = "reader could not take a message (ERROR_MESSAGE): UnsupportedMessage: no"
    setup.sent.note(struct.pack("!HII", (1 << 10) | 2, 10, 4))  # GET_READER_CONFIG, id 4
    answer = setup.refused("ERROR_MESSAGE", 4, why, closing=False)
    assert answer is not None and answer.send is None and answer.feed is not None
    assert answer.feed.msgname == "GET_READER_CONFIG_RESPONSE" and answer.feed.isSuccess()
    assert answer.feed.msgdict["GET_READER_CONFIG_RESPONSE"]["ID"] == 4  # what sllurp waits for
    assert setup.quirks["GET_READER_CONFIG"].endswith("skipped: nothing in the answer is used")
    # The same refusal for an id we never sent is a fault; while closing, sllurp's business.
    with pytest.raises(LinkError, match="ERROR_MESSAGE"):
        setup.refused("ERROR_MESSAGE", 4, why, closing=False)
    assert setup.refused("ERROR_MESSAGE", 4, why, closing=True) is None
    # DELETE_ROSPEC 0 refused: our own DELETE_ROSPEC 1 goes out, its answer stands in.
    setup.sent.note(spec_frame("DELETE_ROSPEC", 9, 0))
    fallback = setup.refused("DELETE_ROSPEC_RESPONSE", 9, "reader rejected DELETE_ROSPEC: x", False)
    assert fallback is not None and fallback.send is not None and fallback.feed is None
    own_id = struct.unpack_from("!I", fallback.send, 6)[0]
    assert fallback.send == spec_frame("DELETE_ROSPEC", own_id, 1)
    own = setup.own(own_id)
    assert own == ("cleanup", 9)
    stand_in = setup.own_answer(own, "DELETE_ROSPEC_RESPONSE", {"LLRPStatus": {}}, False).feed
    assert stand_in is not None and stand_in.msgdict["DELETE_ROSPEC_RESPONSE"]["ID"] == 9
    # A refused DELETE_ROSPEC of one ROSpec is no cleanup of ours: a fault.
    setup.sent.note(spec_frame("DELETE_ROSPEC", 10, 5))
    with pytest.raises(LinkError):
        setup.refused("DELETE_ROSPEC_RESPONSE", 10, "reader rejected DELETE_ROSPEC: x", False)


def test_the_newest_stamp_of_a_report_takes_only_usable_stamps() -> None:
    """Zero is a stamp; negatives, past MAX_INT, floats, bools and non-tags are not."""
    assert newest_seen([{"LastSeenTimestampUTC": 0}]) == 0
    assert newest_seen([{"LastSeenTimestampUTC": -5}, "junk", {}]) is None
    bad: list[object] = [
        {"LastSeenTimestampUTC": MAX_INT + 1},
        {"LastSeenTimestampUTC": 9.0e15},
        {"LastSeenTimestampUTC": True},
        {"LastSeenTimestampUTC": 7},
        {"LastSeenTimestampUTC": MAX_INT},
        {"LastSeenTimestampUTC": 3},
    ]
    assert newest_seen(bad) == MAX_INT
    assert newest_seen([]) is None
