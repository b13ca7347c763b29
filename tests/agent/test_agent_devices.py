"""`edgetally devices`: found devices side by side with the config, and why each matches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import drivers
from agent.cli import main
from agent.config import load_config
from agent.devices import render_lines, survey
from agent.model import Feedback, Read
from drivers.base import Driver, Found


@dataclass(frozen=True)
class FakeSettings:
    vid_pid: str


class FakeUsbScanner(Driver):
    """Finds two devices: a scanner and a keyboard; matches by VID:PID."""

    Settings = FakeSettings
    broken = False

    @classmethod
    def discover(cls) -> list[Found]:
        if cls.broken:
            raise OSError("no USB backend (libusb missing)")
        return [
            Found(
                "fakeusb", "05e0:1200:S1", "Symbol Bar Code Scanner", "/dev/x1", {"usage": "0x8C"}
            ),
            Found("fakeusb", "046d:c31c", "Logitech USB Keyboard", "/dev/x2"),
        ]

    @classmethod
    def matches(cls, settings: Any, found: Found) -> tuple[bool, str]:
        vid_pid = found.stable_id[:9]
        if vid_pid == settings.vid_pid:
            return True, f"vid:pid {vid_pid} is the configured {settings.vid_pid}"
        return False, f"vid:pid {vid_pid} is not the configured {settings.vid_pid}"

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def reads(self) -> AsyncIterator[Read]:  # pragma: no cover - never read here
        return
        yield

    async def feedback(self, feedback: Feedback) -> None: ...


@pytest.fixture
def fake_driver(monkeypatch: pytest.MonkeyPatch) -> type[FakeUsbScanner]:
    monkeypatch.setitem(drivers.DRIVERS, "fakeusb", FakeUsbScanner)
    monkeypatch.setattr(FakeUsbScanner, "broken", False)
    return FakeUsbScanner


def write_config(tmp_path: Path, devices: str) -> Path:
    token = tmp_path / "token"
    token.write_text("t\n")
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\nid = "a"\nstate_dir = "{tmp_path}"\n'
        f'[sync]\nurl = "http://127.0.0.1:1"\ntoken_file = "{token}"\n' + devices
    )
    return path


def test_scanner_matches_and_keyboard_does_not_with_reasons(
    tmp_path: Path, fake_driver: type[FakeUsbScanner]
) -> None:
    cfg = load_config(
        write_config(
            tmp_path, '[[devices]]\nid = "dock"\ndriver = "fakeusb"\nvid_pid = "05e0:1200"\n'
        )
    )
    result = survey(cfg)
    by_id = {s.found.stable_id: s for s in result.seen}
    scanner, keyboard = by_id["05e0:1200:S1"], by_id["046d:c31c"]
    assert [(m.device_id, m.matched) for m in scanner.matches] == [("dock", True)]
    assert [(m.device_id, m.matched) for m in keyboard.matches] == [("dock", False)]
    assert "not the configured 05e0:1200" in keyboard.matches[0].why
    assert result.unmatched == []
    text = "\n".join(render_lines(result, cfg))
    assert "MATCHES device dock" in text
    assert "does not match device dock: vid:pid 046d:c31c" in text


def test_configured_device_nothing_matches_is_named(
    tmp_path: Path, fake_driver: type[FakeUsbScanner]
) -> None:
    cfg = load_config(
        write_config(
            tmp_path, '[[devices]]\nid = "gone"\ndriver = "fakeusb"\nvid_pid = "0c2e:0b61"\n'
        )
    )
    result = survey(cfg)
    assert [d.id for d in result.unmatched] == ["gone"]
    assert any(
        "configured device gone (fakeusb) matches nothing" in line
        for line in render_lines(result, cfg)
    )


def test_a_driver_that_cannot_look_does_not_hide_the_others(
    fake_driver: type[FakeUsbScanner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeUsbScanner, "broken", True)
    result = survey(None)
    assert "no USB backend" in result.problems["fakeusb"]
    assert "fakeusb: could not look: OSError: no USB backend (libusb missing)" in render_lines(
        result, None
    )


def test_cli_runs_with_the_machine_as_it_is() -> None:
    """Whatever is plugged in here (usually nothing), the command answers and exits 0."""
    out = CliRunner().invoke(main, ["devices"])
    assert out.exit_code == 0, out.output
    assert "nothing to match against" in out.output
    as_json = CliRunner().invoke(main, ["devices", "--json"])
    assert as_json.exit_code == 0
    assert as_json.output.lstrip().startswith("{")


def test_why_nothing_was_found_names_the_missing_folders_and_permissions(
    tmp_path: Path,
) -> None:
    from agent.devices import why_nothing

    hints = why_nothing(tmp_path)
    assert hints == [
        f"no {tmp_path}/input: no input devices on this machine (a container or a VM?)",
        f"no {tmp_path}/serial/by-id: no USB serial scanner is plugged in",
    ]
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "event0").touch()
    (tmp_path / "input" / "event1").touch()
    (tmp_path / "serial" / "by-id").mkdir(parents=True)
    (hint,) = why_nothing(tmp_path, can_read=lambda p: False)
    assert hint.startswith(f"2 input device(s) in {tmp_path}/input, none readable by this user")
    assert why_nothing(tmp_path, can_read=lambda p: True) == []


def test_configured_readers_and_simulators_are_listed_with_their_reachability(
    tmp_path: Path,
) -> None:
    import socket

    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refuses
        up, down = listening.getsockname()[1], closed.getsockname()[1]
        cfg = load_config(
            write_config(
                tmp_path,
                f'[[devices]]\nid = "door"\ndriver = "llrp"\nhost = "127.0.0.1"\nport = {up}\n'
                f'[[devices]]\nid = "dead"\ndriver = "llrp"\nhost = "127.0.0.1"\nport = {down}\n'
                '[[devices]]\nid = "sim"\ndriver = "simulated"\nscript = "gone.jsonl"\n',
            )
        )
        lines = render_lines(survey(cfg), cfg)
    assert f"configured device door (llrp): reader at 127.0.0.1:{up}: reachable (TCP connect)" in (
        lines
    )
    assert (
        f"configured device dead (llrp): reader at 127.0.0.1:{down}: NOT reachable "
        "(Connection refused)" in lines
    )
    assert (
        f"configured device sim (simulated): simulated: plays {tmp_path}/gone.jsonl (MISSING)"
        in (lines)
    )
