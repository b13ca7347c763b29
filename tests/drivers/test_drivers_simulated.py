"""drivers/simulated.py: the scripted scanner, through the real driver interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent.clock import Clock, Uuid7, utc_iso
from agent.errors import DriverError
from agent.model import Feedback, Read
from drivers import DRIVERS
from drivers.base import ReadFactory
from drivers.simulated import ScriptLine, SimulatedScanner, SimulatedSettings, parse_script

T0 = 1_780_000_000.0


class Wall:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def factory(wall: Wall | None = None) -> ReadFactory:
    wall = wall or Wall()
    mono = iter(range(1000, 10**9, 1000))
    clock = Clock(wall=wall, mono_ns=lambda: next(mono), boot_id="boot-1", synced=lambda: True)
    return ReadFactory(clock, Uuid7(wall))


def script(tmp_path: Path, *lines: str | dict[str, Any], name: str = "dock.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


def scanner(path: Path, reads: ReadFactory | None = None, **settings: Any) -> SimulatedScanner:
    settings.setdefault("speed", 0)
    return SimulatedScanner(
        "scanner-1", SimulatedSettings(script=path, **settings), reads or factory()
    )


async def all_reads(driver: SimulatedScanner) -> list[Read]:
    return [read async for read in driver.reads()]


# ---- parse_script --------------------------------------------------------------------


def test_parse_script_keeps_bytes_and_skips_blank_and_comment_lines() -> None:
    text = "\n".join(
        [
            "# a comment",
            '{"data": "0109506000134352\\u001d10LOT42", "delay": 0.5}',
            "",
            '{"data_hex": "00ff1d41", "device": "handheld-2"}',
            "   # indented comment",
            '{"data": "caf\\u00e9", "delay": 2}',
            '{"data": "raw\\udcff"}',
        ]
    )
    assert parse_script(text, "s.jsonl") == [
        ScriptLine(None, b"0109506000134352\x1d10LOT42", 0.5),
        ScriptLine("handheld-2", b"\x00\xff\x1dA", 0.0),
        ScriptLine(None, "café".encode(), 2.0),
        ScriptLine(None, b"raw\xff", 0.0),  # surrogateescape: a raw byte written as \udcXX
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"data": "x"', "not JSON"),
        ("not json at all", "not JSON"),
        ('["data", "x"]', "expected a JSON object"),
        ('{"dat": "x"}', "unknown field 'dat'"),
        ('{"data": "x", "speed": 2}', "unknown field 'speed'"),
        ('{"data": "x", "data_hex": "78"}', "expected exactly one of 'data' or 'data_hex'"),
        ('{"delay": 1}', "expected exactly one of 'data' or 'data_hex'"),
        ('{"data": 5}', "'data' must be a string"),
        ('{"data_hex": "zz"}', "'data_hex' must be hex digits"),
        ('{"data_hex": 12}', "'data_hex' must be hex digits"),
        ('{"data": "x", "delay": -0.1}', "'delay' must be a number of seconds >= 0"),
        ('{"data": "x", "delay": "1"}', "'delay' must be a number of seconds >= 0"),
        ('{"data": "x", "delay": true}', "'delay' must be a number of seconds >= 0"),
        ('{"data": "x", "delay": NaN}', "'delay' must be a number of seconds >= 0"),
        ('{"data": "x", "delay": 1' + "0" * 400 + "}", "'delay' must be a number of seconds"),
        ('{"data": "x", "device": ""}', "'device' must be a non-empty string"),
        ('{"data": "x", "device": 3}', "'device' must be a non-empty string"),
        ('{"data": "\\ud800"}', "'data'"),  # a lone surrogate is no text and no byte
    ],
)
def test_parse_script_errors_name_file_and_line(line: str, message: str) -> None:
    text = '# header\n{"data": "ok"}\n\n' + line + '\n{"data": "after"}\n'
    with pytest.raises(DriverError) as info:
        parse_script(text, "/etc/edgetally/dock.jsonl")
    assert str(info.value).startswith("/etc/edgetally/dock.jsonl:4: ")
    assert message in str(info.value)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["00ff", "zz", "0x1d"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_script_line = st.dictionaries(
    st.sampled_from(["data", "data_hex", "delay", "device", "other"]), _json, max_size=4
).map(json.dumps) | st.text(max_size=40)


@example(['{"data": "x", "delay": 1' + "0" * 400 + "}"])
@given(st.lists(_script_line, max_size=5))
def test_any_script_parses_or_names_file_and_line(lines: list[str]) -> None:
    try:
        parsed = parse_script("\n".join(lines), "fuzz.jsonl")
    except DriverError as exc:
        assert re.match(r"fuzz\.jsonl:\d+: ", str(exc)), exc
    else:
        assert all(isinstance(p.data, bytes) and p.delay >= 0 for p in parsed)


# ---- the driver ----------------------------------------------------------------------


async def test_driver_yields_reads_with_the_right_bytes_and_device(tmp_path: Path) -> None:
    wall = Wall()
    path = script(
        tmp_path,
        {"data": "0109506000134352\u001d10LOT42"},
        {"data_hex": "00ff", "device": "handheld-2"},
        {"data": "QTY:12"},
    )
    async with scanner(path, factory(wall)) as driver:
        assert driver.state == "open"
        reads = await all_reads(driver)
    assert [(r.device, r.data) for r in reads] == [
        ("scanner-1", b"0109506000134352\x1d10LOT42"),
        ("handheld-2", b"\x00\xff"),
        ("scanner-1", b"QTY:12"),
    ]
    assert all(r.kind == "barcode" for r in reads)
    assert all(r.observed_at == utc_iso(T0) for r in reads)
    assert all(r.boot_id == "boot-1" for r in reads)
    assert [r.mono_ns for r in reads] == sorted(r.mono_ns for r in reads)
    assert len({r.id for r in reads}) == 3
    assert [r.id for r in reads] == sorted(r.id for r in reads)


async def test_driver_waits_the_scripted_delays_scaled_by_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    real_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def record(delay: float) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    path = script(tmp_path, {"data": "a", "delay": 0.4}, {"data": "b"}, {"data": "c", "delay": 1.0})
    async with scanner(path, speed=2) as driver:
        reads = await all_reads(driver)
    assert [r.data for r in reads] == [b"a", b"b", b"c"]
    assert waits == [0.2, 0.5]


async def test_speed_zero_replays_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(asyncio, "sleep", record)
    path = script(tmp_path, {"data": "a", "delay": 30}, {"data": "b", "delay": 30})
    async with scanner(path, speed=0) as driver:
        assert [r.data for r in await all_reads(driver)] == [b"a", b"b"]
    assert waits == []


async def test_repeat_starts_again_at_the_end(tmp_path: Path) -> None:
    path = script(tmp_path, {"data": "a"}, {"data": "b"})
    async with scanner(path, repeat=True) as driver:
        got = []
        async with contextlib.aclosing(driver.reads()) as reads:
            async for read in reads:
                got.append(read.data)
                if len(got) == 5:
                    break
    assert got == [b"a", b"b", b"a", b"b", b"a"]


async def test_an_empty_script_ends_even_with_repeat(tmp_path: Path) -> None:
    path = script(tmp_path, "# nothing to say")
    async with scanner(path, repeat=True) as driver:
        assert await all_reads(driver) == []


async def test_a_closed_driver_refuses_to_reopen(tmp_path: Path) -> None:
    driver = scanner(script(tmp_path, {"data": "a"}))
    async with driver:
        pass
    assert driver.state == "closed"
    with pytest.raises(DriverError, match="scanner-1: a closed driver cannot be opened"):
        async with driver:
            pass
    assert driver.state == "closed"
    assert await all_reads(driver) == []  # and yields nothing


async def test_an_open_driver_cannot_be_opened_again(tmp_path: Path) -> None:
    async with scanner(script(tmp_path, {"data": "a"})) as driver:
        with pytest.raises(DriverError, match="scanner-1"):
            await driver.__aenter__()
        assert driver.state == "open"


async def test_a_bad_script_fails_open_naming_file_and_line(tmp_path: Path) -> None:
    path = script(tmp_path, {"data": "a"}, '{"data": "b", "delay": -1}')
    driver = scanner(path)
    with pytest.raises(DriverError, match=re.escape(f"{path}:2: 'delay'")):
        await driver.__aenter__()
    assert driver.state == "unopened"


async def test_a_missing_script_names_device_and_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(DriverError) as info:
        async with scanner(path):
            pass
    assert "scanner-1" in str(info.value)
    assert str(path) in str(info.value)


async def test_feedback_is_written_to_the_ack_log_a_line_each(tmp_path: Path) -> None:
    ack = tmp_path / "acks.jsonl"
    path = script(tmp_path, {"data": "0109506000134352"}, {"data": "junk"})
    async with scanner(path, ack_log=ack) as driver:
        good, bad = await all_reads(driver)
        await driver.feedback(Feedback("good", good.device, good.id))
        # line-buffered: on disk before close, so it survives a kill -9
        assert ack.read_text().count("\n") == 1
        await driver.feedback(Feedback("bad", bad.device, bad.id, "unknown code: junk"))
        await driver.feedback(Feedback("alarm", "scanner-1", None, "outbox full"))
        assert list(driver.given) == [
            Feedback("good", good.device, good.id),
            Feedback("bad", bad.device, bad.id, "unknown code: junk"),
            Feedback("alarm", "scanner-1", None, "outbox full"),
        ]
    lines = [json.loads(line) for line in ack.read_text().splitlines()]
    assert lines == [
        {"read_id": good.id, "kind": "good", "reason": None},
        {"read_id": bad.id, "kind": "bad", "reason": "unknown code: junk"},
        {"read_id": None, "kind": "alarm", "reason": "outbox full"},
    ]

    # a new driver appends to the same log
    async with scanner(path, ack_log=ack) as driver:
        await driver.feedback(Feedback("good", "scanner-1", "r-9"))
    assert len(ack.read_text().splitlines()) == 4


async def test_feedback_without_an_ack_log_is_kept_in_memory(tmp_path: Path) -> None:
    async with scanner(script(tmp_path, {"data": "a"})) as driver:
        await driver.feedback(Feedback("good", "scanner-1", "r-1"))
        assert list(driver.given) == [Feedback("good", "scanner-1", "r-1")]


def test_the_simulated_driver_is_registered() -> None:
    assert DRIVERS["simulated"] is SimulatedScanner
    assert SimulatedScanner.Settings is SimulatedSettings


def test_the_demo_script_parses() -> None:
    demo = Path(__file__).parents[2] / "agent" / "demo" / "dock.jsonl"
    lines = parse_script(demo.read_text(encoding="utf-8"), str(demo))
    assert lines
    assert all(line.data for line in lines)
