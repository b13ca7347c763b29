"""`edgetally status`: what the agent is doing, for a person or a script.

From the running agent's /status when it answers (stations, devices, alarms,
sync), else from the outbox file alone through a read-only connection (WAL
readers never block the writer), saying that the agent did not answer.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agent.config import Config, parse_listen
from agent.errors import OutboxError
from agent.outbox import connect, read_sink_pending, read_stats, read_sync_state


def outbox_status(
    path: Path, max_bytes: int, now: float | None = None, sinks: tuple[str, ...] = ("ledger",)
) -> dict[str, Any]:
    if not path.exists():
        raise OutboxError(f"no outbox at {path}: has the agent run with this config?")
    now = time.time() if now is None else now
    try:
        conn = connect(path, readonly=True)
        try:
            stats = read_stats(conn, max_bytes)
            sync = read_sync_state(conn, sinks[0])
            per_sink = {s: read_sync_state(conn, s) for s in sinks}
            sink_pending = read_sink_pending(conn, sinks)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read the outbox {path}: {exc}") from exc
    oldest = stats.oldest_pending_created_at
    return {
        "outbox": {
            "path": str(path),
            "pending": stats.pending,
            "delivered": stats.delivered,
            "rejected": stats.rejected,
            "reads": stats.reads,
            "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - oldest), 3),
            "bytes": stats.used_bytes,
            "cap_bytes": stats.max_bytes,
            "next_seq": stats.next_seq,
        },
        "sync": {
            "last_success_at": sync.last_success_at,
            "last_success_age_s": None
            if sync.last_success_at is None
            else round(now - sync.last_success_at, 3),
            "last_error": sync.last_error,
            "last_error_at": sync.last_error_at,
            "attempts": sync.attempts,
            "next_attempt_at": sync.next_attempt_at,
        },
        # Each sink's own delivery: what waits for it, and its backoff (the first is
        # the "sync" above).
        "sinks": {
            name: {
                "pending": sink_pending[name],
                "attempts": st.attempts,
                "last_success_age_s": None
                if st.last_success_at is None
                else round(now - st.last_success_at, 3),
                "last_error": st.last_error,
            }
            for name, st in per_sink.items()
        },
    }


def agent_status(config: Config, timeout_s: float = 2.0) -> dict[str, Any]:
    """The running agent's own view joined to the outbox's, or the outbox's alone."""
    report = outbox_status(
        config.outbox_path, config.outbox.max_bytes, sinks=tuple(s.name for s in config.sinks)
    )
    listen = config.health.listen
    if not listen or parse_listen(listen)[1] == 0:
        report["agent"] = {"reachable": False, "why": "health.listen names no fixed port"}
        return report
    host, port = parse_listen(listen)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/status"
    try:
        live = httpx.get(url, timeout=timeout_s).json()
    except (httpx.HTTPError, ValueError) as exc:
        report["agent"] = {"reachable": False, "why": f"{url}: {exc or type(exc).__name__}"}
        return report
    theirs = (live.get("agent"), live.get("outbox", {}).get("path"))
    if theirs[0] != config.agent.id or Path(str(theirs[1])) != config.outbox_path.absolute():
        # Another agent holds this port: its data is not this config's.
        report["agent"] = {
            "reachable": False,
            "why": f"{url} is answered by agent {theirs[0]!r} (outbox {theirs[1]}), not this "
            f"config's {config.agent.id!r} (outbox {config.outbox_path}): is this agent "
            "running, and with its own health.listen?",
        }
        return report
    report["agent"] = {"reachable": True, **live}
    return report


def render(status: dict[str, Any]) -> RenderableType:
    """A terminal view of a status report (rich)."""
    o, s, agent = status["outbox"], status["sync"], status.get("agent", {"reachable": False})
    parts: list[RenderableType] = []
    if agent.get("reachable"):
        warnings = agent.get("warnings") or []
        if not agent["healthy"]:
            health = Text("needs attention: " + "; ".join(agent["reasons"]), style="bold red")
        elif warnings:
            health = Text("degraded: " + "; ".join(warnings), style="bold yellow")
        else:
            health = Text("healthy", style="bold green")
        parts.append(Text.assemble(f"agent {agent['agent']}  ", health))
        devices = Table("device", "driver", "connected", "last read", title="devices")
        for d in agent["devices"]:
            devices.add_row(
                d["id"],
                d["driver"],
                "yes" if d["connected"] else f"no: {d['error'] or '-'}",
                _ago(d["last_read_age_s"]),
            )
        stations = Table("station", "kind", "location", "devices", title="stations")
        for st in agent["stations"]:
            stations.add_row(
                st["name"], st["kind"], st["location"] or "-", ", ".join(st["devices"])
            )
        parts += [stations, devices]
        if agent["alarms"]:
            alarms = Table("alarm", "since", "message", title="alarms", style="red")
            for a in agent["alarms"]:
                alarms.add_row(a["alarm"], _ago(a["age_s"]), a["message"])
            parts.append(alarms)
    else:
        parts.append(
            Text(f"agent not answering ({agent.get('why')}); from the outbox file:", style="yellow")
        )
    outbox = Table("pending", "delivered", "rejected", "oldest pending", "size", title="outbox")
    outbox.add_row(
        str(o["pending"]),
        str(o["delivered"]),
        str(o["rejected"]),
        _ago(o["oldest_pending_age_s"]),
        f"{o['bytes'] / 2**20:.1f} of {o['cap_bytes'] / 2**20:.0f} MiB",
    )
    sync = Table("last success", "last error", "failed attempts", "rate", title="sync")
    sync.add_row(
        _ago(s["last_success_age_s"]),
        s["last_error"] or "-",
        str(s["attempts"]),
        f"{status['rate_per_s']:.1f}/s" if "rate_per_s" in status else "-",
    )
    parts += [outbox, sync]
    sinks = status.get("sinks") or {}
    if len(sinks) > 1:  # several sinks: where each stands (the agent's live view if it answers)
        live = agent.get("sinks") or {} if agent.get("reachable") else {}
        table = Table("sink", "pending", "delivered", "last success", "last error", title="sinks")
        for name, st in sinks.items():
            mine = live.get(name, {})
            table.add_row(
                name,
                str(mine.get("pending", st["pending"])),
                str(mine["delivered"]) if "delivered" in mine else "-",
                _ago(mine.get("last_success_age_s", st["last_success_age_s"])),
                mine.get("last_error", st["last_error"]) or "-",
            )
        parts.append(table)
    return Group(*parts)


def _ago(age: float | None) -> str:
    return "never" if age is None else f"{age:.1f}s ago"
