"""The typed settings sections and the Config they make up.

Every field carries its default and help text (``metadata``); the loader fills
them from TOML and the README's table is made from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.config.meta import Size, _help
from agent.config.sinks import DeliverySettings, SinkSettings
from agent.config.stations import StationSettings
from agent.identify.settings import IdentifySettings
from agent.urls import redacted


@dataclass(frozen=True)
class AgentSettings:
    id: str = field(metadata=_help("this agent's id; the ledger knows its token by it", id=True))
    state_dir: Path = field(
        default=Path("/var/lib/edgetally"),
        metadata=_help("where the outbox lives (systemd's StateDirectory)"),
    )
    log_level: Literal["debug", "info", "warning", "error"] = field(
        default="info", metadata=_help("log level of the JSON logs on stdout")
    )
    log_flow_s: float = field(
        default=10.0,
        metadata=_help(
            "seconds between `flow` log lines (reads, movements stored and delivered since "
            "the last; only when something moved); 0: off",
            minimum=0,
        ),
    )


@dataclass(frozen=True)
class OutboxSettings:
    path: Path = field(
        default=Path("outbox.db"),
        metadata=_help("SQLite file, relative to agent.state_dir", under_state_dir=True),
    )
    max_bytes: Size = field(
        default=Size(512 * 2**20),
        metadata=_help("size cap; at the cap new reads are refused with an alarm", minimum=1 << 20),
    )
    retention_days: float = field(
        default=30.0, metadata=_help("days delivered movements are kept", minimum=0)
    )
    # 2048, not 512: under an RFID flood the rules take this many reads per commit,
    # and each commit waits for an fsync (4-8 ms on the dev VM); bench.rfid at 1000
    # tags made 20-27k reads/s at 512 and 26-39k at 2048, side by side.
    group_max: int = field(
        default=2048, metadata=_help("most writes committed in one transaction", minimum=1)
    )
    prune_interval_s: float = field(
        default=3600.0, metadata=_help("how often retention pruning runs", minimum=1)
    )


@dataclass(frozen=True, kw_only=True)
class SyncSettings(DeliverySettings):
    """[sync]: the delivery every sink takes unless its own table says otherwise, and
    the url of the http-ledger sink named `ledger` (the one sink before there were more)."""

    url: str | None = field(
        default=None,
        metadata=_help(
            "base URL of the ledger, http:// or https://: the http-ledger sink named "
            "`ledger`; required unless [[sync.sink]] tables name the sinks",
            url=True,
        ),
    )
    token_file: Path | None = field(
        default=None,
        metadata=_help(
            "file holding the agent's bearer token; ${CREDENTIALS_DIRECTORY} is expanded "
            "when it is read; required with url",
            late_env=True,
        ),
    )
    sink: Literal["http-ledger"] = field(
        default="http-ledger",
        metadata=_help("the type of the sink url names; more sinks: [[sync.sink]] tables"),
    )
    verify_tls: bool = field(default=True, metadata=_help("verify the ledger's TLS certificate"))
    ca_file: Path | None = field(
        default=None, metadata=_help("CA bundle for the ledger's certificate")
    )


@dataclass(frozen=True)
class HealthSettings:
    listen: str = field(
        default="127.0.0.1:8711",
        metadata=_help(
            "host:port of /healthz, /metrics and /status; empty to turn off", listen=True
        ),
    )
    outbox_warn_ratio: float = field(
        default=0.9,
        metadata=_help("outbox use (of max_bytes) that makes /healthz 503", minimum=0.01),
    )
    require_clock_sync: bool = field(
        default=False,
        metadata=_help(
            "an unsynchronised wall clock makes /healthz 503; off: it is a warning "
            "(/healthz 200 `degraded`, and in `status`)"
        ),
    )
    ledger_down_attempts: int = field(
        default=3,
        metadata=_help(
            "failed delivery attempts in a row that make /healthz 503 (the ledger is down)",
            minimum=1,
        ),
    )
    ledger_down_s: float = field(
        default=30.0,
        metadata=_help(
            "seconds of failing delivery that make /healthz 503, if fewer attempts fit in them",
            minimum=0.1,
        ),
    )


@dataclass(frozen=True)
class RecordSettings:
    path: Path | None = field(
        default=None,
        metadata=_help(
            "append every read as a JSON line here (for `edgetally replay`), relative to "
            "agent.state_dir; unset: off",
            under_state_dir=True,
        ),
    )
    max_bytes: Size = field(
        default=Size(64 * 2**20),
        metadata=_help(
            "at this size the file is rotated to <path>.1 (the older .1 is replaced)",
            minimum=1 << 16,
        ),
    )


@dataclass(frozen=True)
class DeviceSettings:
    """A device: ``id``, ``driver`` and the driver's own options, checked by the driver."""

    id: str
    driver: str
    options: Any


@dataclass(frozen=True)
class Config:
    file: Path
    agent: AgentSettings
    outbox: OutboxSettings
    sync: SyncSettings
    health: HealthSettings = field(default_factory=HealthSettings)
    devices: tuple[DeviceSettings, ...] = ()
    stations: tuple[StationSettings, ...] = ()
    record: RecordSettings = field(default_factory=RecordSettings)
    identify: IdentifySettings = field(default_factory=IdentifySettings)
    # Every sink, in config order: [sync]'s url as the http-ledger `ledger` first, if
    # set, then each [[sync.sink]]. The loader makes sure there is at least one.
    sinks: tuple[SinkSettings, ...] = ()

    @property
    def outbox_path(self) -> Path:
        return self.agent.state_dir / self.outbox.path

    @property
    def record_path(self) -> Path | None:
        path = self.record.path
        return None if path is None else self.agent.state_dir / path

    def shown(self) -> dict[str, Any]:
        """The config in effect, for `config show`; the token is never read here."""
        from dataclasses import asdict

        out = {
            "agent": asdict(self.agent),
            "outbox": asdict(self.outbox),
            "sync": {
                **asdict(self.sync),
                "url": None if self.sync.url is None else redacted(self.sync.url),
                "sinks": [s.shown() for s in self.sinks],
            },
            "health": asdict(self.health),
            "devices": [
                {"id": d.id, "driver": d.driver, **asdict(d.options)} for d in self.devices
            ],
            "stations": [asdict(s) for s in self.stations],
            "record": asdict(self.record),
            "identify": asdict(self.identify),
        }
        shown: dict[str, Any] = _jsonable(out)
        return shown


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
