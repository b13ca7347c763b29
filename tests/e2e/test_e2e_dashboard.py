"""The site dashboard in a real browser: a real ledger process, a real agent process
with the simulated scanner, a user made with `edgetally ledger user add`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import checked_page, chromium, screenshot
from harness import (
    AGENT,
    ROOT,
    LedgerProcess,
    agent_env,
    free_port,
    gtin14,
    write_config,
    write_script,
)

__all__ = ["chromium"]

USER, PASSWORD = "supervisor", "correct horse battery"
ITEMS = [gtin14(1), gtin14(2)]
LATE = gtin14(3)  # scanned while the dashboard is open


def api_stock(ledger: LedgerProcess) -> dict[tuple[str, str], int]:
    with ledger.reader_client() as client:
        rows = client.get("/v1/stock").json()["stock"]
    return {(r["location"], r["item"]): r["qty"] for r in rows}


def add_user(ledger: LedgerProcess, name: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "ledger", "user", "add", name, "--db", str(ledger.db)],
        cwd=ROOT,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path, ledger: LedgerProcess) -> Iterator[LedgerProcess]:
    """The ledger with a user, and an agent whose scanner scans 3 items now and one later."""
    assert add_user(ledger, USER, PASSWORD).returncode == 0
    script = write_script(
        tmp_path / "scans.jsonl",
        [
            {"data": ITEMS[0]},
            {"data": ITEMS[0], "delay": 0.3},
            {"data": ITEMS[1], "delay": 0.3},
            {"data": LATE, "delay": 6},
        ],
    )
    health = free_port()
    cfg = write_config(
        tmp_path,
        ledger.url,
        ledger.token_file,
        script,
        speed=1,
        health_listen=f"127.0.0.1:{health}",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        env=agent_env(),
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while sum(api_stock(ledger).values()) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "no stock arrived"
            time.sleep(0.1)
        yield ledger
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def log_in(page: Any, url: str, password: str = PASSWORD) -> None:
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_login_is_required_and_a_wrong_password_is_refused(
    site: LedgerProcess, chromium: Any
) -> None:
    with checked_page(chromium) as page:
        page.goto(site.url + "/")
        assert page.url.startswith(site.url + "/login")  # no session: the login form
        with page.expect_response(
            lambda r: r.url.endswith("/login") and r.request.method == "POST"
        ) as answer:
            log_in(page, site.url, "wrong password")
        assert answer.value.status == 200  # the form again, no session
        assert "Wrong name or password" in page.locator(".error").inner_text()
        assert page.url.startswith(site.url + "/login")
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert "edgetally_session" not in cookies
        log_in(page, site.url)
        page.locator("[data-testid=stock]").wait_for()
        session = {c["name"]: c for c in page.context.cookies()}["edgetally_session"]
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
        # the cookie is not readable by the page's scripts
        assert "edgetally_session" not in page.evaluate("document.cookie")
        page.click("text=Log out")
        page.wait_for_url(site.url + "/login")
        page.goto(site.url + "/")
        assert page.url.startswith(site.url + "/login")
    # a form posted without the login form's CSRF token is refused
    refused = httpx.post(site.url + "/login", data={"name": USER, "password": PASSWORD}, timeout=10)
    assert refused.status_code == 403 and "edgetally_session" not in refused.cookies


def test_the_dashboard_shows_the_ledgers_on_hand_and_the_feed_live(
    site: LedgerProcess, chromium: Any, request: pytest.FixtureRequest
) -> None:
    api = api_stock(site)
    with checked_page(chromium) as page:
        page.goto(site.url + "/")
        log_in(page, site.url)
        table = page.locator("[data-testid=stock]")
        table.wait_for()
        shown = {
            (row.get_attribute("data-location"), row.get_attribute("data-item")): int(
                row.locator(".qty").inner_text()
            )
            for row in table.locator("tbody tr[data-item]").all()
        }
        assert shown == api and api[("DOCK-7", ITEMS[0])] == 2
        page.evaluate("window.__same_page = true")
        # the late scan arrives in the feed without a reload
        page.locator("#feed-rows tr", has_text=LATE).wait_for(timeout=15000)
        assert page.evaluate("window.__same_page") is True
        screenshot(page, request, "dashboard")
        # search narrows the stock, and the item page agrees with the API
        page.fill("input[name=q]", ITEMS[1])
        page.click("text=Filter")
        page.wait_for_url("**q=*")
        assert [
            r.get_attribute("data-item") for r in table.locator("tbody tr[data-item]").all()
        ] == [ITEMS[1]]
        page.click(f"a:text-is('{ITEMS[0]}')") if False else page.goto(
            f"{site.url}/item/{ITEMS[0]}"
        )
        assert page.locator("[data-testid=item-total]").inner_text() == "2"
        assert page.locator("[data-testid=journal] tbody tr").count() == 2
        assert page.locator("[data-testid=stock-chart] polyline").count() == 1
        screenshot(page, request, "item")


def test_a_silent_agent_shows_as_silent(site: LedgerProcess, chromium: Any) -> None:
    deadline = time.monotonic() + 20
    while ("DOCK-7", LATE) not in api_stock(site):  # the agent's last scan
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with checked_page(chromium) as page:
        page.goto(site.url + "/?silent_after=3")
        log_in(page, site.url)
        row = page.locator(f"[data-testid=agents] tr[data-agent='{AGENT}']")
        assert row.locator(".state").inner_text() == "reporting"
        time.sleep(3.5)  # the agent's last movement is now older than the window
        page.reload()
        assert row.locator(".state").inner_text() == "silent"
        assert page.locator(f".alerts .silent[data-agent='{AGENT}']").count() == 1


def test_the_dashboard_renders_without_javascript(site: LedgerProcess, chromium: Any) -> None:
    with checked_page(chromium, javascript=False) as page:
        page.goto(site.url + "/")
        log_in(page, site.url)
        assert page.locator("[data-testid=stock] tbody tr[data-item]").count() == 2
        assert page.locator("#feed-rows tr").count() >= 3
        assert page.locator("#feed-live").is_hidden()
