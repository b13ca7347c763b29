"""A dock tablet as the bench sees it: GET the agent's dock page once, then its board
every second (what the page's own script does), for as long as a phase runs.

A thread in the bench process (not in the daemon): it stands for a browser on
the LAN. It counts requests, bytes and errors and times each answer, so a run
with it is the "page open" side of bench.footprint.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpx

from bench.procs import BenchError

POLL_S = 1.0


def health_port(lines: Iterable[str]) -> int:
    """The port the agent's health listener bound, from its ``health_listening`` log line
    (logged just before READY, so still in the child's tail when READY is seen)."""
    for line in lines:
        if '"health_listening"' in line:
            return int(json.loads(line)["port"])
    raise BenchError("the agent logged no health_listening line before READY")


class PagePoller:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.requests = 0
        self.errors: list[str] = []
        self.page_bytes = 0
        self.board_bytes: list[int] = []
        self.ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dock-page", daemon=True)

    def __enter__(self) -> PagePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Close the tab (before the agent stops, or it would count refusals)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _get(self, client: httpx.Client, path: str) -> bytes | None:
        start = time.perf_counter()
        try:
            r = client.get(self.url + path)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            self.errors.append(f"{path}: {exc}")
            return None
        finally:
            self.requests += 1
        self.ms.append((time.perf_counter() - start) * 1000)
        return r.content

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            page = self._get(client, "/")
            self.page_bytes = len(page or b"")
            while not self._stop.wait(POLL_S):
                board = self._get(client, "/dock/board")
                if board is not None:
                    self.board_bytes.append(len(board))

    def report(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "page_bytes": self.page_bytes,
            "board_bytes_median": int(statistics.median(self.board_bytes))
            if self.board_bytes
            else 0,
            "answer_ms_median": round(statistics.median(self.ms), 2) if self.ms else None,
            "answer_ms_max": round(max(self.ms), 2) if self.ms else None,
        }
