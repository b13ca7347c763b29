"""The daemon's settling of a group of reads: counts and each reader's coalesced signals.

A run of plain tag reads (stored, good, nothing moved) is settled on a fast
path that notes an RFID reader's good signal once per run; the signals that
reach the reader must be what one pop-and-set per read gave: each (reader,
kind) once, its last read, in the order of those last reads.
"""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from agent.daemon import Daemon
from agent.model import Feedback, Read
from agent.outbox import Outbox
from agent.rules import Context, Rules, identify_for
from drivers import Driver, ReadFactory
from drivers.llrp import LlrpReader
from drivers.llrp_emulator.scenario import sgtin96


class Recording(LlrpReader):
    """An LLRP reader that keeps the signals it is given (never connected here)."""

    got: list[Feedback]

    async def feedback(self, feedback: Feedback) -> None:
        self.__dict__.setdefault("got", []).append(feedback)


def config(tmp_path: Path) -> Path:
    token = tmp_path / "token"
    token.write_text("t", encoding="utf-8")
    token.chmod(0o600)
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\nid = "dock-1"\nstate_dir = "{tmp_path}"\n\n'
        f'[sync]\nurl = "http://127.0.0.1:9/"\ntoken_file = "{token}"\n\n'
        '[health]\nlisten = ""\n\n'
        + "".join(
            f'[[devices]]\nid = "{d}"\ndriver = "llrp"\nhost = "127.0.0.1"\nport = 9\n\n'
            for d in ("door-a", "door-b")
        )
        + '[[stations]]\nname = "door"\nkind = "portal"\nlocation = "DOCK-1"\n'
        'devices = ["door-a", "door-b"]\noutside_antennas = [1, 2]\ninside_antennas = [3, 4]\n',
        encoding="utf-8",
    )
    return path


async def test_a_group_of_runs_signals_each_reader_once_per_kind_in_order(
    tmp_path: Path,
) -> None:
    cfg = load_config(config(tmp_path))
    daemon = Daemon(cfg, "t")
    outbox = Outbox.open(cfg.outbox_path, cfg.agent.id, cfg.outbox.max_bytes)
    try:
        rules = Rules(
            cfg.stations, Context(cfg.agent.id, daemon.clock, daemon.ids), {}, identify_for(cfg)
        )
        factory = ReadFactory(daemon.clock, daemon.ids)
        a, b = (Recording(d.id, d.options, factory) for d in cfg.devices)
        make = factory.batch()

        def tag(driver: Driver, serial: int, good: bool = True, seen: int = 2) -> Read:
            fault = None if good else "tag report without an EPC"
            data = sgtin96("00614141123452", serial, 7) if good else b""
            return make(driver.device_id, data, "tag", None, 1, -50.0, seen, fault)

        plan = [(a, 1), (a, 2), (a, 3), (a, 0), (a, 4), (a, 5), (b, 6), (a, 7), (b, 0)]
        group: list[tuple[Driver, Read]] = [(d, tag(d, n, good=n > 0)) for d, n in plan]
        await daemon._process(rules, outbox, group)
    finally:
        outbox.close()
    # Each (reader, kind) once, its last read, in the order of the last reads: a bad at
    # 3, b good at 6, a good at 7, b bad at 8.
    got = [(f.kind, f.read_id) for f in a.got], [(f.kind, f.read_id) for f in b.got]
    assert got == (
        [("bad", group[3][1].id), ("good", group[7][1].id)],
        [("good", group[6][1].id), ("bad", group[8][1].id)],
    )
    assert daemon.counters.tag_reads == 2 * len(plan)  # every stored read's seen count
    assert daemon.counters.reads == {"good": 7, "bad": 2}
