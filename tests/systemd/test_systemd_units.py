"""The systemd units: sandboxing scored by `systemd-analyze security`, and `verify` clean.

`systemd-analyze verify` checks that ExecStart= exists, and
/opt/edgetally/bin/edgetally is not installed here. Rather than edit the unit,
the check runs with --root= on a scratch root holding the unit unchanged in
/etc/systemd/system, a stand-in executable at /opt/edgetally/bin/edgetally and
a copy of this machine's system units (sysinit.target and the rest that a
service's default dependencies pull in).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = ROOT / "systemd"
UNITS = ["edgetally.service", "edgetally-ledger.service"]
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not on PATH (install the Debian `systemd` package)",
)


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    env = {**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [ANALYZE, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        timeout=60,
    )


def settings(unit: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting, in order (keys may repeat)."""
    out, section = [], ""
    for raw in (UNIT_DIR / unit).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(unit: str, key: str) -> list[str]:
    return [v for _, k, v in settings(unit) if k == key]


@pytest.mark.parametrize("unit", UNITS)
def test_security_exposure_at_most_2(unit: str) -> None:
    done = analyze("security", "--offline=true", str(UNIT_DIR / unit))
    assert done.returncode == 0, done.stderr
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", done.stdout)
    assert found is not None, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout


@pytest.fixture(scope="module")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    system_units = next(
        (
            Path(d)
            for d in ("/usr/lib/systemd/system", "/lib/systemd/system")
            if (Path(d) / "sysinit.target").exists()
        ),
        None,
    )
    assert system_units is not None, "systemd-analyze is here but its system units are not"
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    exe = root / "opt/edgetally/bin/edgetally"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def verify_in(root: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    path = root / "etc/systemd/system" / name
    path.write_text(text, encoding="utf-8")
    return analyze("verify", f"--root={root}", str(path))


@pytest.mark.parametrize("unit", UNITS)
def test_verify_is_clean(scratch_root: Path, unit: str) -> None:
    done = verify_in(scratch_root, unit, (UNIT_DIR / unit).read_text(encoding="utf-8"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).strip() == ""  # not even a warning


def test_verify_in_the_scratch_root_really_checks(scratch_root: Path) -> None:
    """The --root set-up reads the unit given: a broken copy is reported."""
    text = (UNIT_DIR / "edgetally.service").read_text(encoding="utf-8")
    broken = text.replace("ProtectSystem=strict", "ProtectSystem=sideways\nNoSuchKey=1")
    broken = broken.replace("/opt/edgetally/bin/edgetally", "/opt/edgetally/bin/missing", 1)
    done = verify_in(scratch_root, "edgetally-broken.service", broken)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Unknown key 'NoSuchKey'" in output
    assert "sideways" in output
    assert "/opt/edgetally/bin/missing" in output


def test_agent_unit_speaks_notify_with_a_watchdog() -> None:
    unit = "edgetally.service"
    assert values(unit, "Type") == ["notify"]
    assert values(unit, "NotifyAccess") == ["main"]  # the daemon notifies from its own pid
    assert values(unit, "WatchdogSec") == ["30"]
    assert values(unit, "Restart") == ["on-failure"]
    assert values(unit, "LoadCredential") == ["ledger-token:/etc/edgetally/token"]
    assert values(unit, "StateDirectory") == ["edgetally"]
    assert values(unit, "CapabilityBoundingSet") == [""]


def test_agent_unit_lets_the_clock_check_run() -> None:
    """The agent reads the clock's sync state with adjtimex(2), modes = 0 (glibc: clock_adjtime).

    ProtectClock=yes or a filter without these calls makes the read fail with
    EPERM, so every record would say the clock is not synchronised.
    """
    unit = "edgetally.service"
    assert values(unit, "ProtectClock") in ([], ["no"])
    allowed = " ".join(v for v in values(unit, "SystemCallFilter") if not v.startswith("~"))
    assert {"adjtimex", "clock_adjtime", "clock_adjtime64"} <= set(allowed.split())
    assert values(unit, "CapabilityBoundingSet") == [""]  # so the kernel refuses any change


def test_ledger_unit_listens_on_loopback_with_descriptor_and_memory_limits() -> None:
    """Bearer tokens never cross the LAN in cleartext by default (issue 18, item 5)."""
    unit = "edgetally-ledger.service"
    [exec_start] = values(unit, "ExecStart")
    assert "--host 127.0.0.1" in exec_start and "0.0.0.0" not in exec_start
    assert values(unit, "IPAddressDeny") == ["any"]
    assert values(unit, "IPAddressAllow") == ["localhost"]
    assert int(values(unit, "LimitNOFILE")[0]) >= 1024
    assert values(unit, "MemoryMax") == ["1G"]
    comments = (UNIT_DIR / unit).read_text(encoding="utf-8")
    assert "--tls-cert %d/tls-cert --tls-key %d/tls-key" in comments  # the TLS drop-in
