"""Property fuzzing of outside input: identify, config, the ledger's POST, LLRP frames, key events.

    python -m bench.fuzz [--examples 20000] [--target identify|config|ledger|llrp|wedge ...]
                         [--seed N]

The properties live here so that tests/reliability/test_reliability_fuzz.py
runs them bounded (a few hundred examples) and this runs them long. Each is
a hypothesis test; the run prints one JSON object with, per target, the
examples run, the seconds and the first failure (null when none).

- identify: any bytes, and code-like bytes (AIM ids, AIs, GS, commands), give
  an Identity and never raise; an unknown says why; a GTIN it reports has 14
  digits and a right check digit.
- config: any TOML document built from the config's own sections and keys
  (and wrong ones), and any bytes as a file, load or raise ConfigError naming
  the file; nothing else comes out.
- ledger: any JSON (and mutated good batches) POSTed to /v1/movements answers
  200 or a 4xx with ``{"error": "<reason>"}``, never a 5xx; a 4xx applies
  nothing, and a 200 adds exactly the movements it answers ``applied``.
- llrp: a stream of frames (any bytes, frames with fuzzed parameters, valid
  reader frames, and valid frames with bytes overwritten or cut) sent over a
  real socket pair into the LLRP driver's receive path (``_frame`` then
  ``_handle``, as its connection task runs them), sllurp's state machine in
  any state: the only error that comes out is the driver's ``LinkError``
  (reported, then reconnected); every read queued is a tag ``Read``, and one
  without an EPC names its fault (it is stored and signalled bad).
- wedge: any evdev event stream (key codes outside any layout, values other
  than 0/1/2, clocks going backwards, SYN_DROPPED anywhere) into the wedge's
  ``ScanAssembler`` under any layout, suffix, prefix and length cap: scans
  only, none longer than ``max_length``, an empty one or a broken one with
  its fault named, and nothing left pending after a timeout or an unplug.

atheris is not used: hypothesis already drives these pure-Python targets
with structure (for LLRP: valid reader frames from the emulator's own codec,
then corrupted, which reaches the decoders far more often than blind bytes),
and atheris would be one more build dependency for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
from evdev import InputEvent, ecodes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sllurp.llrp import LLRPClient, LLRPReaderState

from agent.clock import Clock, Uuid7
from agent.config import load_config
from agent.errors import ConfigError
from agent.identify import identify
from agent.model import Identity, Read
from drivers import llrp_frames as f
from drivers.base import ReadFactory
from drivers.keymap import Layout
from drivers.llrp import LlrpReader
from drivers.llrp_link import LinkError
from drivers.llrp_settings import LlrpSettings, reader_config
from drivers.wedge import ScanAssembler, WedgeSettings
from ledger.app import create_app
from ledger.store import LedgerStore

# ---- identify ----------------------------------------------------------------------------

_AIM = st.sampled_from(["", "]C1", "]E0", "]d2", "]Q3", "]e0", "]A0", "]", "]Z9"])
_PIECE = (
    st.sampled_from(
        [
            *("01", "02", "10", "17", "21", "30", "37", "00", "414", "8004", "(01)", "(", ")"),
            *("\x1d", "PO:", "QTY:", "END", "OP:", "PAIR:", "LOC:", "urn:epc:id:sgtin:", "."),
        ]
    )
    | st.from_regex(r"\A[0-9]{1,18}\Z")
    | st.text(max_size=4)
)
code_like = st.builds(
    lambda aim, parts, tail: (aim + "".join(parts)).encode("utf-8", "surrogatepass") + tail,
    _AIM,
    st.lists(_PIECE, max_size=8),
    st.binary(max_size=3),
)


def a_read(data: bytes) -> Read:
    return Read(
        id="0190f2a4-6c1e-7d3a-9b2f-000000000001",
        device="fuzz",
        kind="barcode",
        data=data,
        observed_at="2026-05-01T10:00:00.000000Z",
        mono_ns=1,
        boot_id="b",
    )


def gtin_ok(gtin: str) -> bool:
    if len(gtin) != 14 or not (gtin.isascii() and gtin.isdigit()):
        return False
    total = sum(int(d) * (3 if k % 2 == 0 else 1) for k, d in enumerate(reversed(gtin[:-1])))
    return gtin[-1] == str(-total % 10)


def check_identify(data: bytes) -> None:
    identity = identify(a_read(data))
    assert isinstance(identity, Identity)
    if identity.kind == "unknown":
        assert identity.error, f"an unknown without a reason for {data!r}"
    if identity.gtin is not None:
        assert gtin_ok(identity.gtin), f"bad GTIN {identity.gtin!r} from {data!r}"


# ---- config ------------------------------------------------------------------------------

_SECTIONS = {
    "agent": ["id", "state_dir", "log_level", "clock"],
    "outbox": ["path", "max_bytes", "retention_days", "group_max", "prune_interval_s"],
    "sync": [
        *("url", "token_file", "batch_max", "batch_max_bytes", "timeout_s", "backoff_cap_s"),
        *("backoff_initial_s", "auth_retry_s", "stall_alarm_s", "verify_tls", "ca_file", "sink"),
    ],
    "health": ["listen", "outbox_warn_ratio", "require_clock_sync"],
    "identify": ["sku_patterns", "location_prefix", "gs_separators"],
}
_ARRAYS = {
    "devices": ["id", "driver", "script", "speed", "repeat", "ack_log", "path", "port"],
    "stations": ["name", "kind", "location", "devices", "debounce_ms"],
}


def _toml_str(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string (bar lone surrogates)


_scalar = (
    st.text(max_size=12).map(_toml_str)
    | st.sampled_from(['"simulated"', '"receiving"', '"http://127.0.0.1:1"', '"1MiB"', '"-1"'])
    | st.sampled_from(['"9999999999999TiB"', '"dock-1"', '"/dev/null"', '"."', '"info"'])
    | st.integers(min_value=-(2**64), max_value=2**64).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: (
            "nan"
            if f != f
            else ("inf" if f == float("inf") else "-inf" if f == -float("inf") else repr(f))
        )
    )
    | st.booleans().map(lambda b: "true" if b else "false")
    | st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"])
)
_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.dictionaries(st.sampled_from(["a", "id", "x"]), inner, max_size=2).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        )
    ),
    max_leaves=4,
)
_key = st.one_of(
    st.sampled_from([k for keys in _SECTIONS.values() for k in keys]),
    st.sampled_from([k for keys in _ARRAYS.values() for k in keys]),
    st.from_regex(r"\A[a-z_]{1,8}\Z"),
)


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    """A TOML document in the config's shape, with keys and values right or wrong."""
    lines: list[str] = []
    for section in draw(st.lists(st.sampled_from([*_SECTIONS, "nope"]), max_size=6)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(_key, max_size=5, unique=True)):
            lines.append(f"{key} = {draw(_value)}")
    for table in draw(st.lists(st.sampled_from(list(_ARRAYS)), max_size=3)):
        lines.append(f"[[{table}]]")
        for key in draw(st.lists(_key, max_size=5, unique=True)):
            lines.append(f"{key} = {draw(_value)}")
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=10)))
    return "\n".join(lines) + "\n"


def check_config(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), f"the error does not name the file: {exc}"


# ---- ledger ------------------------------------------------------------------------------

AGENT = "fuzz-dock"
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["receive", "ship", "count", "adjust", "DOCK-1", AGENT, "09506000134352"])
)
any_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["id", "agent", "kind", "item", "qty", "to", "from", "movements", "gtin"]
            )
            | st.text(max_size=6),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)


def good_movement(kind: str = "receive", qty: int = 1) -> dict[str, Any]:
    loc = {"ship": {"from": "DOCK-1"}, "count": {"to": "DOCK-1"}}.get(kind, {"to": "DOCK-1"})
    return {
        "id": str(uuid.uuid4()),
        "agent": AGENT,
        "seq": 1,
        "kind": kind,
        "item": {"gtin": "09506000134352"},
        "qty": qty,
        "station": "dock-1",
        "device": "fuzz",
        "observed_at": "2026-05-01T10:00:00Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": 1},
        **loc,
    }


@st.composite
def batches(draw: st.DrawFn) -> Any:
    """Whole bodies: any JSON, or a good batch with a field of one movement made wrong."""
    if draw(st.booleans()):
        return draw(any_json)
    movements: list[Any] = [
        good_movement(draw(st.sampled_from(["receive", "ship", "count"])), draw(st.integers(1, 5)))
        for _ in range(draw(st.integers(1, 4)))
    ]
    victim = draw(st.integers(0, len(movements) - 1))
    field = draw(st.sampled_from([*movements[victim], "extra"]))
    movements[victim] = {**movements[victim], field: draw(any_json)}
    if draw(st.booleans()):
        movements[victim] = draw(any_json)
    body: Any = {"agent": AGENT, "movements": movements}
    if draw(st.booleans()):
        body = {**body, draw(st.sampled_from(["agent", "movements", "x"])): draw(any_json)}
    return body


def journal_size(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
    finally:
        conn.close()


class LedgerTarget:
    """The ledger app on a real SQLite file, driven through ASGI on a loop of its own."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.store = LedgerStore(db)
        self.token = self.store.add_agent(AGENT)
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.store)),
            base_url="http://ledger",
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()
        self.store.close()

    def post(self, content: bytes) -> httpx.Response:
        return self.loop.run_until_complete(
            self.client.post(
                "/v1/movements", content=content, headers={"Content-Type": "application/json"}
            )
        )

    def check(self, body: Any) -> None:
        content = json.dumps(body).encode() if not isinstance(body, bytes) else body
        before = journal_size(self.db)
        r = self.post(content)
        after = journal_size(self.db)
        assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        if r.status_code != 200:
            error = r.json().get("error")
            assert isinstance(error, str) and error, f"a {r.status_code} without a reason"
            assert after == before, "a refused request changed the journal"
            return
        results = r.json()["results"]
        sent = json.loads(content)["movements"]
        assert len(results) == len(sent)
        for res in results:
            assert res["status"] in ("applied", "duplicate", "rejected"), res
            if res["status"] == "rejected":
                assert isinstance(res.get("reason"), str) and res["reason"]
        applied = [x for x in results if x["status"] == "applied"]
        # each applied count may bring the ledger's own variance adjust with it
        adjusts = after - before - len(applied)
        assert 0 <= adjusts <= len(applied), "half a batch, or more than was answered"


# ---- llrp: frames into the driver's receive path ------------------------------------------

LLRP_TYPES = [4, 11, 12, 13, 30, 31, 34, 51, 61, 62, 63, 100, 1023]  # reader -> client
LLRP_PARAMS = [240, 241, 246, 248, 256, 257, 287, 288, 289]
LLRP_STATES = [
    LLRPReaderState.STATE_DISCONNECTED,  # expects the ConnectionAttemptEvent
    LLRPReaderState.STATE_SENT_GET_CAPABILITIES,
    LLRPReaderState.STATE_SENT_GET_CONFIG,
    LLRPReaderState.STATE_SENT_SET_CONFIG,
    LLRPReaderState.STATE_SENT_ADD_ROSPEC,
    LLRPReaderState.STATE_INVENTORYING,
    LLRPReaderState.STATE_SENT_DELETE_ROSPEC,
]
_EPC = bytes.fromhex("30340242201d8840009a4e21")


def _llrp_frame(kind: int, body: bytes, msg_id: int = 1) -> bytes:
    return struct.pack("!HII", (1 << 10) | kind, 10 + len(body), msg_id) + body


def _tlv(ptype: int, body: bytes) -> bytes:
    return struct.pack("!HH", ptype, 4 + len(body)) + body


def good_llrp_frames() -> list[bytes]:
    """Frames a reader really sends (from the emulator's own codec, not sllurp's)."""
    tag = f.TagReportData(
        _EPC, antenna_id=1, peak_rssi=-50, first_seen=1, last_seen=2, tag_seen_count=3
    )
    gpi = f.Tlv(248, struct.pack("!HB", 1, 0x80))
    when = f.UTCTimestamp(1)
    return [
        f.ROAccessReport(5, (tag, f.TagReportData(_EPC[:-1] + b"\x22", antenna_id=2))).encode(),
        f.ROAccessReport(6, ()).encode(),
        f.Bare(f.KEEPALIVE, 7).encode(),
        f.ReaderEventNotification(8, f.ReaderEventNotificationData(when, (gpi,))).encode(),
        f.ReaderEventNotification(
            9,
            f.ReaderEventNotificationData(when, (f.ConnectionAttemptEvent(f.CONNECTION_SUCCESS),)),
        ).encode(),
    ]


GOOD_LLRP = good_llrp_frames()


def _corrupt(frame: bytes, writes: list[tuple[int, int]], cut: int) -> bytes:
    """A valid frame with bytes overwritten, then cut short (cut < 0) or padded."""
    out = bytearray(frame)
    for at, value in writes:
        out[at % len(out)] = value
    return bytes(out[:cut]) if cut < 0 else bytes(out) + bytes(cut)


llrp_frames = st.one_of(
    st.binary(min_size=10, max_size=200),
    st.builds(
        _llrp_frame,
        st.sampled_from(LLRP_TYPES),
        st.lists(
            st.one_of(
                st.binary(max_size=40),
                st.builds(_tlv, st.sampled_from(LLRP_PARAMS), st.binary(max_size=30)),
                st.builds(lambda b: b"\x8d" + b, st.binary(min_size=12, max_size=12)),
            ),
            max_size=4,
        ).map(b"".join),
        st.integers(0, 2**32 - 1),
    ),
    st.sampled_from(GOOD_LLRP),
    st.builds(
        _corrupt,
        st.sampled_from(GOOD_LLRP),
        st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=4),
        st.integers(-12, 8),
    ),
)
llrp_streams = st.lists(llrp_frames, min_size=1, max_size=6)


async def feed_llrp(stream: list[bytes], state: int) -> tuple[list[Read], str]:
    """The reads ``stream`` made through the driver's receive path, and its LinkError."""
    _, reads, error = await feed_llrp_driver(stream, state)
    return reads, error


async def feed_llrp_driver(stream: list[bytes], state: int) -> tuple[LlrpReader, list[Read], str]:
    """The driver's receive path on ``stream`` over a real socket pair, sllurp's state
    machine in ``state``: the driver, the reads it queued, and the LinkError that ended it.

    The connection task's own loop (``_frame`` then ``_handle``) without its
    connect and reconnect: those would leave the state machine only ever at
    its start. Anything but a LinkError propagates: that is the finding.
    """
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader, writer = await asyncio.open_connection(sock=ours)
        settings = LlrpSettings(
            host="127.0.0.1", port=1, antennas=[1, 2], keepalive_s=0.1, gpi_port=1
        )
        driver = LlrpReader("fuzz", settings, ReadFactory(Clock(boot_id="b"), Uuid7()))
        driver._writer = writer
        driver._client = LLRPClient(
            reader_config(settings),
            transport_tx_write=driver._write,
            state_change_callback=driver._on_state,
        )
        driver._client.state = state
        theirs.sendall(b"".join(stream))
        theirs.shutdown(socket.SHUT_WR)
        try:
            while True:
                await driver._handle(await driver._frame(reader))
        except LinkError as exc:
            error = str(exc)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        reads = driver._queue.get_nowait()
        assert not driver._queue.closed, "a closed read queue ends reads() early"
        return driver, reads, error


def check_llrp(stream: list[bytes], state: int) -> None:
    reads, error = asyncio.run(feed_llrp(stream, state))
    assert error, "a LinkError without a reason"
    for read in reads:
        assert isinstance(read, Read) and read.kind == "tag", read
        assert read.device == "fuzz", read
        if not read.data:  # a report the driver found broken is kept, as a named bad read
            assert read.fault and read.fault.strip(), (
                f"a tag read without an EPC or a fault: {read}"
            )


# ---- wedge: key-event streams into the decoder ---------------------------------------------

WEDGE_LAYOUTS = ("us", "de", "fr", "gb")
_key_event = st.builds(
    lambda code, value, t: (ecodes.EV_KEY, code, value, t),
    st.one_of(st.integers(0, 0x2FF), st.sampled_from([28, 96, 15, 42, 54, 100, 29, 97, 27, 58])),
    st.sampled_from([0, 1, 1, 1, 2, -1, 3, 255]),
    st.integers(0, 10**7),
)
_other_event = st.builds(
    lambda kind, code, value, t: (kind, code, value, t),
    st.sampled_from([ecodes.EV_SYN, ecodes.EV_MSC, ecodes.EV_LED, ecodes.EV_REL, 0x1F]),
    st.sampled_from([ecodes.SYN_REPORT, ecodes.SYN_DROPPED, ecodes.MSC_SCAN, 0, 7]),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 10**7),
)
key_streams = st.lists(st.one_of(_key_event, _key_event, _key_event, _other_event), max_size=300)
wedge_settings = st.builds(
    lambda layout, suffix, prefix, max_length, timeout: WedgeSettings(
        vid_pid="05e0:1200",
        layout=layout,
        suffix=suffix,
        prefix=prefix,
        max_length=max_length,
        inter_key_timeout_ms=timeout,
    ),
    st.sampled_from(WEDGE_LAYOUTS),
    st.sampled_from(["enter", "tab", "none"]),
    st.sampled_from([None, "", "#", "]C1", "é"]),
    st.sampled_from([1, 8, 64, 256]),
    st.sampled_from([1, 20, 50, 1000]),
)


class WedgeTarget:
    """Compiled keymaps, kept: compiling one is the slow part, and they are immutable."""

    def __init__(self) -> None:
        self.layouts = {name: Layout(name) for name in WEDGE_LAYOUTS}

    def check(self, cfg: WedgeSettings, events: list[tuple[int, int, int, int]]) -> None:
        asm = ScanAssembler(self.layouts[cfg.layout].decoder(), cfg)
        scans = []
        for kind, code, value, t in events:
            scans += asm.feed(InputEvent(t // 1_000_000, t % 1_000_000, kind, code, value))
        for last in (asm.expire(), asm.gone()):
            if last is not None:
                scans.append(last)
        for scan in scans:
            assert isinstance(scan.data, bytes), scan
            assert len(scan.data) <= cfg.max_length, f"{len(scan.data)} > {cfg.max_length}"
            if not scan.data:
                assert scan.fault, "an empty scan must be a bad read with a reason"
            if scan.fault is not None:
                assert scan.fault.strip(), "a fault must say what was wrong"
        assert not asm.pending, "expire() and gone() end what was begun"


# ---- running -----------------------------------------------------------------------------


def run_target(name: str, examples: int, seed: int | None, tmp: Path) -> dict[str, Any]:
    """Run one target's properties for ``examples`` examples each."""
    profile = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
    )
    tests: list[Callable[[], None]] = []
    target: LedgerTarget | None = None
    if name == "identify":
        tests = [
            profile(given(st.binary(max_size=400))(check_identify)),
            profile(given(code_like)(check_identify)),
        ]
    elif name == "config":
        path = tmp / "agent.toml"
        tests = [
            profile(
                given(toml_documents())(
                    lambda doc: check_config(path, doc.encode("utf-8", "surrogatepass"))
                )
            ),
            profile(given(st.binary(max_size=300))(lambda raw: check_config(path, raw))),
        ]
    elif name == "llrp":
        tests = [
            profile(given(llrp_streams, st.sampled_from(LLRP_STATES))(check_llrp)),
        ]
    elif name == "wedge":
        wedge = WedgeTarget()
        tests = [profile(given(wedge_settings, key_streams)(wedge.check))]
    else:
        target = LedgerTarget(tmp / "ledger.db")
        tests = [
            profile(given(batches())(lambda body: target.check(body))),
            profile(given(st.binary(max_size=200))(lambda raw: target.check(raw))),
        ]
    started = time.perf_counter()
    failure = None
    # sllurp logs every malformed message it meets (at WARNING, with tracebacks): here
    # that is every other example. The driver's own answer, the LinkError, is checked.
    quiet = logging.getLogger("sllurp")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        for test in tests:
            if seed is not None:
                from hypothesis import seed as hseed

                test = hseed(seed)(test)
            try:
                test()
            except AssertionError as exc:
                failure = str(exc)[:2000]
                break
            except Exception as exc:  # the finding itself: report it, never hide it
                failure = f"{type(exc).__name__}: {exc}"[:2000]
                break
    finally:
        quiet.setLevel(level)
        if target is not None:
            target.close()
    return {
        "examples": examples * len(tests),
        "seconds": round(time.perf_counter() - started, 1),
        "failure": failure,
    }


TARGETS = ("identify", "config", "ledger", "llrp", "wedge")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--examples", type=int, default=20_000, help="per property (default 20,000)")
    p.add_argument("--target", action="append", choices=TARGETS, help="repeatable; default all")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: derandomized)")
    p.add_argument("--dir", type=Path, default=None, help="where to make the temp dir")
    args = p.parse_args(argv)
    if args.examples < 1:
        p.error("--examples must be at least 1")
    return args


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = parse_args(argv)
    out: dict[str, Any] = {"bench": "fuzz", "examples_per_property": args.examples}
    with tempfile.TemporaryDirectory(prefix="edgetally-fuzz-", dir=args.dir) as tmp:
        for name in args.target or TARGETS:
            print(f"bench.fuzz: {name}", file=sys.stderr, flush=True)
            out[name] = run_target(name, args.examples, args.seed, Path(tmp))
    out["failures"] = sum(1 for name in TARGETS if out.get(name, {}).get("failure"))
    print(json.dumps(out, indent=2), file=stdout or sys.stdout)
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
