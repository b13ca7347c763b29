"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Playwright is pointed at the system executable: nothing here downloads a
browser (no `playwright install`). Every page a test opens collects console
errors and failed requests, and `checked_page` fails the test on any.
Screenshots go to tests/artifacts/<test name>/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("EDGETALLY_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium phones home at start, and a
# closed network answers that with errors that are not the page's.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
TABLET = {"width": 1280, "height": 800}  # a 10" tablet in landscape


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser process per test module; Playwright gives it a fresh user-data-dir
    (a temporary profile) and each test its own context (cookies, JS on or off).
    Per module, not per session: each module imports this fixture, and two sync
    Playwright instances cannot be alive at once in one thread."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `sh scripts/system-deps --test`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def checked_page(browser: Any, *, javascript: bool = True) -> Iterator[Any]:
    """A page in a new context whose console errors and failed requests fail the test."""
    from playwright.sync_api import ConsoleMessage

    context = browser.new_context(java_script_enabled=javascript, viewport=TABLET)
    page = context.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"console: {msg.text} ({msg.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} {req.failure}"))
    try:
        yield page
    finally:
        context.close()
    assert not errors, "the browser reported errors:\n" + "\n".join(errors)


def screenshot(page: Any, request: pytest.FixtureRequest, name: str) -> Path:
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
