"""The ``mqtt`` sink: movements and alarms published to a broker with aiomqtt, QoS 1.

Topics (``edgetally`` is ``topic_prefix``):

    edgetally/<agent>/<station>/movements   each movement, as the ledger receives it
    edgetally/<agent>/alarms                alarms raised and cleared (JSON), best effort
    edgetally/<agent>/status                retained: "online"; the broker's last will
                                            publishes "offline" if the agent vanishes

A movement is delivered when the broker acknowledges it (PUBACK). QoS 1 is
"at least once": a batch whose acknowledgements were lost (the connection
dropped, the agent was killed before it recorded them) is published again, so a
subscriber may see a movement twice and must dedupe on its ``id``, which is
the same in every copy. MQTT has no per-message refusal, so this sink never
rejects: a broker that is down, or refuses the agent's login, is retried
(SyncTransient, LedgerAuth) and the movements wait in the outbox.

paho-mqtt's and aiomqtt's errors become ours here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import aiomqtt
import orjson
from aiomqtt.exceptions import MqttConnectError

from agent.alarms import Alarm
from agent.errors import LedgerAuth, SyncTransient
from agent.logs import event
from agent.outbox import Pending
from agent.sync.http_ledger import Result

log = logging.getLogger("edgetally.sync")
# CONNACK refusals that are about who the agent is (MQTT 3.1.1 codes 4 and 5,
# MQTT 5 reason codes 134 and 135): a configuration alarm, retried slowly.
_AUTH_CODES = {4, 5, 134, 135}
ALARM_TIMEOUT_S = 2.0  # an alarm never holds the daemon's alarm loop longer than this
INFLIGHT = 100  # QoS 1 PUBLISHes awaiting their PUBACK at once (paho's default is 20)
# aiomqtt warns at every publish while more than 10 wait for their PUBACK; a whole
# batch in flight is this sink's design, so its own logger keeps to errors.
_CLIENT_LOG = logging.getLogger("edgetally.sync.mqtt_client")
_CLIENT_LOG.setLevel(logging.ERROR)


class MqttSink:
    """One broker connection, made at the first batch and again after it drops;
    closed stays closed."""

    def __init__(
        self,
        host: str,
        port: int,
        agent: str,
        username: str | None = None,
        password: str | None = None,
        topic_prefix: str = "edgetally",
        keepalive_s: int = 30,
        timeout_s: float = 10.0,
        client_id: str | None = None,
    ) -> None:
        self.where = f"mqtt://{host}:{port}"
        self._host, self._port = host, port
        self._username, self._password = username, password
        self._keepalive_s = keepalive_s
        self._timeout_s = timeout_s
        self._client_id = client_id
        self.prefix = f"{topic_prefix}/{agent}"
        self.status_topic = f"{self.prefix}/status"
        self.alarm_topic = f"{self.prefix}/alarms"
        self._client: aiomqtt.Client | None = None
        self._state = "open"

    def topic(self, movement: dict[str, Any]) -> str:
        station = movement.get("station") or "-"
        return f"{self.prefix}/{station}/movements"

    async def send(self, agent: str, batch: Sequence[Pending], batch_id: str) -> list[Result]:
        if self._state == "closed":
            raise RuntimeError("the mqtt sink is closed")
        client = await self._connected()
        # Every PUBLISH of the batch goes out at once, in seq order on one
        # connection; the batch is delivered when the broker has acknowledged all.
        publishes = [
            client.publish(self.topic(orjson.loads(p.payload)), p.payload, qos=1) for p in batch
        ]
        outcomes = await asyncio.gather(*publishes, return_exceptions=True)
        errors = [e for e in outcomes if isinstance(e, BaseException)]
        if errors:
            await self._drop()
            with self._map_errors():
                raise errors[0]
        return [Result(p.id, "applied") for p in batch]

    async def publish_alarm(self, alarm: Alarm, raised: bool) -> None:
        """Best effort: an alarm is published if the broker is there now (it is in
        /status and the log anyway); it never waits for a broker that is down."""
        client = self._client
        if client is None:
            return
        body = json.dumps(
            {"alarm": alarm.key, "raised": raised, "message": alarm.message, "since": alarm.since}
        )
        try:
            with self._map_errors():
                await client.publish(self.alarm_topic, body, qos=1, timeout=ALARM_TIMEOUT_S)
        except SyncTransient as exc:
            event(log, "mqtt_alarm_not_published", level=logging.WARNING, error=str(exc))

    async def aclose(self) -> None:
        """Say "offline" (retained) before a clean disconnect: the broker publishes the
        will only when a client vanishes."""
        self._state = "closed"
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(self.status_topic, b"offline", qos=1, retain=True, timeout=2)
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)

    async def _connected(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._username,
            password=self._password,
            identifier=self._client_id,
            will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            keepalive=self._keepalive_s,
            timeout=self._timeout_s,
            logger=_CLIENT_LOG,
            max_inflight_messages=INFLIGHT,
        )
        with self._map_errors():
            await client.__aenter__()
        self._client = client
        try:
            with self._map_errors():
                await client.publish(self.status_topic, b"online", qos=1, retain=True)
        except BaseException:
            await self._drop()
            raise
        event(log, "mqtt_connected", broker=self.where)
        return client

    async def _drop(self) -> None:
        """Forget a connection that failed; the next batch connects again."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await client.__aexit__(None, None, None)

    @contextlib.contextmanager
    def _map_errors(self) -> Iterator[None]:
        try:
            yield
        except aiomqtt.MqttCodeError as exc:
            code = getattr(exc.rc, "value", exc.rc)
            if isinstance(exc, MqttConnectError) and code in _AUTH_CODES:
                raise LedgerAuth(
                    f"broker {self.where} refused the agent's login ({exc}): check "
                    "username and password_file"
                ) from exc
            raise SyncTransient(f"broker {self.where}: {exc}") from exc
        except aiomqtt.MqttError as exc:
            raise SyncTransient(f"broker {self.where}: {exc or type(exc).__name__}") from exc
        except OSError as exc:
            raise SyncTransient(f"broker {self.where}: unreachable ({exc})") from exc


__all__ = ["MqttSink"]
