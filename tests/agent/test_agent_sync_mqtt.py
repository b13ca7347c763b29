"""The mqtt sink against a real mosquitto: every movement published QoS 1 on its
station's topic as the ledger receives it, delivered on the broker's PUBACK; the
retained status and its last will; a broker down or refusing, mapped to our errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.alarms import Alarm, Alarms
from agent.demo.broker import MosquittoBroker
from agent.errors import LedgerAuth, SyncTransient
from agent.outbox import Outbox
from agent.sync import RetryPolicy, Syncer
from agent.sync.mqtt import MqttSink
from tests.agent.mqtt_kit import Subscriber
from tests.agent.test_agent_outbox import AGENT, BIG, make_commit, make_movement


def sink_for(b: MosquittoBroker, **kw: object) -> MqttSink:
    return MqttSink(b.host, b.port, AGENT, client_id="edgetally-test", **kw)  # type: ignore[arg-type]


async def store_two_stations(box: Outbox, n: int) -> list[str]:
    from agent.outbox import Commit as C
    from tests.agent.test_agent_outbox import make_read

    ids = []
    for i in range(n):
        m = make_movement(station="recv-1" if i % 2 else "ship-2")
        ids.append(m.id)
        (r,) = await box.store([C(make_read(), (m,))])
        assert r.error is None
    return ids


async def test_every_movement_is_published_on_its_station_topic_and_delivered(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    box = Outbox.open(tmp_path / "o.db", AGENT, BIG, sinks=("mqtt",))
    sink = sink_for(broker)
    try:
        ids = await store_two_stations(box, 40)
        stored = {p.id: p.payload for p in box.pending(limit=1000, sink="mqtt")}
        async with Subscriber(broker) as sub:
            syncer = Syncer(
                box, sink, RetryPolicy(0.01, 0.1, 0.1), Alarms(), batch_max=16, name="mqtt"
            )
            await syncer.drain()
            await sub.wait_for(lambda s: len(s.movement_ids()) >= 40)
            assert sorted(sub.movement_ids()) == sorted(ids)
            for topic, payload, _ in sub.messages:
                if topic.endswith("/movements"):
                    body = json.loads(payload)
                    assert topic == f"edgetally/{AGENT}/{body['station']}/movements"
                    assert payload.decode() == stored[body["id"]]  # as the ledger receives it
            assert box.stats().delivered == 40 and box.pending_count == 0
            # the retained status says online; an alarm goes to the alarms topic
            await sink.publish_alarm(Alarm("sync_stalled", "waiting", 1.0), True)
            await sub.wait_for(lambda s: any(t.endswith("/alarms") for t, _, _ in s.messages))
        async with Subscriber(broker, f"edgetally/{AGENT}/status") as late:
            await late.wait_for(lambda s: bool(s.messages))
            assert late.messages == [(f"edgetally/{AGENT}/status", b"online", True)]
        await sink.aclose()
        async with Subscriber(broker, f"edgetally/{AGENT}/status") as after:
            await after.wait_for(lambda s: bool(s.messages))
            assert after.messages == [(f"edgetally/{AGENT}/status", b"offline", True)]
    finally:
        await sink.aclose()
        box.close()


async def test_a_broker_down_is_transient_and_the_backlog_goes_when_it_is_back(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    box = Outbox.open(tmp_path / "o.db", AGENT, BIG, sinks=("mqtt",))
    sink = sink_for(broker, timeout_s=2)
    sub = Subscriber(broker)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        """The retry's wait: the broker comes back after the second failure."""
        waits.append(s)
        if len(waits) == 2:
            broker.start()
            await sub.connect()

    try:
        ids = [m.id for r in await box.store([make_commit(3)]) for m in r.movements]
        broker.stop()
        with pytest.raises(SyncTransient, match=r"broker mqtt://127\.0\.0\.1"):
            await sink.send(AGENT, box.pending(sink="mqtt"), "b1")
        syncer = Syncer(box, sink, RetryPolicy(0.01, 0.1, 0.1), Alarms(), sleep=sleep, name="mqtt")
        await syncer.drain()
        assert len(waits) == 2 and syncer.status.retries == 2
        await sub.wait_for(lambda s: len(s.movement_ids()) >= 3)
        assert sorted(sub.movement_ids()) == sorted(ids)  # published once the broker was back
        assert box.pending_count == 0
    finally:
        await sub.close()
        await sink.aclose()
        box.close()


async def test_a_broker_that_refuses_the_login_is_an_auth_alarm() -> None:
    with MosquittoBroker(anonymous=False) as b:
        sink = sink_for(b, username="agent", password="wrong")
        try:
            with pytest.raises(LedgerAuth, match="refused the agent's login"):
                await sink.send(AGENT, [], "b1")
        finally:
            await sink.aclose()
