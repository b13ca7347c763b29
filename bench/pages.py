"""Page weight and time to first render of the dock page and the site dashboard.

    python -m bench.pages [--loads 5] [--chromium /usr/bin/chromium]

Runs `edgetally demo --forever` as a process, opens both pages it prints in
headless Chromium (Playwright pointed at the system browser; nothing is
downloaded), and loads each ``--loads`` times in a fresh context (an empty
cache): bytes = every response body the load fetched (HTML, CSS, JS);
first render = the first-contentful-paint entry; also DOMContentLoaded and
the HTML's responseEnd, all from the browser's own performance timeline.
Medians printed as one JSON object; progress on stderr. Needs the test extra
(playwright) and the `chromium` package.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bench.procs import ROOT, BenchError, bench_main, log

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
TIMING = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {fcp: fcp ? fcp.startTime : null, dcl: nav.domContentLoadedEventEnd,
          html: nav.responseEnd};
}"""


def measure(browser: Any, url: str, loads: int, login: tuple[str, str] | None) -> dict[str, Any]:
    runs = []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        if login is not None:
            page.goto(url + "login")
            page.fill("input[name=name]", login[0])
            page.fill("input[name=password]", login[1])
            page.click("button[type=submit]")
            page.wait_for_url(url)
        sizes: list[int] = []
        page.on("response", lambda r, sizes=sizes: sizes.append(len(r.body())))
        page.goto(url, wait_until="load")
        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
        timing = page.evaluate(TIMING)
        runs.append({"bytes": sum(sizes), "requests": len(sizes), **timing})
        context.close()
    return {
        "page_bytes": int(statistics.median(r["bytes"] for r in runs)),
        "requests": runs[0]["requests"],
        "first_render_ms": round(statistics.median(r["fcp"] for r in runs), 1),
        "dom_content_loaded_ms": round(statistics.median(r["dcl"] for r in runs), 1),
        "html_response_end_ms": round(statistics.median(r["html"] for r in runs), 1),
        "loads": loads,
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not Path(args.chromium).exists():
        raise BenchError(f"{args.chromium} is missing: run `sh scripts/system-deps --test`")
    demo = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "demo", "--forever"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        head = "".join(demo.stdout.readline() for _ in range(3))
        dash = re.search(r"site dashboard +(\S+)  \(log in as (\S+), password (\S+)\)", head)
        dock = re.search(r"dock page +(\S+)", head)
        if not dash or not dock:
            raise BenchError(f"the demo did not print both URLs: {head!r}")
        time.sleep(3)  # a few scans on the pages
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
            try:
                log(f"dock page {dock[1]}: {args.loads} loads")
                dock_page = measure(browser, dock[1], args.loads, None)
                log(f"site dashboard {dash[1]}: {args.loads} loads")
                dashboard = measure(browser, dash[1], args.loads, (dash[2], dash[3]))
            finally:
                browser.close()
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.communicate()
    return {"bench": "pages", "dock_page": dock_page, "dashboard": dashboard}


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.pages", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--loads", type=int, default=5, help="loads of each page (default 5)")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="the system browser")
    p.add_argument("--dir", type=Path, default=None, help="where to make the temp dir")
    args = p.parse_args(argv)
    if args.loads < 1:
        p.error("--loads must be at least 1")
    return bench_main(
        "pages", f"loads={args.loads}", lambda tmp: run(args, tmp), parent=args.dir, stdout=stdout
    )


if __name__ == "__main__":
    sys.exit(main())
