"""Simulators behind ``edgetally sim …``: plain functions the CLI wires to click."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

from drivers.llrp_emulator import (
    LlrpEmulator,
    bundled_scenario,
    load_scenario,
    parse_quirks,
    serve,
)


def sim_llrp_command(
    scenario: str | Path, host: str = "127.0.0.1", port: int = 5084, quirks: str = ""
) -> None:
    """Serve the LLRP reader emulator until Ctrl+C or SIGTERM (either exits 0).

    ``scenario`` is a .toml/.json file or the name of a bundled one
    (portal-inbound, portal-outbound, portal-crossread, zone-shelf, flood);
    ``quirks`` (comma-separated names, or ``all``) adds to the scenario's own.
    Scenario and quirk errors raise ConfigError, which the CLI turns into one line.
    """
    path = Path(scenario)
    extra = parse_quirks(quirks, "--quirks", "")
    loaded = load_scenario(
        path if path.suffix in (".toml", ".json") else bundled_scenario(str(scenario))
    )
    loaded = dataclasses.replace(loaded, quirks=loaded.quirks | extra)

    def ready(emu: LlrpEmulator) -> None:
        tags = sum(len(group.epcs) for group in loaded.tags)
        mode = ", flood mode" if loaded.flood else ""
        quirky = f", quirks: {', '.join(sorted(loaded.quirks))}" if loaded.quirks else ""
        print(
            f"LLRP reader emulator listening on {emu.host}:{emu.port}: scenario {loaded.name!r} "
            f"({len(loaded.antennas)} antennas, {tags} tags{mode}{quirky}); Ctrl+C stops it",
            flush=True,
        )

    with contextlib.suppress(KeyboardInterrupt):  # a Ctrl+C before the handlers are in
        asyncio.run(serve(loaded, host, port, on_ready=ready, handle_signals=True))
