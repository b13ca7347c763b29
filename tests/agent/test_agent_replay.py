"""`edgetally replay` and the [record] file it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rules_desk import Desk, gtin14, sgtin

from agent.cli import main
from agent.config import load_config
from agent.replay import Recorder, replay

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
