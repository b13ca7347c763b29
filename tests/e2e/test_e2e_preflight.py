"""What `run` refuses before its first read, `config check` refuses too, with the same
one line (no traceback): a simulator script that is not there, a state_dir that is a
file or cannot be created, a token file others can read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, write_config

from agent.cli import write_secret

EDGETALLY = [sys.executable, "-m", "agent.cli"]


def edgetally(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGETALLY, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def config(tmp_path: Path, script: Path | None = None, state_dir: Path | None = None) -> Path:
    token = tmp_path / "token"
    if not token.exists():
        write_secret(token, "t0ken")
    path = write_config(tmp_path, "http://127.0.0.1:1", token, script)
    if state_dir is not None:
        path.write_text(
            path.read_text().replace(f'state_dir = "{tmp_path}"', f'state_dir = "{state_dir}"')
        )
    return path


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def _case(tmp_path: Path, case: str) -> tuple[Path, str]:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    missing = tmp_path / "scripts" / "dock.jsonl"
    if case == "missing script":
        return (
            config(tmp_path, script=missing),
            f"devices[0] (scanner-1): cannot read script {missing}: No such file or directory",
        )
    if case == "state_dir is a file":
        return (
            config(tmp_path, state_dir=blocker),
            f"agent.state_dir: a usable folder; {blocker} is a file; expected a folder",
        )
    return (
        config(tmp_path, state_dir=blocker / "state"),
        f"agent.state_dir: a usable folder; {blocker / 'state'} cannot be created: "
        f"{blocker} is a file",
    )


@pytest.mark.parametrize(
    "case", ["missing script", "state_dir is a file", "state_dir under a file"]
)
def test_check_refuses_what_run_refuses_with_the_same_line(tmp_path: Path, case: str) -> None:
    path, message = _case(tmp_path, case)
    checked = one_line_error(edgetally("config", "check", str(path)))
    ran = one_line_error(edgetally("run", "--config", str(path)))
    assert message in checked
    assert checked == ran


def test_check_lists_every_problem_it_found(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = config(tmp_path, script=tmp_path / "nope.jsonl", state_dir=blocker)
    proc = edgetally("config", "check", str(path))
    assert proc.returncode == 1
    assert "agent.state_dir" in proc.stderr and "cannot read script" in proc.stderr
    assert proc.stderr.count("Error: ") == 2


def test_a_bad_script_line_is_found_by_check(tmp_path: Path) -> None:
    script = tmp_path / "dock.jsonl"
    script.write_text('{"data": "0109506000134352"}\n{"dta": "x"}\n')
    proc = edgetally("config", "check", str(config(tmp_path, script=script)))
    assert f"{script}:2: unknown field 'dta'" in one_line_error(proc)


def test_a_token_others_can_read_is_refused_by_check_and_run(tmp_path: Path) -> None:
    path = config(tmp_path)
    token = tmp_path / "token"
    token.chmod(0o644)
    for args in (("config", "check", str(path)), ("run", "--config", str(path))):
        line = one_line_error(edgetally(*args))
        assert f"has mode 0644, readable by its group and others: run `chmod 600 {token}`" in line
    token.chmod(0o600)
    proc = edgetally("config", "check", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "token file readable and private" in proc.stdout
