"""The dock page's routes on the health listener: ``/``, ``/dock/board`` and its static files.

The page is the board rendered on the server (Jinja2) inside a shell; a few
lines of plain JavaScript fetch ``/dock/board`` every second and swap it in,
so with JavaScript off the page still shows everything, only not live. Polling
rather than server-sent events: the health listener answers each request and
closes (one short task per request, nothing held open in the daemon), and a
board rendered from the status snapshot is a few kB. Read-only: every route is
a GET of what the daemon already knows.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.health import Handler, Response
from agent.outbox import connect

if TYPE_CHECKING:
    import jinja2

    from agent.daemon import Daemon
    from agent.observe import Observer

POLL_MS = 1000
REJECTED_SHOWN = 5
_STATIC = {"dock.css": "text/css; charset=utf-8", "dock.js": "text/javascript; charset=utf-8"}
# Session keys a person reads; anything else a station keeps is shown by its own name.
_LABELS = {
    "po": "PO / ASN",
    "order": "order",
    "operator": "operator",
    "location": "location",
    "disposition": "disposition",
    "count": "count session",
    "session": "session",
    "next_qty": "next quantity",
}


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


class DockPage:
    """Renders the board from the observer's snapshot and the daemon's recent scans."""

    def __init__(self, daemon: Daemon, observer: Observer) -> None:
        self.daemon = daemon
        self.observer = observer
        self._env: jinja2.Environment | None = None
        self._static = {
            name: resources.files("agent.dock").joinpath("static", name).read_bytes()
            for name in _STATIC
        }
        self._rejected: list[dict[str, Any]] = []
        self._rejected_total = 0
        self._rejected_seen: int | None = None  # the syncer's count when last read

    @property
    def env(self) -> jinja2.Environment:
        """Made at the first page asked for: an agent whose page nobody opens never
        imports Jinja2 (~2 MB resident)."""
        if self._env is None:
            import jinja2

            env = jinja2.Environment(
                loader=jinja2.PackageLoader("agent.dock", "templates"),
                autoescape=True,
                undefined=jinja2.StrictUndefined,
            )
            env.filters["ago"] = ago
            self._env = env
        return self._env

    def routes(self) -> dict[str, Handler]:
        routes: dict[str, Handler] = {"/": self._page, "/dock/board": self._board}
        for name, ctype in _STATIC.items():
            routes[f"/dock/static/{name}"] = self._file(name, ctype)
        return routes

    def _file(self, name: str, ctype: str) -> Handler:
        body = self._static[name]

        async def serve() -> Response:
            return Response(200, body, ctype)

        return serve

    async def _page(self) -> Response:
        board = await self.board()
        html = self.env.get_template("dock.html").render(board=board, poll_ms=POLL_MS)
        return Response(200, html.encode(), "text/html; charset=utf-8")

    async def _board(self) -> Response:
        html = self.env.get_template("board.html").render(board=await self.board())
        return Response(200, html.encode(), "text/html; charset=utf-8")

    async def board(self) -> dict[str, Any]:
        """What the board shows, as plain data (the templates only lay it out)."""
        snap = self.observer.snapshot()
        await self._refresh_rejected()
        now = self.daemon.clock.wall()
        paired: dict[str, list[str]] = {}
        for handheld, station in snap["pairings"].items():
            paired.setdefault(station, []).append(handheld)
        stations = []
        for st in snap["stations"]:
            session = st["session"] or {}
            stations.append(
                {
                    "name": st["name"],
                    "kind": st["kind"],
                    "location": st["location"],
                    "open": [
                        (_LABELS.get(k, k.replace("_", " ")), _text(v))
                        for k, v in sorted(session.items())
                        if v not in (None, "", {}, [])
                    ],
                    "paired": sorted(paired.get(st["name"], [])),
                    "scans": [
                        {
                            "age": ago(now - s.at),
                            "data": s.data,
                            "outcome": s.outcome,
                            "reason": s.reason,
                            "moved": s.moved,
                            "device": s.device,
                        }
                        for s in self.daemon.scans.of(st["name"])
                    ],
                }
            )
        devices = [{**d, "last_read": ago(d["last_read_age_s"])} for d in snap["devices"]]
        return {
            "agent": snap["agent"],
            "healthy": snap["healthy"],
            "reasons": snap["reasons"],
            "clock": time.strftime("%H:%M:%S", time.localtime(now)),
            "stations": stations,
            "devices": devices,
            "outbox": {
                **snap["outbox"],
                "oldest": ago(snap["outbox"]["oldest_pending_age_s"]),
                "rejected": self._rejected,
                "rejected_total": self._rejected_total,
            },
            "sync": {**snap["sync"], "last_success": ago(snap["sync"]["last_success_age_s"])},
            # several sinks: one line each (one sink: the sync line says it all)
            "sinks": [
                {"name": name, **st, "last_success": ago(st["last_success_age_s"])}
                for name, st in snap["sinks"].items()
            ]
            if len(snap["sinks"]) > 1
            else [],
            "alarms": [{**a, "since": ago(a["age_s"])} for a in snap["alarms"]],
        }

    async def _refresh_rejected(self) -> None:
        """The newest rejected movements with the ledger's reason, read again only when
        the count changes (a read-only connection beside the writer; WAL never blocks it)."""
        outbox = self.daemon.outbox
        syncer = self.daemon.syncer
        if outbox is None or syncer is None:
            return
        rejected = sum(s.status.rejected for s in self.daemon.syncers.values())
        if rejected == self._rejected_seen:
            return
        self._rejected_seen = rejected
        self._rejected_total, self._rejected = await asyncio.to_thread(_read_rejected, outbox.path)


def _read_rejected(path: Path) -> tuple[int, list[dict[str, Any]]]:
    try:
        conn = connect(path, readonly=True)
    except sqlite3.Error:
        return 0, []
    try:
        count = conn.execute("SELECT count(*) FROM movements WHERE state = 'rejected'").fetchone()[
            0
        ]
        rows = conn.execute(
            "SELECT seq, payload, last_error FROM movements WHERE state = 'rejected' "
            "ORDER BY seq DESC LIMIT ?",
            (REJECTED_SHOWN,),
        ).fetchall()
    except sqlite3.Error:
        return 0, []
    finally:
        conn.close()
    out = []
    for seq, payload, error in rows:
        m = json.loads(payload)
        item = m.get("item") or {}
        what = next((item[k] for k in ("gtin", "sku", "sscc", "epc") if item.get(k)), "?")
        out.append(
            {"seq": seq, "what": f"{m.get('kind')} {m.get('qty')} × {what}", "reason": error}
        )
    return int(count), out


def _text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)
