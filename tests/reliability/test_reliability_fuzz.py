"""Bounded fuzzing of outside input (the long runs: ``python -m bench.fuzz``).

The properties live in bench/fuzz.py, shared with the long runs: identify on
any bytes and on code-like bytes; the config loader on TOML documents in the
config's shape with right and wrong keys and values, and on any bytes (only
ConfigError, naming the file, may come out); the ledger's /v1/movements on
any JSON and on good batches with one field made wrong (200 or a 4xx with a
reason, never a 5xx, never half a batch); the LLRP driver's receive path on
frame streams that mix valid reader frames, corrupted ones and noise (only
its LinkError comes out); the wedge's key-event decoder on any event stream
under any layout, suffix, prefix and length cap (bounded scans, named faults).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from evdev import ecodes
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sllurp.llrp import LLRPReaderState

from bench.fuzz import (
    GOOD_LLRP,
    LLRP_STATES,
    LedgerTarget,
    WedgeTarget,
    batches,
    check_config,
    check_identify,
    check_llrp,
    code_like,
    feed_llrp,
    good_movement,
    key_streams,
    llrp_streams,
    toml_documents,
    wedge_settings,
)
from drivers.wedge import WedgeSettings

BOUNDED = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHARED = settings(
    BOUNDED, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@BOUNDED
@example(b"]C1" + b"01" + b"0" * 13 + b"\x1d")
@example(b"PO:\x1b[2J")
@given(st.binary(max_size=400) | code_like)
def test_identify_never_raises_and_reports_only_valid_gtins(data: bytes) -> None:
    check_identify(data)


@SHARED
@example("[agent]\nid = 1\n")
@example("[[devices]]\n[[devices]]\n")
@example("[sync]\nurl = nan\n")
@given(doc=toml_documents())
def test_config_loader_on_any_toml_document_raises_only_config_error(
    tmp_path: Path, doc: str
) -> None:
    check_config(tmp_path / "agent.toml", doc.encode("utf-8", "surrogatepass"))


@SHARED
@example(raw=b"\xff\xfe[agent]")
@example(raw=b"[agent]\nid = '\x00'\n")
@given(raw=st.binary(max_size=300))
def test_config_loader_on_any_bytes_raises_only_config_error(tmp_path: Path, raw: bytes) -> None:
    check_config(tmp_path / "agent.toml", raw)


@pytest.fixture
def ledger_target(tmp_path: Path) -> Iterator[LedgerTarget]:
    target = LedgerTarget(tmp_path / "ledger.db")
    yield target
    target.close()


@SHARED
@example(body={"agent": "fuzz-dock", "movements": [good_movement(), {"id": 5}]})
@example(body={"agent": "fuzz-dock", "movements": []})
@example(body=[1, 2])
@given(body=batches())
def test_ledger_answers_any_body_with_200_or_a_reasoned_4xx_and_never_half_a_batch(
    ledger_target: LedgerTarget, body: object
) -> None:
    ledger_target.check(body)


@SHARED
@example(raw=b'{"agent": "fuzz-dock", "movements": [NaN]}')
@example(raw=b"\xff")
@given(raw=st.binary(max_size=200))
def test_ledger_answers_any_bytes_with_a_reasoned_4xx(
    ledger_target: LedgerTarget, raw: bytes
) -> None:
    ledger_target.check(raw)


def test_the_ledger_check_sees_a_good_batch_applied(ledger_target: LedgerTarget) -> None:
    """The property is not vacuous: a good batch is applied whole and counted."""
    body = {"agent": "fuzz-dock", "movements": [good_movement(), good_movement("count", 3)]}
    ledger_target.check(body)
    again = ledger_target.post(json.dumps(body).encode()).json()["results"]
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(stream=[GOOD_LLRP[0][:-3]], state=LLRPReaderState.STATE_INVENTORYING)
@example(stream=[GOOD_LLRP[3], b"\x04\x3d" + bytes(8)], state=LLRPReaderState.STATE_INVENTORYING)
@given(stream=llrp_streams, state=st.sampled_from(LLRP_STATES))
def test_llrp_frames_good_corrupted_or_noise_end_only_in_a_link_error(
    stream: list[bytes], state: int
) -> None:
    check_llrp(stream, state)


def test_the_llrp_property_sees_the_reads_of_good_frames() -> None:
    """Not vacuous: valid reports while inventorying give their tag reads, in order."""
    stream = [GOOD_LLRP[2], GOOD_LLRP[0], GOOD_LLRP[1], GOOD_LLRP[0]]
    reads, error = asyncio.run(feed_llrp(stream, LLRPReaderState.STATE_INVENTORYING))
    assert [(r.data.hex()[-2:], r.antenna) for r in reads] == [("21", 1), ("22", 2)] * 2
    assert error == "the reader closed the connection"


@pytest.fixture(scope="module")
def wedge() -> WedgeTarget:
    return WedgeTarget()  # compiled keymaps: immutable, so the examples share them


@settings(max_examples=200, deadline=None)
@example(
    cfg=WedgeSettings(vid_pid="05e0:1200", prefix="]C1", max_length=1),
    events=[(ecodes.EV_KEY, 4, 1, 0), (ecodes.EV_KEY, 4, 0, 1), (ecodes.EV_KEY, 28, 1, 2)],
)
@given(cfg=wedge_settings, events=key_streams)
def test_wedge_event_streams_give_bounded_scans_or_named_faults(
    wedge: WedgeTarget, cfg: WedgeSettings, events: list[tuple[int, int, int, int]]
) -> None:
    wedge.check(cfg, events)
