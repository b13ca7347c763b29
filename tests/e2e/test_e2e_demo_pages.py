"""`edgetally demo` prints the two pages' URLs and the login, and both show the demo live."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from browser import checked_page, chromium, screenshot
from harness import ROOT, agent_env

__all__ = ["chromium"]


def test_the_demo_prints_both_pages_and_they_show_it_live(
    chromium: Any, request: pytest.FixtureRequest
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "demo", "--forever"],
        cwd=ROOT,
        env=agent_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        head = "".join(proc.stdout.readline() for _ in range(3))
        dash = re.search(r"site dashboard +(\S+)  \(log in as (\S+), password (\S+)\)", head)
        dock = re.search(r"dock page +(\S+)", head)
        assert dash and dock, head
        deadline = time.monotonic() + 20
        while True:  # the agent starts its listener just after printing the URL
            try:
                httpx.get(dock[1] + "healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the dock page never answered"
                time.sleep(0.1)
        with checked_page(chromium) as page:
            page.goto(dock[1])
            page.locator("[data-station=dock-1] .scan").first.wait_for(timeout=15000)
            first = page.locator("[data-station=dock-1] .scan").count()
            page.wait_for_function(
                f"document.querySelectorAll('[data-station=dock-1] .scan').length > {first}",
                timeout=15000,
            )  # more scans arrive while the page is open
            screenshot(page, request, "demo-dock")
        with checked_page(chromium) as page:
            page.goto(dash[1])
            page.fill("input[name=name]", dash[2])
            page.fill("input[name=password]", dash[3])
            page.click("button[type=submit]")
            page.locator("[data-testid=stock] tr[data-location=DOCK-1]").first.wait_for()
            page.locator("[data-testid=agents] tr[data-agent=demo-dock]").wait_for()
            page.locator("#feed-rows tr").first.wait_for()
            screenshot(page, request, "demo-dashboard")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
