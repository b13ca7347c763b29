"""`edgetally doctor`: each way a machine loses data or goes quiet is found and named."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness import LedgerProcess, free_port, write_config

from agent.cli import main, write_secret
from agent.config import load_config
from agent.doctor import check_clock, diagnose, mount_of, mounts
from ledger import LedgerStore


def mountinfo(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


ROOT_EXT4 = "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/root rw"


def config_for(tmp_path: Path, url: str, token_file: Path, extra_outbox: str = "") -> Path:
    return write_config(tmp_path, url, token_file, None, extra_outbox=extra_outbox)


def by_check(findings: list, check: str) -> list:
    return [f for f in findings if f.check == check]


def test_mountinfo_parsed_and_the_longest_mount_point_holds_a_path(tmp_path: Path) -> None:
    info = mountinfo(
        tmp_path,
        ROOT_EXT4,
        "30 22 0:25 / /var/lib/edge\\040tally rw,nosuid shared:5 - tmpfs tmpfs rw,size=1024k",
        "31 22 179:2 / /srv ro,noatime shared:6 - ext4 /dev/mmcblk0p2 ro,nobarrier",
    )
    table = mounts(info)
    assert [m.fstype for m in table] == ["ext4", "tmpfs", "ext4"]
    assert mount_of(Path("/var/lib/edge tally/outbox.db"), table).fstype == "tmpfs"
    assert mount_of(Path("/srv/x"), table).options >= {"ro", "nobarrier", "noatime"}
    assert mount_of(Path("/home"), table).point == Path("/")


def test_outbox_on_tmpfs_fails_and_says_why(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t\n")
    cfg = load_config(config_for(tmp_path, "http://127.0.0.1:1", token))
    info = mountinfo(tmp_path, ROOT_EXT4, f"40 22 0:30 / {tmp_path} rw - tmpfs tmpfs rw")
    findings = diagnose(cfg, offline=True, mountinfo=info, synced=lambda: True)
    mount = by_check(findings, "mount")
    assert [f.level for f in mount] == ["fail"]
    assert "lost at every power cut" in mount[0].message


def test_torn_write_options_warn_and_a_small_disk_warns(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t\n")
    cfg = load_config(
        config_for(tmp_path, "http://127.0.0.1:1", token, extra_outbox='max_bytes = "1000TiB"\n')
    )
    info = mountinfo(tmp_path, f"41 1 8:1 / {tmp_path} rw - ext4 /dev/sda1 rw,data=writeback")
    findings = diagnose(cfg, offline=True, mountinfo=info, synced=lambda: True)
    assert [f.level for f in by_check(findings, "mount")] == ["warn"]
    assert "data=writeback" in by_check(findings, "mount")[0].message
    space = by_check(findings, "space")
    assert space[0].level == "warn" and "fills before the cap" in space[0].message


def test_clock_not_synchronised_is_a_warning_with_the_fix() -> None:
    (finding,) = check_clock(lambda: False)
    assert finding.level == "warn" and "timedatectl set-ntp true" in (finding.fix or "")
    (finding,) = check_clock(lambda: True)
    assert finding.level == "ok"


def test_ledger_token_accepted_refused_and_ledger_down(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    cfg = load_config(config_for(tmp_path, ledger.url, ledger.token_file))
    findings = diagnose(cfg, synced=lambda: True)
    assert [(f.level, f.check) for f in findings if f.check in ("ledger", "token")] == [
        ("ok", "ledger"),
        ("ok", "token"),
    ]
    assert "knows this token as agent 'dock-7'" in by_check(findings, "token")[0].message
    wrong = tmp_path / "wrong-token"
    write_secret(wrong, "not-the-token")
    cfg = load_config(config_for(tmp_path, ledger.url, wrong))
    token = by_check(diagnose(cfg, synced=lambda: True), "token")
    assert token[0].level == "fail" and "refused the token (401)" in token[0].message
    cfg = load_config(config_for(tmp_path, f"http://127.0.0.1:{free_port()}", ledger.token_file))
    down = by_check(diagnose(cfg, synced=lambda: True), "ledger")
    assert down[0].level == "fail" and "did not answer" in down[0].message


def test_another_agents_token_fails_naming_both_agents(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    """The ledger accepts the token for reads, but refuses every batch of it with 403."""
    other = tmp_path / "other-token"
    with LedgerStore(ledger.db) as store:
        write_secret(other, store.add_agent("dock-9"))
    cfg = load_config(config_for(tmp_path, ledger.url, other))
    (token,) = by_check(diagnose(cfg, synced=lambda: True), "token")
    assert token.level == "fail"
    assert "belongs to agent 'dock-9', not 'dock-7'" in token.message
    assert "edgetally ledger add-agent dock-7" in (token.fix or "")


class _NotALedger(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_a_ledger() -> Iterator[str]:
    """A web server on loopback that answers /healthz and 404 for the rest (a wrong URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotALedger)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_server_answering_404_is_not_a_ledger_that_accepts_the_token(
    tmp_path: Path, not_a_ledger: str
) -> None:
    token = tmp_path / "token"
    write_secret(token, "t")
    cfg = config_for(tmp_path, not_a_ledger, token)
    (finding,) = by_check(diagnose(load_config(cfg), synced=lambda: True), "token")
    assert finding.level == "fail" and "GET /v1/whoami answered 404" in finding.message
    out = CliRunner().invoke(main, ["doctor", "--config", str(cfg)])
    assert out.exit_code == 1, out.output


def test_a_state_dir_that_cannot_be_created_fails(tmp_path: Path) -> None:
    token = tmp_path / "token"
    write_secret(token, "t")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = config_for(tmp_path, "http://127.0.0.1:1", token)
    cfg.write_text(
        cfg.read_text().replace(f'state_dir = "{tmp_path}"', f'state_dir = "{blocker}/x"')
    )
    (finding,) = by_check(
        diagnose(load_config(cfg), offline=True, synced=lambda: True), "state_dir"
    )
    assert finding.level == "fail" and f"{blocker} is a file" in finding.message
    out = CliRunner().invoke(main, ["doctor", "--config", str(cfg), "--offline"])
    assert out.exit_code == 1 and "FAIL  state_dir:" in out.output


def test_a_token_others_can_read_fails(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t\n")
    token.chmod(0o644)
    cfg = config_for(tmp_path, "http://127.0.0.1:1", token)
    out = CliRunner().invoke(main, ["doctor", "--config", str(cfg)])
    assert out.exit_code == 1
    assert "FAIL  token:" in out.output and f"chmod 600 {token}" in out.output


def test_cli_exit_status_says_whether_something_must_be_fixed(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, "http://127.0.0.1:1", tmp_path / "missing-token")
    out = CliRunner().invoke(main, ["doctor", "--config", str(cfg)])
    assert out.exit_code == 1
    assert "FAIL  token:" in out.output and "missing-token" in out.output
    ok = CliRunner().invoke(main, ["doctor", "--config", str(cfg), "--offline"])
    assert "token" not in ok.output
    write_secret(tmp_path / "missing-token", "t")
    down = CliRunner().invoke(main, ["doctor", "--config", str(cfg)])
    assert down.exit_code == 1 and "FAIL  ledger:" in down.output  # nothing would flow
