"""Property fuzzing of what reads outside input: identify, the config loader, the ledger's POST.

    python -m bench.fuzz [--examples 20000] [--target identify|config|ledger ...] [--seed N]

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

atheris is not used: hypothesis already drives these pure-Python targets
with structure, and atheris would be one more build dependency for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import load_config
from agent.errors import ConfigError
from agent.identify import identify
from agent.model import Identity, Read
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
    else:
        target = LedgerTarget(tmp / "ledger.db")
        tests = [
            profile(given(batches())(lambda body: target.check(body))),
            profile(given(st.binary(max_size=200))(lambda raw: target.check(raw))),
        ]
    started = time.perf_counter()
    failure = None
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
        if target is not None:
            target.close()
    return {
        "examples": examples * len(tests),
        "seconds": round(time.perf_counter() - started, 1),
        "failure": failure,
    }


TARGETS = ("identify", "config", "ledger")


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
