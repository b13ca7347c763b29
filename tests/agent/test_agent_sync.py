"""The sync loop against the real ledger app in-process (httpx.ASGITransport).

A thin transport in front of the app injects answers the ledger would not
give on its own (413, 401, 400 for a whole batch, a garbled 200). Waits are
recorded by an injected sleep, never slept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agent.alarms import Alarms
from agent.clock import Clock, Uuid7, utc_iso
from agent.model import ClockStamp, Item, Movement
from agent.outbox import Commit, Outbox
from agent.sync import HttpLedgerSink, RetryPolicy, Syncer, parse_retry_after
from ledger import LedgerStore, create_app

AGENT = "dock-1"
Answer = Callable[[httpx.Request], httpx.Response | None]


class Faulty(httpx.AsyncBaseTransport):
    """Each request takes the next answer: a Response to give, or None to pass it on."""

    def __init__(self, inner: httpx.AsyncBaseTransport, answers: list[Answer]) -> None:
        self.inner = inner
        self.answers = deque(answers)
        self.sizes: list[int] = []  # movements per POST as sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(await request.aread())
        self.sizes.append(len(body["movements"]))
        answer = self.answers.popleft()(request) if self.answers else None
        if answer is not None:
            return answer
        return await self.inner.handle_async_request(request)


def reply(code: int, headers: dict[str, str] | None = None, body: bytes = b"{}") -> Answer:
    return lambda request: httpx.Response(code, headers=headers, content=body)


def bad_if_contains(movement_id: str) -> Answer:
    """A ledger that refuses any whole batch holding one poison movement (400)."""

    def answer(request: httpx.Request) -> httpx.Response | None:
        if movement_id.encode() in request.content:
            return httpx.Response(400, json={"error": "batch refused"})
        return None

    return answer


class Rig:
    def __init__(self, tmp_path: Path, n: int, answers: list[Answer], cap_s: float = 60) -> None:
        self.store = LedgerStore(tmp_path / "ledger.db")
        token = self.store.add_agent(AGENT)
        self.transport = Faulty(httpx.ASGITransport(app=create_app(self.store)), answers)
        self.outbox = Outbox.open(tmp_path / "outbox.db", AGENT, 1 << 26)
        clock, ids = Clock(), Uuid7()
        self.movements = [
            Movement(
                id=ids.new(),
                agent=AGENT,
                kind="receive",
                item=Item(gtin="09506000134352"),
                qty=1,
                to="DOCK-1",
                station="s",
                device="d",
                observed_at=utc_iso(clock.wall()),
                clock=ClockStamp(False, clock.boot_id, 1),
            )
            for _ in range(n)
        ]
        self.outbox.store_blocking([Commit(None, [m]) for m in self.movements])
        self.waits: list[float] = []
        self.alarms = Alarms()
        self.sink = HttpLedgerSink("http://ledger", token, transport=self.transport)
        self.syncer = self.make_syncer(cap_s)

    def make_syncer(self, cap_s: float = 60) -> Syncer:
        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        return Syncer(
            self.outbox,
            self.sink,
            RetryPolicy(0.5, cap_s, 120.0),
            self.alarms,
            batch_max=8,
            sleep=sleep,
        )

    def states(self) -> list[str]:
        conn = self.outbox._rconn
        assert conn is not None
        return [r[0] for r in conn.execute("SELECT state FROM movements ORDER BY seq")]

    def on_hand(self) -> int:
        return sum(r["qty"] for r in self.store.stock(None, None))

    async def close(self) -> None:
        await self.sink.aclose()
        self.outbox.close()
        self.store.close()


async def test_413_halves_the_batch_then_grows_back(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 20, [reply(413), reply(413)])
    await rig.syncer.drain()
    assert rig.transport.sizes[:5] == [8, 4, 2, 4, 8]  # halved twice, then doubling back
    assert rig.syncer.limit == 8  # and grew back after successes
    assert rig.states() == ["delivered"] * 20 and rig.on_hand() == 20
    assert rig.waits == []  # 413 is not a retry wait
    await rig.close()


async def test_a_single_movement_too_large_is_rejected_not_retried_forever(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 2, [reply(413)])
    rig.syncer.limit = 1
    await rig.syncer.drain()
    assert rig.states() == ["rejected", "delivered"]
    assert "rejected" in rig.alarms.active()
    await rig.close()


async def test_a_refused_batch_is_bisected_to_the_poison_movement(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 8, [])
    poison = rig.movements[5].id
    rig.transport.answers.extend([bad_if_contains(poison)] * 20)
    await rig.syncer.drain()
    states = rig.states()
    assert states[5] == "rejected" and states.count("delivered") == 7
    assert rig.on_hand() == 7
    assert rig.transport.sizes[0] == 8 and 1 in rig.transport.sizes
    await rig.close()


async def test_401_is_an_alarm_with_slow_retry_and_clears_on_success(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 3, [reply(401), reply(403)])
    await rig.syncer.drain()
    assert rig.waits == [120.0, 120.0]
    assert rig.states() == ["delivered"] * 3
    assert "ledger_auth" not in rig.alarms.active()  # cleared by the success
    await rig.close()


async def test_404_is_a_config_alarm(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 1, [reply(404)])
    seen: list[str] = []
    rig.alarms._on_change = lambda alarm, raised: seen.append(alarm.key) if raised else None
    await rig.syncer.drain()
    assert seen == ["ledger_config"] and rig.waits == [120.0]
    await rig.close()


async def test_garbled_200_is_retried_and_the_resend_is_a_duplicate(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 4, [])

    async def applied_but_garbled(request: httpx.Request) -> httpx.Response:
        await inner.handle_async_request(request)  # the ledger applies it
        return httpx.Response(200, content=b"<html>proxy error</html>")

    inner = rig.transport.inner
    calls = {"n": 0}

    class Garble(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            calls["n"] += 1
            if calls["n"] == 1:
                return await applied_but_garbled(request)
            return await inner.handle_async_request(request)

    rig.transport.inner = Garble()
    await rig.syncer.drain()
    assert calls["n"] == 2 and len(rig.waits) == 1
    assert rig.states() == ["delivered"] * 4 and rig.on_hand() == 4
    await rig.close()


async def test_backoff_state_survives_a_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 1, [reply(503)] * 3, cap_s=1000)
    rig.syncer.policy._jitter = lambda state: 0.5 * 2 ** (state.attempt_number - 1)  # type: ignore[assignment]
    task_sleeps: list[float] = []

    async def stop_after_three(seconds: float) -> None:
        task_sleeps.append(seconds)
        if len(task_sleeps) == 3:
            raise KeyboardInterrupt  # the agent dies mid-backoff

    rig.syncer._sleep = stop_after_three
    with pytest.raises(KeyboardInterrupt):
        await rig.syncer.drain()
    assert task_sleeps == [0.5, 1.0, 2.0]
    state = rig.outbox.sync_state()
    assert state.attempts == 3 and state.next_attempt_at is not None
    # A new agent process: it waits out the stored backoff, and counts on from attempt 3.
    rig.transport.answers.extend([reply(503)])
    restarted = rig.make_syncer(cap_s=1000)
    restarted.policy._jitter = rig.syncer.policy._jitter
    await restarted._respect_stored_backoff()
    assert 0 < rig.waits[0] <= 2.0
    await restarted.drain()
    assert rig.waits[1] == 0.5 * 2**3  # attempt 4, not attempt 1
    assert rig.outbox.sync_state().attempts == 0  # reset by the success
    await rig.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Sat, 21 Nov 2026 20:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 19:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_both_forms(value: str | None, expected: float | None) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 21, 20, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now) == expected


def test_full_jitter_stays_under_the_exponential_and_the_cap() -> None:
    policy = RetryPolicy(initial_s=0.5, cap_s=10, auth_retry_s=300)
    for attempt in range(1, 12):
        waits = [policy.wait(attempt, None) for _ in range(200)]
        bound = min(10, 0.5 * 2 ** (attempt - 1))
        assert all(0 <= w <= bound for w in waits)
        assert max(waits) > bound / 2  # jitter spreads over the whole range


@pytest.mark.parametrize(
    "answer",
    [
        reply(400, {"Content-Type": "text/html"}, b"<html>Bad Request</html>"),
        reply(415, {"Content-Type": "application/json"}, b'{"error": "expected JSON"}'),
    ],
    ids=["proxy-400-page", "415"],
)
async def test_a_refusal_that_is_not_about_the_movements_rejects_none(
    tmp_path: Path, answer: Answer
) -> None:
    rig = Rig(tmp_path, 4, [answer])
    await rig.syncer.drain()
    assert rig.states() == ["delivered"] * 4  # nothing thrown away; one slow retry
    assert rig.waits == [120.0]
    await rig.close()


async def test_conflict_is_kept_as_rejected_with_its_reason_and_an_alarm(tmp_path: Path) -> None:
    """The ledger holds another movement under the first id: it answers `conflict`;
    the agent keeps that movement as rejected, alarms, and delivers the rest."""
    rig = Rig(tmp_path, 3, [])
    other = {**rig.movements[0].to_dict(), "qty": 5}
    assert rig.store.apply_batch(AGENT, [other])[0]["status"] == "applied"
    await rig.syncer.drain()
    assert rig.states() == ["rejected", "delivered", "delivered"]
    conn = rig.outbox._rconn
    assert conn is not None
    [(reason,)] = conn.execute("SELECT last_error FROM movements WHERE seq = 1").fetchall()
    assert reason == "conflict: id already used for a different movement"
    assert "rejected" in rig.alarms.active()
    assert rig.on_hand() == 5 + 2  # the ledger's movement, not overwritten, and the other two
    await rig.close()
