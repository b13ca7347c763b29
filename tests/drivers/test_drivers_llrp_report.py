"""Repeats of one tag on one antenna inside a report become one counted read: every tag
read stays accounted for (seen counts summed), with its first/last stamps and peak RSSI.
The reports are real LLRP bytes, encoded by our codec and decoded by sllurp."""

from __future__ import annotations

from sllurp.llrp import LLRPMessage

from agent.clock import Clock, Uuid7
from drivers import llrp_frames as f
from drivers.base import ReadFactory
from drivers.llrp_link import tag_reads
from drivers.llrp_report import folded_tag_reads, tag_reads_counted

EPC1 = bytes.fromhex("30340242201d8840009a4e21")
EPC2 = bytes.fromhex("30340242201d8840009a4e22")
T_US = 1_700_000_000_000_000


def factory() -> ReadFactory:
    clock = Clock(wall=lambda: 1_700_000_000.0, mono_ns=lambda: 1, boot_id="b")
    return ReadFactory(clock, Uuid7(clock.wall))


def decoded(*tags: f.TagReportData) -> list[dict]:
    msg = LLRPMessage(msgbytes=f.ROAccessReport(1, tags).encode())
    body = msg.msgdict["RO_ACCESS_REPORT"]["TagReportData"]
    return body if isinstance(body, list) else [body]


def entry(
    epc: bytes, antenna: int, at_us: int, rssi: int = -60, count: int | None = 1
) -> f.TagReportData:
    return f.TagReportData(
        epc,
        antenna_id=antenna,
        peak_rssi=rssi,
        first_seen=T_US + at_us,
        last_seen=T_US + at_us,
        tag_seen_count=count,
    )


def test_a_report_of_repeats_becomes_one_read_per_tag_and_antenna() -> None:
    # 100 entries: two tags, each on antennas 1 and 3, 25 singulations each, interleaved
    tags = [
        entry(epc, antenna, i * 1000, rssi=-70 + i % 13)
        for i in range(25)
        for epc, antenna in ((EPC1, 1), (EPC2, 1), (EPC1, 3), (EPC2, 3))
    ]
    reads = folded_tag_reads("portal", decoded(*tags), factory().batch(), offset_us=-42)
    assert [(r.data, r.antenna) for r in reads] == [(EPC1, 1), (EPC2, 1), (EPC1, 3), (EPC2, 3)]
    assert [r.seen_count for r in reads] == [25, 25, 25, 25]
    assert tag_reads_counted(reads) == 100
    assert {(r.reader_first_seen_us, r.reader_last_seen_us) for r in reads} == {
        (T_US, T_US + 24_000)
    }
    assert {r.rssi for r in reads} == {-58.0}  # the peak of -70 + 0..12
    assert {r.reader_offset_us for r in reads} == {-42}
    assert len({r.id for r in reads}) == 4


def test_seen_counts_the_reader_gave_are_summed_and_entries_without_one_count_one() -> None:
    tags = [
        entry(EPC1, 1, 0, count=7),
        entry(EPC1, 1, 500, count=None),
        entry(EPC1, 1, 900, count=2),
    ]
    (read,) = folded_tag_reads("p", decoded(*tags), factory().batch())
    assert read.seen_count == 10
    assert (read.reader_first_seen_us, read.reader_last_seen_us) == (T_US, T_US + 900)


def test_a_lone_entry_is_kept_as_it_came() -> None:
    tags = decoded(entry(EPC1, 2, 0, count=None), entry(EPC2, 2, 5, count=3))
    folded = folded_tag_reads("p", tags, factory().batch())
    plain, _ = tag_reads("p", tags, factory().batch())
    fields = (
        "data",
        "antenna",
        "rssi",
        "seen_count",
        "reader_first_seen_us",
        "reader_last_seen_us",
    )
    assert [[getattr(r, k) for k in fields] for r in folded] == [
        [getattr(r, k) for k in fields] for r in plain
    ]
    assert folded[0].seen_count is None


def test_faulty_entries_are_not_folded_and_keep_their_place() -> None:
    tags = [
        {"EPC": b"3034", "AntennaID": 1},
        {"AntennaID": 1},
        {"EPC": b"3034", "AntennaID": 1},
        "junk",
        {"EPC": b"", "AntennaID": 1},
        {"EPC": b"3035", "AntennaID": 1},
        {"EPC": b"zz", "AntennaID": 1},
        {"EPC": b"zz", "AntennaID": 1},
    ]
    reads = folded_tag_reads("p", tags, factory().batch())
    assert [(r.data, r.fault, r.seen_count) for r in reads] == [
        (b"\x30\x34", None, 2),
        (b"", "tag report without an EPC", None),
        (b"", "tag report that is not a tag", None),
        (b"", "tag report with an empty EPC", None),
        (b"\x30\x35", None, None),
        (b"", "tag report with an EPC that is not hex", 2),
    ]
    assert tag_reads_counted(reads) == len(tags)


def test_the_same_tag_on_two_antennas_stays_two_reads() -> None:
    reads = folded_tag_reads("p", decoded(entry(EPC1, 1, 0), entry(EPC1, 2, 0)), factory().batch())
    assert [r.antenna for r in reads] == [1, 2]


def test_an_epc_that_is_not_hex_among_good_entries_keeps_every_read_in_place() -> None:
    """No entry is odd but one EPC is not hex: the report's reads are made one by one."""
    tags = [
        {"EPC": b"3034", "AntennaID": 1},
        {"EPC": b"zz", "AntennaID": 2, "TagSeenCount": 3},
        {"EPC": b"3035", "AntennaID": 1},
        {"EPC": b"3034", "AntennaID": 1},
    ]
    reads = folded_tag_reads("p", tags, factory().batch())
    assert [(r.data, r.fault, r.antenna, r.seen_count) for r in reads] == [
        (b"\x30\x34", None, 1, 2),
        (b"", "tag report with an EPC that is not hex", 2, 3),
        (b"\x30\x35", None, 1, None),
    ]
    assert len({r.id for r in reads}) == 3
    assert tag_reads_counted(reads) == 6
