"""Every sink that speaks HTTP turns httpx's errors into ours the same way: a timeout,
an unreachable peer or a broken exchange is SyncTransient (the Syncer retries it),
named by the sink and its URL with secrets masked, the httpx error kept as its cause.
And the sinks that answer with HTTP status codes (http-ledger, epcis) map each the same
way onto the retry policy (DESIGN §5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agent.config.sinks import EpcisSinkConfig
from agent.errors import (
    LedgerAuth,
    LedgerMisconfigured,
    LedgerRejected,
    PayloadTooLarge,
    SyncError,
    SyncTransient,
)
from agent.outbox import Pending
from agent.sync.epcis import EpcisSink
from agent.sync.http_ledger import HttpLedgerSink
from agent.sync.tryton import TrytonPlaces, TrytonSink
from tests.agent.test_agent_sync_epcis import pending

FAILURES: list[tuple[Callable[[httpx.Request], Exception], str]] = [
    (
        lambda r: httpx.ConnectError("connection refused", request=r),
        "unreachable (connection refused)",
    ),
    (lambda r: httpx.ConnectError("", request=r), "unreachable (ConnectError)"),
    (lambda r: httpx.ReadTimeout("slow", request=r), "timed out (ReadTimeout)"),
    (lambda r: httpx.DecodingError("bad gzip", request=r), "bad gzip"),
]


def failing(make: Callable[[httpx.Request], Exception]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise make(request)

    return httpx.MockTransport(handler)


def sinks(transport: httpx.MockTransport) -> list[tuple[Any, str]]:
    """(sink, how its messages begin) for each HTTP sink type, on ``transport``."""
    return [
        (
            HttpLedgerSink("http://u:pw@ledger.test/?key=k", "tok", transport=transport),
            "ledger http://***:***@ledger.test/v1/movements?key=***: ",
        ),
        (
            EpcisSink(EpcisSinkConfig(url="http://repo.test/epcis"), "tok", transport=transport),
            "epcis http://repo.test/epcis/capture: ",
        ),
        (
            TrytonSink(
                "http://erp.test",
                "wh",
                "agent",
                "pw",
                TrytonPlaces({"DOCK": "STOR"}, "SUP", "CUS", "LOST"),
                transport=transport,
            ),
            "tryton http://erp.test/wh/rpc/: ",
        ),
    ]


@pytest.mark.parametrize(("make", "says"), FAILURES)
async def test_httpx_errors_are_transient_and_name_the_sink(
    make: Callable[[httpx.Request], Exception], says: str
) -> None:
    batch: list[Pending] = [pending(1)]
    for sink, where in sinks(failing(make)):
        with pytest.raises(SyncTransient) as caught:
            await sink.send("dock-1", batch, "batch-1")
        assert str(caught.value) == where + says
        assert isinstance(caught.value.__cause__, httpx.HTTPError)
        await sink.aclose()


REFUSAL = {"error": "movement 3: unknown location", "detail": "movement 3: unknown location"}
ANSWERS: list[tuple[int, dict[str, str], Any, type[SyncError]]] = [
    (408, {}, None, SyncTransient),
    (409, {}, None, SyncTransient),
    (425, {}, None, SyncTransient),
    (429, {"Retry-After": "7"}, None, SyncTransient),
    (500, {}, None, SyncTransient),
    (503, {"Retry-After": "7"}, None, SyncTransient),
    (401, {}, None, LedgerAuth),
    (403, {}, None, LedgerAuth),
    (413, {}, None, PayloadTooLarge),
    (400, {}, REFUSAL, LedgerRejected),  # the sink's own refusal of the batch: bisect
    (422, {}, REFUSAL, LedgerRejected),
    (400, {}, "<html>proxy</html>", LedgerMisconfigured),  # a proxy's page: keep the batch
    (415, {}, None, LedgerMisconfigured),
    (404, {}, None, LedgerMisconfigured),
]


@pytest.mark.parametrize(("code", "headers", "body", "kind"), ANSWERS)
async def test_status_codes_map_the_same_for_every_http_sink(
    code: int, headers: dict[str, str], body: Any, kind: type[SyncError]
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(code, headers=headers, text=body)
        return httpx.Response(code, headers=headers, json=body)

    for sink, where in sinks(httpx.MockTransport(answer))[:2]:
        with pytest.raises(SyncError) as caught:
            await sink.send("dock-1", [pending(1)], "batch-1")
        assert type(caught.value) is kind, (where, caught.value)
        assert str(caught.value).startswith(where.replace(": ", f" answered {code}"))
        if kind is SyncTransient:
            assert caught.value.retry_after == (7.0 if headers else None)  # type: ignore[attr-defined]
        await sink.aclose()
