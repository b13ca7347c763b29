"""drivers/serial_scanner.py: framing and feedback as plain values, the driver on real ptys.

The driver opens the slave side of an ``os.openpty()`` pair by its path, the
test writes the scanner's bytes on the master and reads back what the driver
wrote (feedback). Unplugging is closing the master (the slave read gets EIO);
plugging back in is a by-id style symlink pointed at a fresh pty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tty
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from driver_kit import read_factory
from hypothesis import given
from hypothesis import strategies as st

from agent.cli import main
from agent.config import load_config
from agent.errors import ConfigError, DriverError
from agent.model import Feedback, Read
from drivers import DRIVERS
from drivers.base import Found
from drivers.serial_scanner import (
    READY_MAX,
    Frame,
    LineFramer,
    SerialScanner,
    SerialSettings,
    discover_ports,
    feedback_bytes,
    garbage,
    ssi_checksum,
    ssi_packet,
    take_ssi_replies,
)

T0 = 1_780_000_000.0


# ---- LineFramer: bytes in, frames out ------------------------------------------------------


def frames(terminator: Any, *chunks: bytes, keep: int = 4096) -> list[Frame]:
    framer = LineFramer(terminator, keep)
    out: list[Frame] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


def datas(found: list[Frame]) -> list[bytes]:
    return [f.data for f in found]


def test_cr_ends_at_cr_and_a_following_lf_is_part_of_the_terminator() -> None:
    assert datas(frames("cr", b"A1\rB2\r\nC3\r")) == [b"A1", b"B2", b"C3"]
    # the LF of a CR LF arriving in the next read is not an empty scan either
    framer = LineFramer("cr", 64)
    assert datas(framer.feed(b"A1\r")) == [b"A1"]
    assert framer.feed(b"\nB2\r") == [Frame(b"B2")]
    assert framer.blank_lines == 0


def test_cr_treats_a_lone_lf_as_data() -> None:
    assert datas(frames("cr", b"A\nB\r")) == [b"A\nB"]


def test_lf_ends_at_lf_and_drops_one_cr_before_it() -> None:
    assert datas(frames("lf", b"A1\nB2\r\nC\r3\n")) == [b"A1", b"B2", b"C\r3"]


def test_crlf_needs_both_bytes_even_split_across_reads() -> None:
    assert datas(frames("crlf", b"0950600013", b"4352\r", b"\n")) == [b"09506000134352"]
    # a lone CR or LF is data, so a mis-set scanner shows up as a bad read
    assert datas(frames("crlf", b"A\rB\nC\r\n")) == [b"A\rB\nC"]


@pytest.mark.parametrize("terminator", ["cr", "lf", "crlf"])
def test_blank_lines_are_not_scans(terminator: Any) -> None:
    framer = LineFramer(terminator, 64)
    assert framer.feed(b"\r\n\r\nX\r\n\r\n") == [Frame(b"X")]
    assert framer.blank_lines >= 2


@given(
    scans=st.lists(
        st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    terminator=st.sampled_from(["cr", "lf", "crlf"]),
)
def test_any_split_of_crlf_terminated_scans_gives_the_scans(
    scans: list[bytes], cuts: list[int], terminator: Any
) -> None:
    """A scanner sending CR LF works in every mode, however the bytes are split into reads."""
    stream = b"".join(s + b"\r\n" for s in scans)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert datas(frames(terminator, *chunks)) == scans


def test_over_long_line_keeps_a_bounded_prefix_and_counts_the_rest() -> None:
    framer = LineFramer("cr", 10)
    for _ in range(1000):  # 1 MB of line noise without a terminator
        assert framer.feed(b"x" * 1000) == []
        assert len(framer._buf) <= 10
    assert framer.feed(b"yy\rOK\r") == [Frame(b"x" * 10, 1_000_002 - 10), Frame(b"OK")]


def test_over_long_crlf_line_does_not_count_the_cr_of_its_terminator() -> None:
    assert frames("crlf", b"abcdef\r", b"\n", keep=4) == [Frame(b"abcd", 2)]


def test_none_ends_a_scan_only_on_flush() -> None:
    framer = LineFramer("none", 64)
    assert framer.feed(b"0950\r") == []
    assert framer.feed(b"6000\n") == []
    assert framer.flush("silence") == Frame(b"0950\r6000\n")
    assert framer.flush("silence") is None


def test_flush_of_an_unterminated_line_says_why() -> None:
    framer = LineFramer("cr", 64)
    framer.feed(b"PART")
    assert framer.flush("no cr terminator after 200 ms") == Frame(
        b"PART", 0, "no cr terminator after 200 ms"
    )


# ---- garbage ---------------------------------------------------------------------------------


def test_garbage_accepts_text_and_the_iso_15434_separators() -> None:
    assert garbage(b"0109506000134352\x1d10LOT42") is None
    assert garbage(b"[)>\x1e06\x1dP123\x1e\x04") is None
    assert garbage("café-Ω".encode()) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"12\x0034", "control byte 0x00 at offset 2"),
        (b"\x1b[31m", "control byte 0x1b at offset 0"),
        (b"AB\x7f", "control byte 0x7f at offset 2"),
        ("x\u0085".encode(), "control byte 0x85 at offset 1"),
        (b"\xf8\xfe\x80", "byte 0xf8 at offset 0 is not UTF-8 text"),
    ],
)
def test_garbage_names_the_byte_and_where(data: bytes, reason: str) -> None:
    found = garbage(data)
    assert found is not None
    assert found.startswith("garbage on the line: ")
    assert reason in found


# ---- feedback bytes --------------------------------------------------------------------------


def test_ssi_checksum_matches_zebra_published_packets() -> None:
    """Two packets printed in Zebra's DS457 guide (RSM over SSI), checksums and all."""
    command = bytes.fromhex("0A 80 04 00 00 06 20 00 00 FF FE 4D")
    response = bytes.fromhex("08 80 00 00 00 04 06 00 FF 6E")
    assert ssi_packet(0x80, bytes.fromhex("00 06 20 00 00 FF")) == command
    assert ssi_packet(0x80, bytes.fromhex("00 04 06 00"), source=0) == response


@given(opcode=st.integers(0, 255), data=st.binary(max_size=251), status=st.integers(0, 255))
def test_ssi_packet_layout_and_checksum_rule(opcode: int, data: bytes, status: int) -> None:
    packet = ssi_packet(opcode, data, status=status)
    assert packet[0] == len(packet) - 2 == 4 + len(data)
    assert packet[1:4] == bytes([opcode, 4, status])
    assert packet[4:-2] == data
    # the 16-bit sum of the body plus the checksum value is zero
    assert (sum(packet[:-2]) + int.from_bytes(packet[-2:], "big")) % 0x10000 == 0


def test_ssi_packet_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="252 bytes"):
        ssi_packet(0xE6, bytes(252))


def test_feedback_bytes_per_protocol() -> None:
    assert feedback_bytes("honeywell", "good") == b"\x1b7"
    assert feedback_bytes("honeywell", "bad") == b"\x1b8"
    assert feedback_bytes("zebra-ssi", "good") == bytes.fromhex("05 E6 04 00 00 FF 11")
    assert feedback_bytes("zebra-ssi", "bad")[:5] == bytes.fromhex("05 E6 04 00 08")
    assert feedback_bytes("none", "good") == b""


def test_ssi_replies_are_taken_out_only_when_their_checksum_holds() -> None:
    ack = ssi_packet(0xD0, source=0)
    nak = ssi_packet(0xD1, b"\x02", source=0)
    rest, replies = take_ssi_replies(b"12" + ack + b"34\r" + nak)
    assert (rest, replies) == (b"1234\r", [ack, nak])
    broken = ack[:-1] + bytes([ack[-1] ^ 1])
    assert take_ssi_replies(broken) == (broken, [])


# ---- the driver on a real pty ----------------------------------------------------------------


class Pty:
    """A pseudo-terminal pair: the driver gets the slave's path, the test the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no CR/LF translation before the driver opens it
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.001)  # the pty buffer is full until the driver reads

    async def read(self, n: int, timeout: float = 5) -> bytes:
        out = b""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < n:
            try:
                out += os.read(self.master, n - len(out))
            except BlockingIOError:
                assert asyncio.get_running_loop().time() < deadline, f"only {out!r} arrived"
                await asyncio.sleep(0.005)
        return out

    def nothing_written(self) -> bool:
        try:
            os.read(self.master, 1)
        except BlockingIOError:
            return True
        return False

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.unplug()


class Waits:
    """Records the backoff the driver asks for, and really waits it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(delay)


def scanner(
    port: str | Path, sleep: Callable[[float], Awaitable[None]] | None = None, **settings: Any
) -> SerialScanner:
    extra = {"sleep": sleep} if sleep is not None else {}
    return SerialScanner(
        "scanner-1",
        SerialSettings(port=Path(port), **settings),
        read_factory(T0, "boot-1"),
        **extra,
    )


@contextlib.asynccontextmanager
async def running(driver: SerialScanner) -> AsyncIterator[AsyncIterator[Read]]:
    async with driver:
        reads = driver.reads()
        try:
            yield reads
        finally:
            await reads.aclose()  # type: ignore[attr-defined]


async def next_read(reads: AsyncIterator[Read], timeout: float = 5) -> Read:
    return await asyncio.wait_for(anext(reads), timeout)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def scans(pty: Pty, data: bytes, n: int, **settings: Any) -> list[Read]:
    """Write ``data``, then a sentinel scan: the reads before the sentinel are all there were."""
    settings.setdefault("terminator", "cr")
    sentinel = {"cr": b"END\r", "lf": b"END\n", "crlf": b"END\r\n"}[settings["terminator"]]
    async with running(scanner(pty.path, **settings)) as reads:
        await pty.write(data + sentinel)
        out = [await next_read(reads) for _ in range(n + 1)]
    assert out[-1].data == b"END" and out[-1].fault is None, out[-1]
    return out[:-1]


def shown(reads: list[Read]) -> list[tuple[bytes, str | None, str | None]]:
    return [(r.data, r.symbology, r.fault) for r in reads]


async def test_cr_on_a_pty_with_crlf_and_blank_lines(pty: Pty) -> None:
    assert shown(await scans(pty, b"A1\rB2\r\n\r\n", 2, terminator="cr")) == [
        (b"A1", None, None),
        (b"B2", None, None),
    ]


async def test_lf_on_a_pty(pty: Pty) -> None:
    got = await scans(pty, b"A1\nB2\r\n", 2, terminator="lf")
    assert [r.data for r in got] == [b"A1", b"B2"]


async def test_crlf_split_across_writes_is_one_scan(pty: Pty) -> None:
    driver = scanner(pty.path, terminator="crlf")
    async with running(driver) as reads:
        await pty.write(b"09506000")
        await pty.write(b"134352\r")
        # the driver has read the CR on its own before the LF is written
        await until(lambda: driver._framer._last == 0x0D, "the CR to be read")
        await pty.write(b"\nEND\r\n")
        first, second = await next_read(reads), await next_read(reads)
    assert (first.data, first.fault) == (b"09506000134352", None)
    assert second.data == b"END"


async def test_none_ends_a_scan_after_silence(pty: Pty) -> None:
    async with running(scanner(pty.path, terminator="none", frame_timeout_ms=30)) as reads:
        await pty.write(b"0950600013")
        await pty.write(b"4352")
        read = await next_read(reads)
        await pty.write(b"]E00012345678905")
        second = await next_read(reads)
    assert (read.data, read.fault) == (b"09506000134352", None)
    assert (second.data, second.symbology, second.fault) == (b"0012345678905", "]E0", None)


async def test_unterminated_line_is_a_bad_read_after_silence(pty: Pty) -> None:
    async with running(scanner(pty.path, terminator="crlf", frame_timeout_ms=30)) as reads:
        await pty.write(b"0950600013")
        read = await next_read(reads)
    assert read.data == b"0950600013"
    assert read.fault == "scan cut short: no crlf terminator after 30 ms"


async def test_prefix_suffix_and_aim_id(pty: Pty) -> None:
    got = await scans(
        pty,
        b"\x02]C1PO-4711\x03\r\x02]d20109506000134352\x1d10LOT7\x03\r",
        2,
        prefix="\x02",
        suffix="\x03",
    )
    assert shown(got) == [
        (b"PO-4711", "]C1", None),
        (b"0109506000134352\x1d10LOT7", "]d2", None),
    ]


async def test_aim_off_keeps_the_bracket(pty: Pty) -> None:
    got = await scans(pty, b"]C1ABC\r", 1, aim=False)
    assert shown(got) == [(b"]C1ABC", None, None)]


async def test_garbage_is_a_bad_read_with_the_bytes_kept(pty: Pty) -> None:
    noise = b"\xf8\x80\x00\xfe\x1b"
    got = await scans(pty, noise + b"\r" + b"12\x0034\r", 2)
    assert got[0].data == noise
    assert got[0].fault is not None and "not UTF-8 text" in got[0].fault
    assert got[1].fault == "garbage on the line: control byte 0x00 at offset 2"


async def test_unusual_scans_are_bad_reads_with_reasons(pty: Pty) -> None:
    binary = bytes(range(256)).replace(b"\r", b"")
    got = await scans(pty, binary + b"\r" + b"7" * 4097 + b"\r" + b"]C1\r", 3)
    assert got[0].fault is not None and got[0].fault.startswith("garbage on the line")
    assert got[1].fault == "scan longer than max_length 4096 bytes (4097 bytes)"
    assert len(got[1].data) == 4096
    assert (got[2].data, got[2].fault) == (b"", "empty scan")


async def test_a_4_kb_scan_within_max_length_is_kept_whole(pty: Pty) -> None:
    got = await scans(pty, b"7" * 4096 + b"\r", 1)
    assert (len(got[0].data), got[0].fault) == (4096, None)


async def test_over_long_line_is_one_bad_read_with_its_length(pty: Pty) -> None:
    got = await scans(pty, b"9" * 100_000 + b"\r", 1, max_length=64)
    assert got[0].data == b"9" * 64
    assert got[0].fault == "scan longer than max_length 64 bytes (100000 bytes)"


async def test_many_scans_at_once_all_arrive_in_order(pty: Pty) -> None:
    """More than READY_MAX at once: reading pauses, then resumes as the daemon catches up."""
    count = READY_MAX + 44
    async with running(scanner(pty.path)) as reads:
        await pty.write(b"".join(b"%d\r" % i for i in range(count)))
        first = await next_read(reads)
        await pty.write(b"tail\r")
        rest = [await next_read(reads) for _ in range(count)]
    assert [r.data for r in [first, *rest]] == [b"%d" % i for i in range(count)] + [b"tail"]


async def test_honeywell_feedback_bytes_reach_the_scanner(pty: Pty) -> None:
    driver = scanner(pty.path, feedback="honeywell")
    async with running(driver) as reads:
        await pty.write(b"X\r")
        read = await next_read(reads)
        await driver.feedback(Feedback("good", "scanner-1", read.id))
        await driver.feedback(Feedback("bad", "scanner-1", read.id, "unknown code"))
        await driver.feedback(Feedback("alarm", "scanner-1", None, "outbox full"))
        assert await pty.read(6) == b"\x1b7\x1b8\x1b8"
        assert pty.nothing_written()


async def test_zebra_ssi_feedback_is_a_beep_packet_with_a_valid_checksum(pty: Pty) -> None:
    driver = scanner(pty.path, feedback="zebra-ssi")
    async with running(driver) as reads:
        await driver.feedback(Feedback("good", "scanner-1", "r1"))
        await driver.feedback(Feedback("bad", "scanner-1", "r2", "duplicate serial"))
        written = await pty.read(14)
        # the scanner answers each command with an ACK; those are not scans
        ack = ssi_packet(0xD0, source=0)
        await pty.write(ack + b"0109506000134352\r" + ack)
        read = await next_read(reads)
        await pty.write(b"END\r")
        end = await next_read(reads)
    good, bad = written[:7], written[7:]
    for packet, code in ((good, 0x00), (bad, 0x08)):
        assert packet[:5] == bytes([5, 0xE6, 0x04, 0x00, code])
        assert ssi_checksum(packet[:5]) == packet[5:]
        assert (sum(packet[:5]) + int.from_bytes(packet[5:], "big")) & 0xFFFF == 0
    assert (read.data, read.fault, end.data) == (b"0109506000134352", None, b"END")
    assert driver.ssi_replies == 2


async def test_no_feedback_protocol_writes_nothing(pty: Pty) -> None:
    driver = scanner(pty.path)
    async with driver:
        await driver.feedback(Feedback("good", "scanner-1", "r1"))
        await driver.feedback(Feedback("alarm", "scanner-1", None, "sync stalled"))
        assert pty.nothing_written()


# ---- absent, unplugged, back -----------------------------------------------------------------


@pytest.fixture
def events() -> Iterator[list[logging.LogRecord]]:
    """The driver's log events (its own handler: the daemon's log set-up may stop propagation)."""
    logger = logging.getLogger("edgetally.drivers.serial")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def names(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records]


async def test_open_succeeds_without_the_port_and_feedback_says_why(
    tmp_path: Path, events: list[logging.LogRecord]
) -> None:
    driver = scanner(tmp_path / "usb-Nothing-if00", feedback="honeywell")
    async with driver:
        assert driver.present is False
        assert driver.problem == f"port {tmp_path / 'usb-Nothing-if00'}: not there (unplugged?)"
        with pytest.raises(DriverError, match=r"cannot signal good .* the port is not open"):
            await driver.feedback(Feedback("good", "scanner-1", "r1"))
    assert names(events) == ["serial_port_absent"]


async def test_unplug_keeps_the_partial_scan_then_reopens_with_backoff(
    tmp_path: Path, events: list[logging.LogRecord]
) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / "usb-Acme_Scanner_123-if00"
    first = Pty()
    link.symlink_to(first.path)
    waits = Waits()
    driver = scanner(link, sleep=waits, reopen_initial_s=0.02, reopen_max_s=0.08)
    second: Pty | None = None
    try:
        async with running(driver) as reads:
            await first.write(b"A\r")
            assert (await next_read(reads)).data == b"A"
            await first.write(b"PART")
            await until(lambda: driver._framer.pending, "the partial line to be read")
            link.unlink()
            first.unplug()  # the slave read now fails with EIO, as on a USB unplug
            cut = await next_read(reads)
            assert cut.data == b"PART"
            assert cut.fault is not None
            assert cut.fault.startswith("scan cut short: the port went away mid-scan")

            pending = asyncio.create_task(next_read(reads, timeout=10))
            await until(lambda: driver.open_attempts >= 6, "reopen attempts")
            assert driver.present is False
            assert driver.problem == f"port {link}: not there (unplugged?)"
            second = Pty()
            link.symlink_to(second.path)
            await until(lambda: driver.present, "the port to come back")
            await second.write(b"B\r")
            back = await pending
            assert (back.data, back.fault) == (b"B", None)
            assert driver.problem is None
    finally:
        first.unplug()
        if second is not None:
            second.unplug()
    # Every reopen attempt came after a wait of at least reopen_initial_s, capped: no spin.
    assert driver.open_attempts == 1 + len(waits.delays)
    assert len(waits.delays) >= 6
    assert all(0.02 <= d <= 0.08 for d in waits.delays), waits.delays
    assert waits.delays[-1] > waits.delays[0]
    # One line per change of state, not one per attempt.
    assert names(events) == [
        "serial_port_open",
        "serial_port_gone",
        "serial_port_absent",
        "serial_port_open",
    ]


async def test_a_path_that_is_not_a_serial_port_is_reported_not_raised() -> None:
    driver = scanner("/dev/null")
    async with driver:
        assert driver.present is False
        assert driver.problem is not None
        assert driver.problem.startswith("port /dev/null: Could not configure port")


async def test_a_second_driver_on_the_same_port_is_told_it_is_in_use(pty: Pty) -> None:
    async with scanner(pty.path) as one:
        two = scanner(pty.path)
        async with two:
            assert one.present and not two.present
            assert two.problem is not None and "in use by another program" in two.problem


# ---- settings, registry, discovery -----------------------------------------------------------


def test_stopbits_other_than_1_1_5_2_is_refused() -> None:
    with pytest.raises(DriverError, match=re.escape("stopbits must be 1, 1.5 or 2, got 1.2")):
        scanner("/dev/null", stopbits=1.2)


async def test_stopbits_1_5_and_other_framings_open_a_pty(pty: Pty) -> None:
    driver = scanner(pty.path, baud=115200, bytesize=7, parity="even", stopbits=1.5)
    async with driver:
        assert driver.present, driver.problem


def test_registered_as_serial() -> None:
    assert DRIVERS["serial"] is SerialScanner


def test_discover_lists_by_id_links_with_pyserial_details(tmp_path: Path, pty: Pty) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / "usb-Honeywell_Imaging_1900-if00"
    link.symlink_to(pty.path)

    class Port:  # the fields of serial.tools.list_ports_common.ListPortInfo used
        device = pty.path
        vid, pid = 0x0C2E, 0x0B61
        serial_number = "19012B0123"
        manufacturer = "Honeywell Imaging & Mobility"
        product = "1900"
        location = "1-1.2:1.0"
        description = "Honeywell 1900 scanner"

    class Other:
        device = "/dev/ttyS0"
        vid = pid = serial_number = manufacturer = product = location = None
        description = "ttyS0"

    found = discover_ports(by_id, [Port(), Other()])
    assert found == [
        Found(
            "serial",
            str(link),
            "Honeywell 1900 scanner",
            os.path.realpath(pty.path),
            {
                "vid_pid": "0c2e:0b61",
                "serial": "19012B0123",
                "manufacturer": "Honeywell Imaging & Mobility",
                "product": "1900",
                "location": "1-1.2:1.0",
            },
        ),
        Found("serial", "/dev/ttyS0", "ttyS0", "/dev/ttyS0", {}),
    ]
    settings = SerialSettings(port=link)
    assert SerialScanner.matches(settings, found[0]) == (True, f"port {link}")
    by_real = SerialSettings(port=Path(pty.path))
    assert SerialScanner.matches(by_real, found[0])[0] is True
    assert SerialScanner.matches(settings, found[1])[0] is False
    assert SerialScanner.matches(settings, Found("wedge", "x", "kbd"))[0] is False


def test_discover_without_a_by_id_folder_is_empty(tmp_path: Path) -> None:
    assert discover_ports(tmp_path / "missing", []) == []


def test_the_example_config_checks_and_loads_serial_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = Path(__file__).resolve().parents[2] / "config" / "serial.toml"
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 device(s), 1 station(s)" in result.output
    (device,) = load_config(path).devices
    assert device.driver == "serial"
    assert device.options == SerialSettings(
        port=Path("/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900-if00"),
        feedback="honeywell",
        max_length=4096,
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('terminator = "etx"', "devices[0].terminator: one of 'cr', 'lf', 'crlf', 'none'"),
        ("bytesize = 9", "devices[0].bytesize: at most 8"),
        ('feedback = "datalogic"', "devices[0].feedback: one of 'none', 'honeywell'"),
        ("stopbits = 3", "devices[0].stopbits: at most 2"),
        ('prefix = ""', "devices[0].prefix: a non-empty string"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[agent]\nid = "dock-1"\n[sync]\nurl = "http://127.0.0.1:1"\ntoken_file = "t"\n'
        f'[[devices]]\nid = "s1"\ndriver = "serial"\nport = "/dev/ttyACM0"\n{line}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
