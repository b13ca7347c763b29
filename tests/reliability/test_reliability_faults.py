"""Network faults between a real agent and a real ledger process: exactly once, waits by policy.

Every fault the fault proxy knows is played against one scripted session:
refused connections, resets mid-request and after the ledger applied the
batch, answers cut half-way, stalls past the timeout (before and after the
ledger applied), a delay under the timeout, 5xx and 429 with and without
Retry-After (seconds, a past date, a future date), lost answers. The ledger
must hold each movement once, in seq order, and every retry wait the agent
chose must be one its policy allows (checked on the waits it recorded, not
on the wall clock).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import deque
from pathlib import Path

from agent.sync import parse_retry_after
from bench.common import delivery_report
from tests.e2e.faultproxy import (
    DROP,
    LOST,
    RESET,
    RESET_AFTER,
    STALL,
    STALL_AFTER,
    TRUNCATE,
    Fault,
    FaultProxy,
    delay,
    status,
)
from tests.e2e.harness import (
    LedgerProcess,
    gtin14,
    make_daemon,
    no_wait,
    run_until_settled,
    write_config,
    write_script,
)

INITIAL_S, CAP_S = 0.05, 4.0
NOT_FAILURES = {"pass", "delay"}


def check_waits(seen: list[str], faults: list[Fault], waits: list[float], now: float) -> None:
    """Each failure's wait is what the policy allows for that many failures in a row.

    Full jitter: uniform(0, min(cap, initial * 2**(n-1))); a Retry-After raises
    it to at least what was asked, and the cap still bounds it.
    """
    used = iter(faults)
    in_a_row, k = 0, 0
    for outcome in seen:
        fault = next(used) if outcome != "pass" else None
        if outcome in NOT_FAILURES:
            in_a_row = 0  # that attempt succeeded: the stored attempt count is reset
            continue
        in_a_row += 1
        wait = waits[k]
        k += 1
        high = min(CAP_S, INITIAL_S * 2 ** (in_a_row - 1))
        assert fault is not None
        asked = parse_retry_after(fault.retry_after, now)
        if asked is None or asked == 0:
            assert 0 <= wait <= high, (outcome, in_a_row, wait)
        else:
            floor = min(asked, CAP_S)
            # the date form was turned into seconds a moment earlier than now
            assert floor - 1.5 <= wait <= max(high, floor), (outcome, fault.retry_after, wait)
            assert wait <= CAP_S
    assert k == len(waits), "one wait per failure, none for a success"


async def test_every_network_fault_delivers_exactly_once_with_policy_waits(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    n = 48
    items = [gtin14(i % 6) for i in range(n)]
    script = write_script(tmp_path / "s.jsonl", [{"data": g} for g in items])
    future = email.utils.formatdate(time.time() + 3, usegmt=True)
    faults = [
        RESET,  # TCP RST with the request half-read: nothing applied
        RESET_AFTER,  # applied, then RST instead of the answer
        TRUNCATE,  # applied, the answer cut half-way
        STALL,  # no answer past the agent's timeout: nothing applied
        STALL_AFTER,  # applied, then no answer past the timeout
        delay(0.2),  # slow but within the timeout: no retry
        status(500),
        status(502, "1"),
        status(503),
        status(503, "2"),
        status(504),
        status(504, "Wed, 21 Oct 2015 07:28:00 GMT"),  # a date in the past: no extra wait
        status(429),
        status(429, "9"),  # more than the cap: the cap wins
        status(429, future),  # the HTTP-date form, in the future
        LOST,  # applied, connection closed without an answer
        DROP,  # connection closed before forwarding: nothing applied
        status(408),
    ]
    queue = deque(faults)
    async with FaultProxy(ledger.port, queue) as proxy:
        cfg = write_config(
            tmp_path,
            proxy.url,
            ledger.token_file,
            script,
            extra_sync="batch_max = 3\n",
            timeout_s=0.5,
            backoff_initial_s=INITIAL_S,
            backoff_cap_s=CAP_S,
        )
        daemon = make_daemon(cfg, ledger.token, sleep=no_wait)
        await run_until_settled(daemon)

    assert not queue, "every fault was used"
    kinds = {f.kind if f.kind != "status" else str(f.status) for f in faults}
    assert kinds <= set(proxy.seen)
    journal = [e for e in ledger.journal() if e["source"] == "agent"]
    report = delivery_report(journal, [])
    assert report["delivered"] == n
    assert report["duplicated"] == report["seq_gaps"] == 0
    assert [e["seq"] for e in journal] == list(range(1, n + 1))
    expected: dict[str, int] = {}
    for g in items:
        expected[f"DOCK-7/{g}"] = expected.get(f"DOCK-7/{g}", 0) + 1
    assert ledger.on_hand() == expected
    assert daemon.syncer is not None
    assert daemon.syncer.status.delivered == n
    check_waits(proxy.seen, faults, daemon.syncer.waits, time.time())
    assert not daemon.alarms.active()


async def test_refused_connections_back_off_then_deliver_once(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(5)])
    async with FaultProxy(ledger.port) as proxy:
        await proxy.pause()  # nothing listens on the ledger's address: connects are refused
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            """No wall time; the address listens again after the fourth refusal."""
            waits.append(seconds)
            if len(waits) == 4:
                await proxy.resume()
            await asyncio.sleep(0)

        cfg = write_config(
            tmp_path,
            proxy.url,
            ledger.token_file,
            script,
            backoff_initial_s=INITIAL_S,
            backoff_cap_s=CAP_S,
        )
        daemon = make_daemon(cfg, ledger.token, sleep=sleep)
        await run_until_settled(daemon)

    assert daemon.syncer is not None
    assert daemon.syncer.waits == waits and len(waits) == 4
    for n, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(CAP_S, INITIAL_S * 2 ** (n - 1))
    assert "unreachable" in (daemon.syncer.status.last_error or "")
    assert set(proxy.seen) == {"pass"}  # no request got through while refused
    journal = [e for e in ledger.journal() if e["source"] == "agent"]
    assert delivery_report(journal, [])["delivered"] == 5
    assert [e["seq"] for e in journal] == [1, 2, 3, 4, 5]
