"""The dock page in a real browser: a real ledger process, a real agent process whose
scanner is the master side of a pty (bytes written now are a scan made now)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import checked_page, chromium, screenshot
from harness import AGENT, ROOT, LedgerProcess, agent_env, free_port, gtin14

__all__ = ["chromium"]

GOOD = gtin14(7)


@dataclass
class DockAgent:
    url: str
    master: int
    proc: subprocess.Popen[bytes]

    def scan(self, code: str) -> None:
        os.write(self.master, code.encode() + b"\r")

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = httpx.get(f"{self.url}/status", timeout=5).json()
        return doc


@pytest.fixture
def dock(tmp_path: Path, ledger: LedgerProcess) -> Iterator[DockAgent]:
    master, slave = os.openpty()
    tty.setraw(slave)
    port = free_port()
    cfg = tmp_path / "dock.toml"
    cfg.write_text(
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{tmp_path}"\n\n'
        f'[outbox]\npath = "outbox.db"\n\n'
        f'[sync]\nurl = "{ledger.url}"\ntoken_file = "{ledger.token_file}"\n'
        "backoff_initial_s = 0.05\nbackoff_cap_s = 0.5\n\n"
        f'[health]\nlisten = "127.0.0.1:{port}"\n\n'
        '[[devices]]\nid = "dock-scanner"\ndriver = "serial"\n'
        f'port = "{os.ttyname(slave)}"\nterminator = "cr"\n\n'
        '[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
        'devices = ["dock-scanner"]\ndebounce_ms = 5000\n',
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        env=agent_env(),
        stdin=subprocess.DEVNULL,
    )
    agent = DockAgent(f"http://127.0.0.1:{port}", master, proc)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "the agent exited at start"
            try:
                if agent.status()["devices"][0]["connected"]:
                    break
            except (httpx.TransportError, ValueError, IndexError):
                pass
            assert time.monotonic() < deadline, "the agent's scanner did not connect"
            time.sleep(0.05)
        yield agent
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def scan_line(page: Any, code: str) -> Any:
    return page.locator(".scan", has_text=code).first


def test_scans_appear_live_with_their_outcome(
    dock: DockAgent, chromium: Any, request: pytest.FixtureRequest
) -> None:
    with checked_page(chromium) as page:
        page.goto(dock.url + "/")
        assert page.locator("h1").inner_text() == AGENT
        page.evaluate("window.__same_page = true")  # gone if the page reloads
        dock.scan(GOOD)
        start = time.monotonic()
        scan_line(page, GOOD).wait_for(timeout=2000)
        assert time.monotonic() - start < 2.0
        line = scan_line(page, GOOD)
        assert line.get_attribute("data-outcome") == "good"
        assert f"receive 1 × {GOOD}" in line.inner_text()
        # the same code again at once: a double read, in its colour
        dock.scan(GOOD)
        page.locator(".scan[data-outcome=double]").first.wait_for(timeout=2000)
        # an unknown code: a bad read with the reason the rules gave
        dock.scan("NOT-A-CODE-42")
        bad = scan_line(page, "NOT-A-CODE-42")
        bad.wait_for(timeout=2000)
        assert bad.get_attribute("data-outcome") == "bad"
        reason = bad.locator(".reason").inner_text()
        assert reason and "unknown" in reason.lower()
        colour = bad.evaluate("e => getComputedStyle(e).borderLeftColor")
        assert colour == "rgb(198, 40, 40)"  # --bad
        assert page.evaluate("window.__same_page") is True
        # the movement reached the ledger, and the page says so
        page.locator("[data-testid=sync]", has_text="1 delivered").wait_for(timeout=3000)
        screenshot(page, request, "dock")
        # unplugging the scanner: the page shows it disconnected, with the driver's reason
        os.close(dock.master)
        device = page.locator(".device[data-device=dock-scanner]")
        device.and_(page.locator(".down")).wait_for(timeout=5000)
        assert "disconnected" in device.inner_text()
        assert device.locator(".reason").inner_text().strip()
        assert page.evaluate("window.__same_page") is True
        screenshot(page, request, "dock-disconnected")


def test_the_dock_page_renders_without_javascript(dock: DockAgent, chromium: Any) -> None:
    dock.scan(GOOD)
    deadline = time.monotonic() + 5
    while dock.status()["reads"].get("good") != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with checked_page(chromium, javascript=False) as page:
        page.goto(dock.url + "/")
        assert page.locator("h1").inner_text() == AGENT
        assert scan_line(page, GOOD).get_attribute("data-outcome") == "good"
        assert page.locator("#live").is_hidden()  # live update is off
        assert page.locator(".device[data-device=dock-scanner]").inner_text().count("connected")
