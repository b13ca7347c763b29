"""The LLRP reader emulator stops promptly whatever its client does: a client that started
a flood and then stopped reading (a frozen or wedged agent) is reset, as a reader drops it;
and ``edgetally sim llrp`` ends on SIGINT and SIGTERM even when it was started with SIGINT
ignored (a background job of a script)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from driver_kit import eventually

from drivers import llrp_frames as f
from drivers.llrp_emulator import LlrpEmulator, Scenario, scenario_from_dict
from tests.drivers.test_drivers_llrp_emulator import receive

HANG_S = 20.0  # no stop takes this long unless it hangs: without the reset it never ends


def flood() -> Scenario:
    return scenario_from_dict(
        {
            "name": "flood",
            "antennas": [{"id": 1, "group": "outside"}],
            "flood": {"tags": 100, "tags_per_report": 100, "reports_per_write": 10},
        },
        "test",
    )


@asynccontextmanager
async def stalled_client(port: int) -> AsyncIterator[asyncio.StreamWriter]:
    """A client that starts the flood and then reads nothing more: its stream pauses the
    socket once 2 KiB are buffered, so the emulator's writes back up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
    try:
        await receive(reader)  # the ConnectionAttemptEvent
        spec = f.ROSpec(1, f.ROBoundarySpec(), (f.AISpec((0,)),))  # starts at ENABLE
        writer.write(f.AddROSpec(1, spec).encode())
        assert isinstance(await receive(reader), f.StatusResponse)
        writer.write(f.SpecCommand(f.ENABLE_ROSPEC, 2, 1).encode())
        await eventually(lambda: not writer.transport.is_reading())  # type: ignore[attr-defined]
        yield writer
    finally:
        writer.transport.abort()


async def test_a_client_that_stopped_reading_does_not_keep_the_emulator_open() -> None:
    emu = LlrpEmulator(flood(), close_grace_s=0.2)
    async with emu, stalled_client(emu.port):
        await eventually(lambda: emu.unsent_bytes > 64 * 1024)  # the flood's drain waits
        record = emu.connections[0]
        async with asyncio.timeout(HANG_S):
            await emu.aclose()
        assert not emu.session_active
    assert record.closed.startswith("reader closed; reset: ")
    assert record.closed.endswith(" bytes still unsent after 0.2 s (the client stopped reading)")
    assert record.reports_sent > 0


async def test_a_client_that_reads_gets_the_goodbye_and_no_reset() -> None:
    emu = LlrpEmulator(flood(), close_grace_s=HANG_S)
    async with emu:
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        try:
            await receive(reader)
            await eventually(lambda: emu.session_active)
            record = emu.connections[0]
            await emu.aclose()
            goodbye = await receive(reader)
            assert isinstance(goodbye, f.ReaderEventNotification)
            assert await reader.read() == b""  # FIN, after the goodbye
        finally:
            writer.close()
            await writer.wait_closed()
    assert record.closed == "reader closed"


# SIGINT ignored, then the emulator's CLI: what `edgetally sim llrp &` in a script runs.
IGNORING_SIGINT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "sys.argv[0] = 'edgetally'; from agent.cli import main; main()"
)


async def stop_sim_llrp(sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", IGNORING_SIGINT, "sim", "llrp", "--scenario", "flood"),
        *("--port", "0"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), HANG_S)).decode()
        port = int(line.split("127.0.0.1:")[1].split(":")[0])
        async with stalled_client(port):
            proc.send_signal(sig)
            assert await asyncio.wait_for(proc.wait(), HANG_S) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sim_llrp_started_with_sigint_ignored_stops_on_sigint() -> None:
    await stop_sim_llrp(signal.SIGINT)


async def test_sim_llrp_stops_on_sigterm_with_exit_0() -> None:
    await stop_sim_llrp(signal.SIGTERM)
