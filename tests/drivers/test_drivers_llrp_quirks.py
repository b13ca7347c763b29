"""The LLRP driver against readers that answer unlike sllurp expects (issue 17): each of
the emulator's quirk modes over real TCP, the driver's answer to it, and what it logs."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import main
from drivers.llrp import LlrpReader
from drivers.llrp_emulator import QUIRKS, LlrpEmulator, Scenario, tid_of
from tests.drivers.test_drivers_llrp_driver import (
    EPCS,
    Sleeps,
    collect,
    factory,
    quick,
    scenario,
    until,
)

WANT = {bytes.fromhex(e) for e in EPCS}


def quirky(*quirks: str, tags: bool = True, **top: Any) -> Scenario:
    return scenario(tags=tags, quirks=list(quirks), **top)


def quirk_logs(caplog: pytest.LogCaptureFixture, step: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == "llrp_reader_quirk"
        and r.fields["step"] == step  # type: ignore[attr-defined]
        and r.levelno == logging.WARNING
    ]


async def test_events_and_reports_refused_is_warned_once_and_inventory_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "edgetally")
    # The reader says it supports event and report holding, then refuses the message.
    sc = quirky("events-unsupported", faults={"drop_connection_at_s": 0.6})
    async with LlrpEmulator(sc) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=Sleeps())
        async with driver:
            await until(lambda: driver.sessions >= 2)  # refused on both connections
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= WANT)
        assert emu.connections[0].errors_sent >= 1
    assert all(r.fault is None for r in reads)
    assert driver.quirks["ENABLE_EVENTS_AND_REPORTS"] == (
        "reader refused ENABLE_EVENTS_AND_REPORTS (ERROR_MESSAGE): UnsupportedMessage: "
        "ENABLE_EVENTS_AND_REPORTS is not supported; skipped: events and reports still "
        "come as they happen when the reader holds none"
    )
    assert len(quirk_logs(caplog, "ENABLE_EVENTS_AND_REPORTS")) == 1  # once per reader
    assert not any("ENABLE_EVENTS" in e for e in driver.errors)  # never a link error


async def test_other_optional_requests_refused_are_skipped() -> None:
    optional = ["GET_READER_CONFIG", "KEEPALIVE_ACK", "DELETE_ACCESSSPEC"]
    async with LlrpEmulator(scenario(faults={"unsupported": optional})) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=Sleeps())
        async with driver:
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= WANT)
            await until(lambda: "KEEPALIVE_ACK" in driver.quirks)
        assert emu.connections[0].closed == "CLOSE_CONNECTION"  # still a polite goodbye
    assert reads and driver.sessions == 1 and not driver.errors
    assert set(optional) <= set(driver.quirks)


@pytest.mark.parametrize("step", ["ADD_ROSPEC", "ENABLE_ROSPEC", "SET_READER_CONFIG"])
async def test_a_refused_required_step_is_a_fault_with_the_readers_words(step: str) -> None:
    async with LlrpEmulator(scenario(faults={"unsupported": [step]})) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=Sleeps())
        async with driver:
            await until(lambda: len(driver.errors) >= 2)
            problem = driver.problem
    assert driver.sessions == 0 and not driver.present
    assert driver.errors[0] == (
        f"reader refused {step} (ERROR_MESSAGE): UnsupportedMessage: {step} is not supported"
        " (a required step: no inventory without it)"
    )
    assert problem is not None and problem.startswith(f"reader refused {step}")


async def test_a_reader_refusing_impinj_extensions_is_told_to_turn_them_off() -> None:
    # What a non-Impinj reader does with Impinj's custom message: ERROR_MESSAGE.
    async with LlrpEmulator(scenario(faults={"unsupported": ["CUSTOM_MESSAGE"]})) as emu:
        settings = quick(emu.port, impinj_extensions=True)
        driver = LlrpReader("portal", settings, factory(), sleep=Sleeps())
        async with driver:
            await until(lambda: bool(driver.errors))
    assert driver.errors[0] == (
        "reader refused IMPINJ_ENABLE_EXTENSIONS (ERROR_MESSAGE): UnsupportedMessage: "
        "CUSTOM_MESSAGE is not supported (a required step: no inventory without it) "
        "(not an Impinj reader? then set impinj_extensions = false)"
    )


async def test_delete_all_rospecs_refused_falls_back_to_our_own_rospec(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "edgetally")
    async with LlrpEmulator(quirky("delete-all-refused")) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=Sleeps())
        async with driver:
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= WANT)
        names = emu.connections[0].messages
    assert reads and driver.sessions == 1 and not driver.errors
    # Connect: DELETE_ROSPEC 0 refused, then ours (id 1) deleted; the same at the goodbye.
    start = names.index("ADD_ROSPEC")
    assert names[start - 3 : start] == ["DELETE_ACCESSSPEC", "DELETE_ROSPEC", "DELETE_ROSPEC"]
    assert names[-4:] == ["DELETE_ACCESSSPEC", "DELETE_ROSPEC", "DELETE_ROSPEC", "CLOSE_CONNECTION"]
    assert driver.quirks["DELETE_ROSPEC 0"] == (
        "reader rejected DELETE_ROSPEC: ParameterError: no ROSpec 0 (field 0: A_Invalid); "
        "deleting ROSpec 1 (ours) instead"
    )
    assert len(quirk_logs(caplog, "DELETE_ROSPEC 0")) == 1


async def test_an_immediate_rospec_that_never_starts_gets_start_rospec() -> None:
    async with LlrpEmulator(quirky("immediate-never-starts")) as emu:
        driver = LlrpReader("portal", quick(emu.port, start_window_s=0.3), factory())
        async with driver:
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= WANT)
        names = emu.connections[0].messages
    assert names.count("START_ROSPEC") == 1
    assert names.index("START_ROSPEC") > names.index("ENABLE_ROSPEC")
    assert reads and not driver.errors
    assert driver.quirks["START_ROSPEC"] == (
        "no report and no ROSpec start within 0.3 s of ENABLE_ROSPEC "
        "(Immediate start trigger): sent START_ROSPEC 1"
    )


async def test_a_reader_that_starts_by_itself_gets_no_start_rospec_even_without_tags() -> None:
    # No tag in view, so no report: the "ROSpec started" event is what says it runs.
    async with LlrpEmulator(scenario(tags=False)) as emu:
        driver = LlrpReader("portal", quick(emu.port, start_window_s=0.2), factory())
        async with driver:
            await until(lambda: driver.present)
            await until(lambda: emu.connections[0].keepalives_sent >= 6)  # 0.6 s, past the window
        names = emu.connections[0].messages
    assert "START_ROSPEC" not in names and driver.quirks == {}


@pytest.mark.parametrize("quirks", [(), ("immediate-never-starts",)])
async def test_explicit_start_trigger_sends_start_rospec_at_once(quirks: tuple[str, ...]) -> None:
    async with LlrpEmulator(quirky(*quirks)) as emu:
        settings = quick(emu.port, start_trigger="explicit", start_window_s=60)
        driver = LlrpReader("portal", settings, factory())
        async with driver:
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= WANT)
            session = emu._active
            assert session is not None
            assert session.rospecs[1].spec.boundary.start.trigger == 0  # Null: waits for START
        names = emu.connections[0].messages
    assert names[names.index("ENABLE_ROSPEC") + 1] == "START_ROSPEC"
    assert reads and driver.quirks == {}  # explicit is what was asked: nothing to adapt


async def test_explicit_start_refused_is_a_fault() -> None:
    async with LlrpEmulator(scenario(faults={"unsupported": ["START_ROSPEC"]})) as emu:
        settings = quick(emu.port, start_trigger="explicit")
        driver = LlrpReader("portal", settings, factory(), sleep=Sleeps())
        async with driver:
            await until(lambda: bool(driver.errors))
    assert driver.errors[0] == (
        "reader refused START_ROSPEC (ERROR_MESSAGE): UnsupportedMessage: START_ROSPEC is not "
        "supported (a required step: no inventory without it)"
    )


async def test_tid_epcs_arrive_as_reads_with_the_tid() -> None:
    async with LlrpEmulator(quirky("tid-epcs")) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory())
        async with driver:
            tids = {tid_of(e) for e in WANT}
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= tids)
    assert {r.data for r in reads} == tids
    assert all(r.data[:2] == b"\xe2\x80" and len(r.data) == 12 for r in reads)
    assert all(r.fault is None for r in reads)


async def test_a_partial_frame_at_teardown_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sc = quirky("partial-frame-at-close", faults={"drop_connection_at_s": 0.4})
    async with LlrpEmulator(sc) as emu:
        driver = LlrpReader("portal", quick(emu.port), factory(), sleep=Sleeps())
        async with driver:
            await until(lambda: driver.sessions >= 2)
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= WANT)
        assert emu.connections[0].closed == "dropped (fault)"
    assert (
        driver.errors[0]
        == "the reader closed the connection (2 bytes of an unfinished frame dropped)"
    )
    assert all(r.fault is None for r in reads)  # never a bad read
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if "Too few bytes" in r.getMessage()]


async def test_every_quirk_at_once_still_inventories_every_tag() -> None:
    sc = quirky(*QUIRKS, faults={"drop_connection_at_s": 1.0})
    async with LlrpEmulator(sc) as emu:
        driver = LlrpReader(
            "portal", quick(emu.port, start_window_s=0.3), factory(), sleep=Sleeps()
        )
        async with driver:
            await until(lambda: driver.sessions >= 2)  # through a drop with a partial frame
            tids = {tid_of(e) for e in WANT}
            reads = await collect(driver, lambda rs: {r.data for r in rs} >= tids)
    assert all(r.fault is None for r in reads)
    assert set(driver.quirks) == {"ENABLE_EVENTS_AND_REPORTS", "DELETE_ROSPEC 0", "START_ROSPEC"}


def test_sim_llrp_refuses_an_unknown_quirk_in_one_line() -> None:
    out = CliRunner().invoke(main, ["sim", "llrp", "--quirks", "tid-epc,all"])
    assert out.exit_code != 0
    assert (
        out.output.strip()
        .splitlines()[-1]
        .endswith(
            "--quirks: unknown quirk 'tid-epc' (did you mean 'tid-epcs'?): expected "
            "events-unsupported, delete-all-refused, immediate-never-starts, tid-epcs, "
            "partial-frame-at-close or all"
        )
    )
    assert "Traceback" not in out.output


async def test_sim_llrp_with_every_quirk_serves_a_reader_the_driver_inventories() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from agent.cli import main; main()",
        *("sim", "llrp", "--scenario", "zone-shelf", "--port", "0", "--quirks", "all"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "quirks: delete-all-refused, events-unsupported, immediate-never-starts" in line
        port = int(line.split("127.0.0.1:")[1].split(":")[0])
        settings = quick(port, antennas=[1, 2], start_window_s=0.3, report_timeout_ms=250)
        driver = LlrpReader("shelf", settings, factory(), sleep=Sleeps())
        async with driver:
            reads = await collect(driver, lambda rs: len({r.data for r in rs}) >= 20)
        assert all(r.data[:2] == b"\xe2\x80" and r.fault is None for r in reads)
        assert {"ENABLE_EVENTS_AND_REPORTS", "DELETE_ROSPEC 0", "START_ROSPEC"} <= set(
            driver.quirks
        )
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
