"""The epcis sink's protocol logic in isolation: the capture job, its bounded polling,
per-event errors, HTTP answers mapped into our error tree, its settings.

A small scripted repository (httpx.MockTransport) answers here; the sink
against the real reference ledger is tests/e2e/test_e2e_epcis.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import load_config, read_secrets
from agent.config.sinks import EpcisSinkConfig
from agent.errors import (
    ConfigError,
    LedgerAuth,
    LedgerMisconfigured,
    LedgerRejected,
    PayloadTooLarge,
    SyncTransient,
)
from agent.outbox import Pending
from agent.sync.epcis import EpcisSink
from agent.sync.registry import SinkContext, make_sink
from tests.epcis_schema import errors

GTIN = "00614141123452"


def pending(n: int, **changes: Any) -> Pending:
    mid = f"00000000-0000-7000-8000-{n:012d}"
    m = {
        "id": mid, "agent": "dock-1", "seq": n, "kind": "receive", "item": {"gtin": GTIN},
        "qty": 2, "uom": "EA", "to": "DOCK", "from": None, "reason": None, "ref": {},
        "station": "recv-1", "device": "d", "operator": None,
        "observed_at": "2026-05-01T10:00:00Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": 1}, "evidence": {},
        **changes,
    }  # fmt: skip
    return Pending(seq=n, id=mid, payload=json.dumps(m), created_at=0.0, kind="receive")


def eid(n: int) -> str:
    return f"urn:uuid:00000000-0000-7000-8000-{n:012d}"


Handler = Callable[[httpx.Request], httpx.Response]


class Repository:
    """Answers POST /capture with 202 + Location and the job after ``running_for`` asks."""

    def __init__(self, job: dict[str, Any] | None = None, running_for: int = 0) -> None:
        self.job = {
            "running": False,
            "success": True,
            "captureErrorBehaviour": "proceed",
            "errors": [],
        }
        self.job.update(job or {})
        self.running_for = running_for
        self.asked = 0
        self.documents: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.documents.append(json.loads(request.content))
            self.headers.append(request.headers)
            return httpx.Response(202, headers={"Location": "/epcis/capture/job1"})
        assert request.url.path == "/epcis/capture/job1"
        self.asked += 1
        if self.asked <= self.running_for:
            return httpx.Response(200, json={**self.job, "running": True})
        return httpx.Response(200, json=self.job)


def sink(handler: Handler, sleeps: list[float] | None = None, **settings: Any) -> EpcisSink:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return EpcisSink(
        EpcisSinkConfig(url="http://repo/epcis", **settings),
        "tok",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
    )


async def test_a_finished_job_delivers_each_movement_and_names_duplicates() -> None:
    repo = Repository({"edgetally:duplicates": [eid(2)]}, running_for=3)
    sleeps: list[float] = []
    s = sink(repo, sleeps)
    results = await s.send("dock-1", [pending(1), pending(2)], "batch-1")
    assert [(r.id[-1], r.status) for r in results] == [("1", "applied"), ("2", "duplicate")]
    assert sleeps == [0.05, 0.1, 0.2]  # doubling from poll_initial_s
    [doc] = repo.documents
    assert errors(doc) == []
    assert [e["eventID"] for e in doc["epcisBody"]["eventList"]] == [eid(1), eid(2)]
    headers = repo.headers[0]
    assert headers["GS1-Capture-Error-Behaviour"] == "proceed"
    assert headers["Authorization"] == "Bearer tok"
    assert headers["Content-Type"] == "application/ld+json"
    await s.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await s.send("dock-1", [pending(1)], "b")


async def test_polling_is_bounded_then_the_batch_is_retried() -> None:
    sleeps: list[float] = []
    s = sink(Repository(running_for=10**6), sleeps, poll_max_s=2.0, poll_timeout_s=10.0)
    with pytest.raises(SyncTransient, match=r"still running after 10\.0s"):
        await s.send("dock-1", [pending(1)], "b")
    assert max(sleeps) == 2.0 and sum(sleeps) == pytest.approx(10.0)
    await s.aclose()


async def test_per_event_errors_reject_that_movement_with_the_reason() -> None:
    error = {
        "type": "epcisException:ValidationException",
        "title": "Event not captured",
        "detail": "bizStep 'x': no movement for it",
        "instance": eid(2),
    }
    s = sink(Repository({"success": False, "errors": [error]}))
    results = await s.send("dock-1", [pending(1), pending(2), pending(3)], "b")
    assert [r.status for r in results] == ["applied", "rejected", "applied"]
    assert results[1].reason == "epcis capture: Event not captured: bizStep 'x': no movement for it"
    await s.aclose()


async def test_a_movement_that_is_no_event_is_rejected_before_sending() -> None:
    repo = Repository()
    s = sink(repo)
    results = await s.send("dock-1", [pending(1, item={"gtin": "123"}), pending(2)], "b")
    assert results[0].status == "rejected" and "GTIN '123'" in (results[0].reason or "")
    assert results[1].status == "applied"
    assert len(repo.documents[0]["epcisBody"]["eventList"]) == 1
    await s.aclose()


@pytest.mark.parametrize(
    "job",
    [
        {
            "success": False,
            "captureErrorBehaviour": "rollback",
            "errors": [{"title": "bad", "instance": eid(1)}],
        },
        {"success": False, "errors": [{"title": "something failed"}]},  # pinned on no event
        {"success": False, "errors": [], "errorFile": "https://repo/errors/1"},
    ],
)
async def test_errors_that_cannot_be_pinned_split_the_batch(job: dict[str, Any]) -> None:
    s = sink(Repository(job))
    with pytest.raises(LedgerRejected, match="capture failed"):
        await s.send("dock-1", [pending(1), pending(2)], "b")
    [alone] = await s.send("dock-1", [pending(1)], "b")  # bisected down to one: rejected
    assert alone.status == "rejected" and "epcis capture failed" in (alone.reason or "")
    await s.aclose()


def answer(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(code, json=body, headers=headers)


@pytest.mark.parametrize(
    ("handler", "error", "words"),
    [
        (answer(401, {"error": "unknown token"}), LedgerAuth, "token_file"),
        (answer(403), LedgerAuth, "403"),
        (answer(413, {"detail": "too many events"}), PayloadTooLarge, "too many events"),
        (answer(503, {}, {"Retry-After": "7"}), SyncTransient, "503"),
        (answer(429), SyncTransient, "429"),
        (
            answer(
                400,
                {
                    "type": "epcisException:ValidationException",
                    "detail": "type: expected EPCISDocument",
                },
            ),
            LedgerRejected,
            "expected EPCISDocument",
        ),
        (answer(400), LedgerMisconfigured, "url"),  # a proxy's 400 says nothing about our events
        (answer(404, {"error": "not found"}), LedgerMisconfigured, "url"),
        (answer(202), LedgerMisconfigured, "without a Location"),
        (answer(200, {"ok": 1}), LedgerMisconfigured, "200"),
    ],
)
async def test_http_answers_map_into_the_error_tree(
    handler: Handler, error: type[Exception], words: str
) -> None:
    s = sink(handler)
    with pytest.raises(error, match=words) as caught:
        await s.send("dock-1", [pending(1)], "b")
    if "Retry-After" in str(handler(httpx.Request("GET", "http://x")).headers):
        assert isinstance(caught.value, SyncTransient) and caught.value.retry_after == 7.0
    await s.aclose()


async def test_an_unreachable_repository_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    s = sink(refuse)
    with pytest.raises(SyncTransient, match="unreachable"):
        await s.send("dock-1", [pending(1)], "b")
    await s.aclose()


async def test_an_unreadable_job_is_transient() -> None:
    def garbled(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "http://repo/epcis/capture/9"})
        return httpx.Response(200, content=b"<html>")

    s = sink(garbled)
    with pytest.raises(SyncTransient, match="unreadable capture job"):
        await s.send("dock-1", [pending(1)], "b")
    await s.aclose()


SINK_TABLE = """\
[agent]
id = "dock-1"
state_dir = "state"

[[sync.sink]]
name = "trace"
type = "epcis"
url = "http://repo/epcis"
token_file = "epcis.token"
"""


def made(path: Path, transport: httpx.AsyncBaseTransport) -> EpcisSink:
    """The sink as the daemon makes it: the config's table, its secrets, the registry."""
    cfg = load_config(path)
    (sink_settings,) = cfg.sinks
    ctx = SinkContext("dock-1", read_secrets(cfg, sink_settings), lambda: 0.0, transport)
    sink = make_sink(sink_settings, ctx)
    assert isinstance(sink, EpcisSink)
    return sink


async def test_the_token_comes_from_its_file_which_others_may_not_read(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(SINK_TABLE, encoding="utf-8")
    token = tmp_path / "epcis.token"
    token.write_text("s3cret\n")
    os.chmod(token, 0o644)
    repo = Repository()
    with pytest.raises(ConfigError, match="chmod 600") as refused:
        made(path, httpx.MockTransport(repo))
    assert refused.value.key == "sync.sink[0].token_file"
    assert "s3cret" not in str(refused.value)
    os.chmod(token, 0o600)
    s = made(path, httpx.MockTransport(repo))
    await s.send("dock-1", [pending(1)], "b")
    assert repo.headers[0]["Authorization"] == "Bearer s3cret"
    await s.aclose()
    path.write_text(SINK_TABLE.replace('token_file = "epcis.token"\n', ""), encoding="utf-8")
    anonymous = made(path, httpx.MockTransport(repo))
    await anonymous.send("dock-1", [pending(1)], "b")
    assert "Authorization" not in repo.headers[1]
    await anonymous.aclose()


async def test_the_example_config_makes_an_epcis_sink_with_its_places(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    token = tmp_path / "epcis-token"
    token.write_text("tok\n")
    token.chmod(0o600)
    s = made(Path(__file__).parents[2] / "config" / "epcis.toml", httpx.MockTransport(Repository()))
    assert s.places.read_point("dock-7") == "urn:epc:id:sgln:9506000.13435.7"
    assert s.places.read_point("dock-9") == "urn:epc:id:sgln:9506000.13435.0"
    assert s.places.timezone == "Europe/Paris"
    await s.aclose()


async def test_a_job_on_another_host_is_not_followed_with_the_token() -> None:
    asked: list[str] = []

    def elsewhere(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(202, headers={"Location": "http://collector.example/jobs/1"})

    s = sink(elsewhere)
    with pytest.raises(LedgerMisconfigured, match="another host"):
        await s.send("dock-1", [pending(1)], "b")
    assert asked == ["http://repo/epcis/capture"]
    await s.aclose()
