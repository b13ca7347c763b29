"""`edgetally replay` and the [record] file it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rules_desk import Desk, gtin14, sgtin

from agent.cli import main
from agent.clock import Uuid7, utc_iso
from agent.config import load_config
from agent.model import Read
from agent.replay import Recorder, Replayed, ReplayedTick, ReplayError, replay
from drivers.llrp_emulator import sgtin96

G1 = gtin14(1)

CONFIG = """
[agent]
id = "dock-7"
state_dir = "{dir}"

[sync]
url = "http://127.0.0.1:9"
token_file = "token"

[[devices]]
id = "d1"
driver = "simulated"
script = "none.jsonl"

[[stations]]
name = "dock"
kind = "receiving"
location = "DOCK-1"
debounce_ms = 300
devices = ["d1"]
"""


def setup(tmp_path: Path) -> tuple[Path, Desk]:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(CONFIG.format(dir=tmp_path))
    settings = load_config(cfg).stations
    return cfg, Desk(list(settings))


def test_replay_gives_what_the_live_run_gave(tmp_path: Path) -> None:
    cfg, desk = setup(tmp_path)
    recording = tmp_path / "reads.jsonl"
    recorder = Recorder(recording, 1 << 20)
    live = []
    for code, gap in [
        ("PO:9", 1000),
        (G1, 1000),
        (G1, 100),
        (sgtin(2, "A"), 1000),
        (sgtin(2, "A"), 1000),
        ("CANCEL", 1000),
        ("junk", 1000),
    ]:
        read = desk.read(code, "d1", gap)
        recorder.write(read)
        live.append(desk.rules.decide("d1", read))
    recorder.close()
    replayed = list(replay(load_config(cfg), recording.read_text().splitlines(), "reads.jsonl"))

    def shape(r: object) -> list[object]:
        d = r.decision  # type: ignore[attr-defined]
        return [
            d.feedback,
            d.reason,
            r.double,
            [(m.kind, m.item, m.qty, m.to, dict(m.ref), m.observed_at) for m in d.movements],
            len(d.cancel),
        ]  # type: ignore[attr-defined]

    assert [shape(r.ruling) for r in replayed] == [shape(r) for r in live]
    assert [r.ruling.double for r in replayed] == [False, False, True, False, False, False, False]


def test_replay_command_json_and_table(tmp_path: Path) -> None:
    cfg, desk = setup(tmp_path)
    recording = tmp_path / "reads.jsonl"
    recording.write_text(
        "".join(desk.read(c).to_json() + "\n" for c in ("PO:1", "QTY:3", G1, "nope"))
    )
    result = CliRunner().invoke(main, ["replay", str(recording), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines()]
    assert [o["feedback"] for o in out] == ["good", "good", "good", "bad"]
    (m,) = out[2]["movements"]
    assert (m["kind"], m["item"], m["qty"], m["to"], m["ref"]) == (
        "receive",
        {"gtin": G1},
        3,
        "DOCK-1",
        {"po": "1"},
    )
    table = CliRunner().invoke(
        main, ["replay", str(recording), "--config", str(cfg), "--format", "table"]
    )
    assert table.exit_code == 0 and "receive 3" in table.output


def test_replay_names_the_bad_line(tmp_path: Path) -> None:
    cfg, desk = setup(tmp_path)
    recording = tmp_path / "reads.jsonl"
    recording.write_text(desk.read(G1).to_json() + '\n\n{"id": 1}\n')
    result = CliRunner().invoke(main, ["replay", str(recording), "--config", str(cfg)])
    assert result.exit_code == 1
    assert f"{recording}:3: not a recorded read" in result.output


def test_recorder_rotates_at_its_cap(tmp_path: Path) -> None:
    _, desk = setup(tmp_path)
    path = tmp_path / "rec" / "reads.jsonl"
    reads = [desk.read(gtin14(i)) for i in range(40)]
    size = len(reads[0].to_json()) + 1
    recorder = Recorder(path, size * 10)
    for r in reads:
        recorder.write(r)
    recorder.close()
    old = path.with_name("reads.jsonl.1").read_text().splitlines()
    new = path.read_text().splitlines()
    assert old and new and old + new == [r.to_json() for r in reads][-len(old + new) :]
    for f in (path, path.with_name("reads.jsonl.1")):
        assert f.stat().st_size <= size * 10


ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = ["count", "putaway", "receiving", "returns", "shipping"]


def _decisions(results: list[dict]) -> list[tuple]:
    return [
        (
            r["feedback"],
            [(m["kind"], m["item"], m["qty"], m["from"], m["to"]) for m in r["movements"]],
        )
        for r in results
    ]


@pytest.mark.parametrize("name", SCRIPTED)
def test_every_example_config_replays_its_script_and_its_shipped_recording_alike(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    cfg = str(ROOT / "config" / f"{name}.toml")
    runs = {}
    for source in (f"config/scripts/{name}.jsonl", f"config/recordings/{name}.jsonl"):
        out = CliRunner().invoke(main, ["replay", str(ROOT / source), "--config", cfg])
        assert out.exit_code == 0, out.output
        runs[source] = [json.loads(line) for line in out.output.splitlines()]
    script, recording = runs.values()
    assert _decisions(script) == _decisions(recording)
    assert any(r["movements"] for r in script)  # the session moves stock
    assert all(r["feedback"] == "good" or r["reason"] for r in script)


def test_a_script_line_without_a_device_needs_the_config_that_plays_it(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path)
    cfg.write_text(
        cfg.read_text().replace(
            "[[stations]]",
            '[[devices]]\nid = "d2"\ndriver = "simulated"\nscript = "other.jsonl"\n\n[[stations]]',
        )
    )
    script = tmp_path / "mine.jsonl"
    script.write_text('{"data": "PO:1"}\n')
    out = CliRunner().invoke(main, ["replay", str(script), "--config", str(cfg)])
    assert out.exit_code == 1
    assert f'{script}:1: which device read this? Add "device"' in out.output
    assert "d1, d2" in out.output
    script.write_text('{"device": "d1", "data": "PO:1", "delay": 0.5}\n')
    out = CliRunner().invoke(main, ["replay", str(script), "--config", str(cfg)])
    assert out.exit_code == 0 and json.loads(out.output)["feedback"] == "good"


def test_replay_table_never_cuts_a_code_in_a_pipe_of_80_columns(tmp_path: Path) -> None:
    cfg, desk = setup(tmp_path)
    long_code = sgtin(1, "SERIAL-0123456789-ABCDEF")
    recording = tmp_path / "reads.jsonl"
    recording.write_text(
        "".join(desk.read(c).to_json() + "\n" for c in ("PO:4500012345", long_code))
    )
    out = CliRunner().invoke(
        main, ["replay", str(recording), "--config", str(cfg), "--format", "table"]
    )
    assert out.exit_code == 0, out.output
    assert long_code in out.output and G1 in out.output
    assert "…" not in out.output


# ---- a beam-gated portal ----------------------------------------------------------------

BEAM_CONFIG = """
[agent]
id = "dock-7"
state_dir = "{dir}"

[sync]
url = "http://127.0.0.1:9"
token_file = "token"

[[devices]]
id = "r1"
driver = "llrp"
host = "127.0.0.1"
port = 5084
antennas = [1, 2, 3, 4]
gpi_port = 1

[[stations]]
name = "door-7"
kind = "portal"
location = "DOCK-7"
devices = ["r1"]
outside_antennas = [1, 2]
inside_antennas = [3, 4]
beam_gpi = 1
"""
BOOT = "boot-1"
T0 = 1_780_000_000.0


def _tag_read(ids: Uuid7, antenna: int, at_s: float, serial: int) -> Read:
    """A tag read on r1 at ``at_s`` of agent time, stamped by the reader at the same time."""
    return Read(
        id=ids.new(),
        device="r1",
        kind="tag",
        data=sgtin96("00614141123452", serial, 7),
        observed_at=utc_iso(T0 + at_s),
        mono_ns=int(at_s * 1e9),
        boot_id=BOOT,
        antenna=antenna,
        rssi=-55.0,
        reader_first_seen_us=int((T0 + at_s) * 1e6),
        reader_last_seen_us=int((T0 + at_s) * 1e6),
    )


def _walk_in(ids: Uuid7, start_s: float, serial: int) -> list[Read]:
    """A tag carried in over 1.2 s: outside antennas, then inside ones."""
    return [_tag_read(ids, 1 + i % 2, start_s + 0.1 * i, serial) for i in range(6)] + [
        _tag_read(ids, 3 + i % 2, start_s + 0.7 + 0.1 * i, serial) for i in range(6)
    ]


def _beam_recording(tmp_path: Path, watched: bool = True) -> Path:
    """What a live agent records at a gated door: the beam watched from t=0, one tag
    walked in with the beam whole (a tag carried past the door), a second 10 s later
    with the beam broken during its pass."""
    path = tmp_path / "reads.jsonl"
    recorder = Recorder(path, 1 << 20)
    ids = Uuid7(lambda: T0)
    if watched:
        recorder.write_gpi_watch("r1", 0, utc_iso(T0), BOOT)
    for read in _walk_in(ids, 1.0, 1):
        recorder.write(read)
    for read in _walk_in(ids, 11.0, 2)[:4]:
        recorder.write(read)
    recorder.write_gpi("r1", 1, True, int(11.5e9), utc_iso(T0 + 11.5), BOOT)
    recorder.write_gpi("r1", 1, False, int(11.9e9), utc_iso(T0 + 11.9), BOOT)
    for read in _walk_in(ids, 11.0, 2)[4:]:
        recorder.write(read)
    recorder.close()
    return path


def _moved_serials(results: list[Replayed | ReplayedTick]) -> list[tuple[str, str]]:
    return [
        (m.kind, m.item.epc or "")
        for r in results
        if isinstance(r, ReplayedTick)
        for m in r.tick.decision.movements
    ]


def test_replay_applies_a_gated_portals_beam_as_run_does(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(BEAM_CONFIG.format(dir=tmp_path))
    config = load_config(tmp_path / "agent.toml")
    recording = _beam_recording(tmp_path)
    notes: list[str] = []
    results = list(replay(config, recording.read_text().splitlines(), "reads.jsonl", notes))
    # Only the pass through the broken beam moves; the first is judged beam_not_broken.
    assert _moved_serials(results) == [("receive", "urn:epc:id:sgtin:0614141.012345.2")]
    verdicts = [r.tick.decision.verdict for r in results if isinstance(r, ReplayedTick)]
    assert "beam_not_broken" in verdicts
    assert notes == []
    # GPI lines are not reads: every replayed read is one of the 24 tag reads.
    assert sum(isinstance(r, Replayed) for r in results) == 24


def test_replay_of_a_recording_without_the_beam_says_its_passes_are_ungated(
    tmp_path: Path,
) -> None:
    """A recording made before GPI events were recorded (or a simulator script) has no
    beam: its passes are replayed as live passes from before the agent listened to the
    beam (not gated), and replay says so."""
    (tmp_path / "agent.toml").write_text(BEAM_CONFIG.format(dir=tmp_path))
    config = load_config(tmp_path / "agent.toml")
    recording = _beam_recording(tmp_path, watched=False)
    notes: list[str] = []
    results = list(replay(config, recording.read_text().splitlines(), "reads.jsonl", notes))
    assert [k for k, _ in _moved_serials(results)] == ["receive", "receive"]
    assert notes == [
        "station door-7: reads.jsonl holds no GPI events of r1 (recorded before they were, "
        "or a simulator script), so its passes are replayed ungated, as live passes from "
        "before the agent listened to the beam"
    ]
    runner = CliRunner()
    out = runner.invoke(main, ["replay", str(recording), "--config", str(tmp_path / "agent.toml")])
    assert out.exit_code == 0, out.output
    assert "replayed ungated" in out.stderr


def test_a_bad_gpi_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(BEAM_CONFIG.format(dir=tmp_path))
    config = load_config(tmp_path / "agent.toml")
    lines = ['{"gpi": {"device": "r1", "port": "one", "high": true, "mono_ns": 5}}']
    with pytest.raises(ReplayError, match=r"reads.jsonl:1: not a recorded GPI event: .*port"):
        list(replay(config, lines, "reads.jsonl"))
