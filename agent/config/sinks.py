"""[[sync.sink]]: where movements go, one table per sink, each with its own delivery.

Every sink type's settings share the delivery keys of ``[sync]`` (batches,
backoff, stall alarm); a key a sink table leaves out takes ``[sync]``'s value,
so one ``[sync]`` line sets it for all. A sink type is one entry in
``SINK_SETTINGS`` (its settings class) and one in ``agent.sync.registry`` (the
factory that makes the sink from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.config.meta import Size, _help


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    """What every sink's delivery task takes: its batches, its retry, its stall alarm."""

    batch_max: int = field(
        default=500, metadata=_help("most movements per request", minimum=1, maximum=10000)
    )
    batch_max_bytes: Size = field(
        default=Size(1 << 20), metadata=_help("most payload bytes per request", minimum=1024)
    )
    timeout_s: float = field(default=10.0, metadata=_help("per-request timeout", minimum=0.1))
    backoff_initial_s: float = field(
        default=0.5, metadata=_help("first retry wait (full jitter)", minimum=0.001)
    )
    backoff_cap_s: float = field(default=300.0, metadata=_help("longest retry wait", minimum=0.01))
    auth_retry_s: float = field(
        default=300.0,
        metadata=_help("retry wait after an authentication failure (a config alarm)", minimum=0.01),
    )
    stall_alarm_s: float = field(
        default=600.0, metadata=_help("backlog age that raises the stall alarm", minimum=1)
    )


@dataclass(frozen=True, kw_only=True)
class HttpLedgerSinkSettings(DeliverySettings):
    url: str = field(metadata=_help("base URL of the ledger, http:// or https://", url=True))
    token_file: Path = field(
        metadata=_help(
            "file holding the agent's bearer token; ${CREDENTIALS_DIRECTORY} is expanded "
            "when it is read",
            late_env=True,
        )
    )
    verify_tls: bool = field(default=True, metadata=_help("verify the ledger's TLS certificate"))
    ca_file: Path | None = field(
        default=None, metadata=_help("CA bundle for the ledger's certificate")
    )

    def secret_files(self) -> dict[str, Path]:
        return {"token_file": self.token_file}


@dataclass(frozen=True, kw_only=True)
class MqttSinkSettings(DeliverySettings):
    host: str = field(metadata=_help("the MQTT broker's host name or address"))
    port: int = field(default=1883, metadata=_help("the broker's port", minimum=1, maximum=65535))
    username: str | None = field(default=None, metadata=_help("user name, if the broker asks"))
    password_file: Path | None = field(
        default=None,
        metadata=_help(
            "file holding the password; ${CREDENTIALS_DIRECTORY} is expanded when it is read",
            late_env=True,
        ),
    )
    topic_prefix: str = field(
        default="edgetally",
        metadata=_help(
            "topics are <prefix>/<agent>/<station>/movements, <prefix>/<agent>/alarms and "
            "<prefix>/<agent>/status"
        ),
    )
    keepalive_s: int = field(
        default=30,
        metadata=_help("MQTT keepalive; the broker publishes the will after 1.5x", minimum=5),
    )

    def secret_files(self) -> dict[str, Path]:
        return {} if self.password_file is None else {"password_file": self.password_file}


@dataclass(frozen=True, kw_only=True)
class TrytonSinkSettings(DeliverySettings):
    url: str = field(
        metadata=_help("trytond's web listener; RPC goes to <url>/<database>/rpc/", url=True)
    )
    database: str = field(metadata=_help("the Tryton database"))
    login: str = field(metadata=_help("a Tryton user in the Stock group, with the company set"))
    password_file: Path = field(
        metadata=_help(
            "file holding that user's password; ${CREDENTIALS_DIRECTORY} is expanded when it "
            "is read",
            late_env=True,
        )
    )
    supplier: str = field(default="SUP", metadata=_help("Tryton location code receipts come from"))
    customer: str = field(default="CUS", metadata=_help("Tryton location code shipments go to"))
    lost_found: str = field(
        default="LOST",
        metadata=_help("Tryton location code for counts, adjustments and scrap (give it one)"),
    )
    locations: dict[str, str] = field(
        default_factory=dict,
        metadata=_help("EdgeTally location -> Tryton storage location code"),
    )
    timeout_s: float = field(
        default=30.0, metadata=_help("per-request timeout (a batch is one booking)", minimum=0.1)
    )

    def secret_files(self) -> dict[str, Path]:
        return {"password_file": self.password_file}


@dataclass(frozen=True, kw_only=True)
class EpcisSinkConfig(DeliverySettings):
    """The ``epcis`` sink (``agent.sync.epcis``): GS1 EPCIS 2.0 events to ``{url}/capture``."""

    url: str = field(
        metadata=_help(
            "the EPCIS repository's base URL; batches go to <url>/capture (the reference "
            "ledger's: http://host:8080/epcis)",
            url=True,
        )
    )
    token_file: Path | None = field(
        default=None,
        metadata=_help(
            "file holding the bearer token; ${CREDENTIALS_DIRECTORY} is expanded when it is "
            "read; none: no Authorization header",
            late_env=True,
        ),
    )
    stations: dict[str, str] = field(
        default_factory=dict,
        metadata=_help("station -> SGLN URI (urn:epc:id:sgln:...), its readPoint and bizLocation"),
    )
    default_read_point: str | None = field(
        default=None, metadata=_help("SGLN URI, the readPoint of stations not in stations")
    )
    default_biz_location: str | None = field(
        default=None, metadata=_help("SGLN URI, the bizLocation of stations not in stations")
    )
    timezone: str = field(
        default="UTC", metadata=_help("IANA zone of the site, for eventTimeZoneOffset")
    )
    company_prefix_length: int = field(
        default=7,
        metadata=_help(
            "GS1 company prefix length for GTINs GS1's prefix table does not cover",
            minimum=6,
            maximum=12,
        ),
    )
    verify_tls: bool = field(
        default=True, metadata=_help("verify the repository's TLS certificate")
    )
    ca_file: Path | None = field(
        default=None, metadata=_help("CA bundle for the repository's certificate")
    )
    poll_initial_s: float = field(
        default=0.05, metadata=_help("first wait while following the capture job", minimum=0.001)
    )
    poll_max_s: float = field(
        default=2.0, metadata=_help("longest wait while following the capture job", minimum=0.001)
    )
    poll_timeout_s: float = field(
        default=60.0,
        metadata=_help(
            "a capture job still running after this is a retry (eventIDs make a resend safe)",
            minimum=0.01,
        ),
    )

    def secret_files(self) -> dict[str, Path]:
        return {} if self.token_file is None else {"token_file": self.token_file}

    def check(self) -> list[tuple[str, str]]:
        """Every SGLN and the time zone, as the sink itself checks them: [(key, expected)]."""
        from agent.sync.epcis import sgln_problem, timezone_problem

        places = [(f"stations.{st}", v) for st, v in self.stations.items()]
        places += [
            (k, v)
            for k, v in (
                ("default_read_point", self.default_read_point),
                ("default_biz_location", self.default_biz_location),
            )
            if v is not None
        ]
        problems = [(key, p) for key, value in places if (p := sgln_problem(value))]
        if zone := timezone_problem(self.timezone):
            problems.append(("timezone", zone))
        return problems


# The keys of [sync] that every sink shares; the loader copies the ones set there.
DELIVERY_KEYS = tuple(f.name for f in fields(DeliverySettings))

# type -> settings class (and its factory in agent.sync.registry.FACTORIES).
SINK_SETTINGS: dict[str, type[DeliverySettings]] = {
    "http-ledger": HttpLedgerSinkSettings,
    "mqtt": MqttSinkSettings,
    "tryton": TrytonSinkSettings,
    "epcis": EpcisSinkConfig,
}


@dataclass(frozen=True)
class SinkSettings:
    """A sink: its ``name`` (its delivery state in the outbox is kept under it), its
    ``type`` and the type's own settings. ``where`` is its key path in the config."""

    name: str
    type: str
    options: Any
    where: str = "sync"

    def shown(self) -> dict[str, Any]:
        """For ``config show``: every URL with its userinfo and query values masked."""
        from dataclasses import asdict

        from agent.urls import redacted

        options = {
            k: redacted(v) if k.endswith("url") and isinstance(v, str) else v
            for k, v in asdict(self.options).items()
        }
        return {"name": self.name, "type": self.type, **options}
