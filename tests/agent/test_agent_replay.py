"""`edgetally replay` and the [record] file it reads."""

from __future__ import annotations

import json
from pathlib import Path

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
