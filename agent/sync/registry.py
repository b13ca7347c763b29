"""Sink types: how a ``[[sync.sink]]`` table becomes a sink the Syncer drives.

A sink takes a batch and answers per movement (``send``), and closes
(``aclose``); the Syncer owns retry, bisection and the outbox. Adding a type
is one entry here (its factory) and one in ``agent.config.sinks.SINK_SETTINGS``
(its settings). Sink modules are imported when a config uses them, so an agent
with one ledger never loads a broker client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from agent.config import SinkSettings
from agent.outbox import Pending
from agent.sync.http_ledger import Result


class Sink(Protocol):
    async def send(self, agent: str, batch: Sequence[Pending], batch_id: str) -> list[Result]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class SinkContext:
    """What a factory may need beside the sink's own settings."""

    agent: str
    secrets: Mapping[str, str]  # the sink's secret files' contents, by key
    wall: Callable[[], float]
    transport: httpx.AsyncBaseTransport | None = None  # tests: an in-process ledger


def _http_ledger(s: SinkSettings, ctx: SinkContext) -> Sink:
    from agent.sync.http_ledger import HttpLedgerSink

    o = s.options
    return HttpLedgerSink(
        o.url,
        ctx.secrets["token_file"],
        timeout_s=o.timeout_s,
        verify_tls=o.verify_tls,
        ca_file=o.ca_file,
        transport=ctx.transport,
        wall=ctx.wall,
    )


def _mqtt(s: SinkSettings, ctx: SinkContext) -> Sink:
    from agent.sync.mqtt import MqttSink

    o = s.options
    return MqttSink(
        o.host,
        o.port,
        ctx.agent,
        username=o.username,
        password=ctx.secrets.get("password_file"),
        topic_prefix=o.topic_prefix,
        keepalive_s=o.keepalive_s,
        timeout_s=o.timeout_s,
        client_id=f"edgetally-{ctx.agent}-{s.name}",
    )


def _tryton(s: SinkSettings, ctx: SinkContext) -> Sink:
    from agent.sync.tryton import TrytonPlaces, TrytonSink

    o = s.options
    places = TrytonPlaces(o.locations, o.supplier, o.customer, o.lost_found)
    return TrytonSink(
        o.url, o.database, o.login, ctx.secrets["password_file"], places, timeout_s=o.timeout_s
    )


def _epcis(s: SinkSettings, ctx: SinkContext) -> Sink:
    from agent.sync.epcis import EpcisSink

    return EpcisSink(
        s.options, ctx.secrets.get("token_file"), transport=ctx.transport, wall=ctx.wall
    )


# type -> factory (and its settings in agent.config.sinks.SINK_SETTINGS).
FACTORIES: dict[str, Callable[[SinkSettings, SinkContext], Sink]] = {
    "http-ledger": _http_ledger,
    "mqtt": _mqtt,
    "tryton": _tryton,
    "epcis": _epcis,
}


def make_sink(settings: SinkSettings, ctx: SinkContext) -> Sink:
    return FACTORIES[settings.type](settings, ctx)


def describe(settings: SinkSettings) -> dict[str, Any]:
    """Where a sink delivers, for status (no secrets)."""
    from agent.urls import redacted

    o = settings.options
    url = getattr(o, "url", None)
    where = (
        redacted(url)
        if isinstance(url, str)
        else f"mqtt://{getattr(o, 'host', '?')}:{getattr(o, 'port', '')}"
    )
    return {"name": settings.name, "type": settings.type, "to": where}
