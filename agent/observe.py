"""What a person or a monitor sees of a running daemon: /healthz, /metrics, /status.

Reads the daemon's state and never changes it; the daemon starts it after
setup and closes its server on stop.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from agent.config import parse_listen
from agent.dock.page import DockPage
from agent.errors import ConfigError
from agent.health import HealthServer, Response, json_response
from agent.logs import event
from drivers import Driver

if TYPE_CHECKING:
    from agent.daemon import Daemon
    from agent.sync import Syncer

log = logging.getLogger("edgetally.daemon")
ALARM_KEYS = (
    "outbox_refusing",
    "sync_stalled",
    "ledger_auth",
    "ledger_config",
    "rejected",
    "record_failed",
)


CLOCK_WARNING = "wall clock not synchronised: movements carry clock.synced = false"


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else round(max(0.0, now - then), 3)


class Observer:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.port: int | None = None

    async def start(self) -> HealthServer | None:
        listen = self.daemon.config.health.listen
        if not listen:
            return None
        host, port = parse_listen(listen)
        server = HealthServer(
            host,
            port,
            {
                "/healthz": self._healthz,
                "/metrics": self._metrics,
                "/status": self._status,
                **DockPage(self.daemon, self).routes(),  # the dock page: / and /dock/...
            },
        )
        try:
            await server.start()
        except OSError as exc:
            # Refuse to start: an agent without its endpoint is unwatched, and
            # `status` would show whoever holds the port as this agent.
            event(log, "health_failed", level=logging.ERROR, listen=listen, error=str(exc))
            raise ConfigError(
                str(self.daemon.config.file),
                "health.listen",
                f"an address this agent can listen on; {listen}: "
                f"{os.strerror(exc.errno) if exc.errno else exc} "
                "(another agent on this machine? give each its own port)",
            ) from exc
        self.port = server.port
        return server

    def connected(self, driver: Driver) -> bool:
        return (
            driver.state == "open"
            and driver.present
            and driver.device_id not in self.daemon.device_errors
        )

    def health_reasons(self) -> list[str]:
        """Why the agent needs a person's attention; empty when all is well."""
        cfg, outbox = self.daemon.config, self.daemon.outbox
        assert outbox is not None and self.daemon.syncers
        reasons = []
        for syncer in self.daemon.syncers.values():
            down = self.sink_down(syncer)
            if down is not None:
                reasons.append(down)
        used, cap = outbox.used_bytes(), outbox.max_bytes
        if used >= cfg.health.outbox_warn_ratio * cap:
            reasons.append(f"outbox at {used / cap:.0%} of its cap ({used} of {cap} bytes)")
        for syncer in self.daemon.syncers.values():
            stalled = self.stalled(syncer)
            if stalled is not None:
                reasons.append(stalled)
        for driver in self.daemon.drivers:
            if not self.connected(driver):
                why = (
                    self.daemon.device_errors.get(driver.device_id)
                    or driver.problem
                    or ("absent" if driver.state == "open" else driver.state)
                )
                reasons.append(f"device {driver.device_id} not connected: {why}")
        if cfg.health.require_clock_sync and not self.daemon.clock.synced():
            reasons.append(CLOCK_WARNING)
        active = self.daemon.alarms.active()
        for key in active:
            if key == "outbox_refusing" or key.split(":")[0] in ("ledger_auth", "ledger_config"):
                reasons.append(active[key].message)
        return reasons

    def stalled(self, syncer: Syncer) -> str | None:
        oldest, now = syncer.oldest_pending_at, self.daemon.clock.wall()
        if oldest is None or now - oldest <= syncer.stall_alarm_s:
            return None
        who = "sync" if syncer.primary else f"sink {syncer.name}"
        return (
            f"{who} stalled: the oldest pending movement has waited "
            f"{now - oldest:.0f}s (limit {syncer.stall_alarm_s:.0f}s); "
            f"last error: {syncer.status.last_error or 'none'}"
        )

    def ledger_down(self) -> str | None:
        """The first sink's ``sink_down`` (the ledger of the days of one sink)."""
        assert self.daemon.syncer is not None
        return self.sink_down(self.daemon.syncer)

    def sink_down(self, syncer: Syncer) -> str | None:
        """A sink is down once delivery has failed health.ledger_down_attempts times
        in a row or for health.ledger_down_s: well before the stall alarm."""
        health = self.daemon.config.health
        st = syncer.status
        if st.failing_since is None:
            return None
        failing_s = self.daemon.clock.wall() - st.failing_since
        if st.failed_attempts < health.ledger_down_attempts and failing_s < health.ledger_down_s:
            return None
        who = "ledger" if syncer.primary and syncer.name == "ledger" else f"sink {syncer.name}"
        return (
            f"{who} not reachable: {st.failed_attempts} failed attempt(s) over {failing_s:.0f}s; "
            f"last error: {st.last_error or 'none'}"
        )

    def sinks(self) -> dict[str, dict[str, Any]]:
        """Each sink's delivery, for /healthz, /status and the dock page."""
        outbox, now = self.daemon.outbox, self.daemon.clock.wall()
        assert outbox is not None
        out = {}
        for name, syncer in self.daemon.syncers.items():
            st = syncer.status
            problem = self.sink_down(syncer) or self.stalled(syncer)
            out[name] = {
                "type": syncer.kind,
                "ok": problem is None,
                "problem": problem,
                "pending": outbox.sink_pending(name),
                "delivered": st.delivered,
                "rejected": st.rejected,
                "retries": st.retries,
                "last_success_age_s": _age(now, st.last_success_at),
                "last_error": st.last_error,
            }
        return out

    def health_warnings(self) -> list[str]:
        """Worth a look, but data still flows: /healthz stays 200 (``degraded``)."""
        cfg = self.daemon.config
        if not cfg.health.require_clock_sync and not self.daemon.clock.synced():
            return [CLOCK_WARNING]
        return []

    async def _healthz(self) -> Response:
        reasons = self.health_reasons()
        # With several sinks, each one's state: one down makes the agent 503 (it needs a
        # person), and says which, while the others keep delivering.
        extra = {"sinks": self.sinks()} if len(self.daemon.syncers) > 1 else {}
        if reasons:
            return json_response(503, {"status": "unhealthy", "reasons": reasons, **extra})
        warnings = self.health_warnings()
        if warnings:
            return json_response(200, {"status": "degraded", "warnings": warnings, **extra})
        return json_response(200, {"status": "ok", **extra})

    async def _metrics(self) -> Response:
        m, outbox, syncer = self.daemon.metrics, self.daemon.outbox, self.daemon.syncer
        assert outbox is not None and syncer is not None
        m.backlog.set(outbox.pending_count)
        oldest = syncer.oldest_pending_at
        m.oldest_pending_age.set(
            0 if oldest is None else max(0.0, self.daemon.clock.wall() - oldest)
        )
        m.outbox_bytes.set(outbox.used_bytes())
        m.outbox_cap.set(outbox.max_bytes)
        for driver in self.daemon.drivers:
            m.device_connected.labels(driver.device_id).set(1 if self.connected(driver) else 0)
        active = self.daemon.alarms.active()
        for key in ALARM_KEYS:
            m.alarm.labels(key).set(1 if key in active else 0)
        for key in active:
            if key not in ALARM_KEYS:  # another sink's, named key:sink
                m.alarm.labels(key).set(1)
        for name, syncer in self.daemon.syncers.items():
            m.sink_pending.labels(name).set(outbox.sink_pending(name))
            m.sink_up.labels(name).set(0 if self.sink_down(syncer) else 1)
        m.clock_synced.set(1 if self.daemon.clock.synced() else 0)
        return Response(200, m.render(), "text/plain; version=0.0.4; charset=utf-8")

    async def _status(self) -> Response:
        return json_response(200, self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """What `edgetally status` shows: stations, devices, outbox, sync, alarms, clock."""
        cfg, outbox, syncer = self.daemon.config, self.daemon.outbox, self.daemon.syncer
        assert outbox is not None and syncer is not None
        now = self.daemon.clock.wall()
        oldest = syncer.oldest_pending_at
        reasons = self.health_reasons()
        rules = self.daemon.rules.status() if self.daemon.rules is not None else None
        return {
            "agent": cfg.agent.id,
            "config": str(cfg.file),
            "healthy": not reasons,
            "reasons": reasons,
            "warnings": self.health_warnings(),
            "uptime_s": round(now - self.daemon.started_at, 3),
            "stations": [
                {
                    "name": st.name,
                    "kind": st.kind,
                    "location": st.location,
                    "devices": list(st.devices),
                    "session": rules["stations"].get(st.name) if rules else None,
                }
                for st in cfg.stations
            ],
            "pairings": rules["pairings"] if rules else {},
            "devices": [
                {
                    "id": d.device_id,
                    "driver": type(d).__name__,
                    "connected": self.connected(d),
                    "error": self.daemon.device_errors.get(d.device_id) or d.problem,
                    "last_read_age_s": _age(now, self.daemon.last_read_at.get(d.device_id)),
                }
                for d in self.daemon.drivers
            ],
            "outbox": {
                "path": str(outbox.path.absolute()),  # `status` compares it with its config
                "pending": outbox.pending_count,
                "oldest_pending_age_s": _age(now, oldest),
                "bytes": outbox.used_bytes(),
                "cap_bytes": outbox.max_bytes,
            },
            "reads": dict(self.daemon.counters.reads),
            "tag_reads": self.daemon.counters.tag_reads,
            "sync": {
                "delivered": syncer.status.delivered,
                "rejected": syncer.status.rejected,
                "retries": syncer.status.retries,
                "last_success_age_s": _age(now, syncer.status.last_success_at),
                "last_error": syncer.status.last_error,
                "last_error_age_s": _age(now, syncer.status.last_error_at),
            },
            "sinks": self.sinks(),
            "alarms": [
                {"alarm": a.key, "message": a.message, "age_s": _age(now, a.since)}
                for a in self.daemon.alarms.active().values()
            ],
            "clock": {"synced": self.daemon.clock.synced(), "boot_id": self.daemon.clock.boot_id},
        }
