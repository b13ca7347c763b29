"""Real parts for end-to-end tests: a ledger process on loopback, agent configs, scripts."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.cli import write_secret
from agent.config import load_config
from agent.daemon import Daemon
from agent.demo.ports import free_port
from drivers.llrp_emulator import LlrpEmulator, Scenario, scenario_from_dict
from ledger import open_store

ROOT = Path(__file__).resolve().parents[2]
AGENT = "dock-7"


class LedgerProcess:
    """`edgetally ledger serve` as a real process; stop and start it again on the same port.

    On a SQLite file in ``workdir`` by default; ``db`` may name a PostgreSQL URL
    instead (several processes may then share it), served by ``workers`` processes.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        db: str | None = None,
        workers: int = 1,
        agent: str | None = AGENT,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.db: str | Path = db if db is not None else workdir / "ledger.db"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_file = workdir / "token"
        self.workers = workers
        self.extra_args = extra_args
        self.token = ""
        if agent is not None:
            with open_store(self.db) as store:
                self.token = store.add_agent(agent)
            write_secret(self.token_file, self.token)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.cli",
                "ledger",
                "serve",
                "--db",
                str(self.db),
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                *self.extra_args,
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the ledger exited at start"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the ledger did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )

    def reader_client(self) -> httpx.Client:
        """A client with a (new) reader token: stock, every journal, the fleet, the alarms."""
        with open_store(self.db) as store:
            token = store.rotate_token("test-reader", role="reader")
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def journal(self) -> list[dict[str, Any]]:
        """Every journal entry, read straight from the ledger's database (works while it is down)."""
        with open_store(self.db) as store:
            out: list[dict[str, Any]] = []
            since = 0
            while True:
                page, since = store.journal(None, since, 1000)
                if not page:
                    return out
                out.extend(page)

    def on_hand(self) -> dict[str, int]:
        with open_store(self.db) as store:
            return {f"{r['location']}/{r['item']}": r["qty"] for r in store.stock(None, None)}


def write_script(path: Path, lines: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def gtin14(n: int) -> str:
    """A valid GTIN-14 for item number n (check digit computed)."""
    body = f"0950600{n:06d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def write_config(
    workdir: Path,
    url: str,
    token_file: Path,
    script: Path | None,
    *,
    extra_sync: str = "",
    extra_outbox: str = "",
    speed: float = 0,
    ack_log: Path | None = None,
    backoff_initial_s: float = 0.05,
    backoff_cap_s: float = 0.5,
    health_listen: str = "127.0.0.1:0",
    extra_health: str = "",
    timeout_s: float = 5,
    log_level: str = "info",
    outbox_path: Path | str = "outbox.db",
) -> Path:
    device = ""
    if script is not None:
        ack = f'ack_log = "{ack_log}"\n' if ack_log else ""
        device = (
            f'[[devices]]\nid = "scanner-1"\ndriver = "simulated"\nscript = "{script}"\n'
            f"speed = {speed}\n{ack}\n"
            '[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
            'devices = ["scanner-1"]\n'
        )
    text = (
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{workdir}"\nlog_level = "{log_level}"\n\n'
        f'[outbox]\npath = "{outbox_path}"\n{extra_outbox}\n'
        f'[sync]\nurl = "{url}"\ntoken_file = "{token_file}"\nbackoff_initial_s = {backoff_initial_s}\n'
        f"backoff_cap_s = {backoff_cap_s}\ntimeout_s = {timeout_s}\n{extra_sync}\n"
        f'[health]\nlisten = "{health_listen}"\n{extra_health}\n' + device
    )
    path = workdir / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def agent_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


async def no_wait(seconds: float) -> None:
    """Retry sleeps that take no wall time; the waits chosen are checked instead."""
    await asyncio.sleep(0)


async def run_until_settled(daemon: Daemon, timeout: float = 120) -> None:
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.wait_settled(), timeout)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


def make_daemon(config_path: Path, token: str, **kwargs: object) -> Daemon:
    return Daemon(load_config(config_path), token, **kwargs)  # type: ignore[arg-type]


def run_bench(module: str, *args: str, workdir: Path, timeout: float = 240) -> tuple[Any, str]:
    """``python -m bench.<module> ARGS --dir WORKDIR`` as a process: the JSON it printed
    on stdout (which must hold that and nothing else) and its stderr (the progress)."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args, "--dir", str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerProcess]:
    """The reference ledger as a running process (a fixture: import it into a conftest)."""
    proc = LedgerProcess(tmp_path)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def ledger_down(tmp_path: Path) -> Iterator[LedgerProcess]:
    """A ledger that is not running yet: its port refuses connections until `start()`."""
    proc = LedgerProcess(tmp_path)
    yield proc
    proc.stop()


# ---- an LLRP reader (the emulator) and the daemon on it -------------------------------------


def shelf(name: str, epcs: Sequence[bytes], rate: float, **more: Any) -> Scenario:
    """Tags on a shelf by the inside antenna (2) of a two-antenna reader, read ``rate``
    times a second, reported every 50 ms; ``more``: further scenario keys (faults...)."""
    return scenario_from_dict(
        {
            "name": name,
            "rate": rate,
            "report_interval_s": 0.05,
            "antennas": [{"id": 1, "group": "outside"}, {"id": 2, "group": "inside"}],
            "tags": [
                {
                    "name": "cases",
                    "epcs": [e.hex() for e in epcs],
                    "motion": "shelf",
                    "near": "inside",
                    "rssi_peak_dbm": -40,
                }
            ],
            **more,
        }
    )


def llrp_device(device_id: str, port: int, antennas: Sequence[int], extra: str = "") -> str:
    """A ``[[devices]]`` table for the emulator on ``port``, with the quick link settings
    every LLRP end-to-end test uses (a 0.5 s keepalive, a report every 50 ms)."""
    return (
        f'\n[[devices]]\nid = "{device_id}"\ndriver = "llrp"\nhost = "127.0.0.1"\n'
        f"port = {port}\nantennas = {list(antennas)}\nkeepalive_s = 0.5\n"
        f"report_timeout_ms = 50\n{extra}"
    )


@dataclasses.dataclass
class ReaderRun:
    """What ``LlrpAgent.run`` yields: the emulator, the running daemon, its config file."""

    emu: LlrpEmulator
    daemon: Daemon
    config: Path

    async def until(self, done: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
        """Poll ``done`` every 0.2 s until it holds; TimeoutError after ``timeout_s``
        (generous: a loaded machine; the tests take seconds alone)."""
        async with asyncio.timeout(timeout_s):
            while not await done():
                await asyncio.sleep(0.2)


def journal_holds(ledger: LedgerProcess, want: int) -> Callable[[], Awaitable[bool]]:
    """For ``ReaderRun.until``: the ledger's journal holds ``want`` entries."""

    async def done() -> bool:
        return len(await asyncio.to_thread(ledger.journal)) >= want

    return done


class LlrpAgent:
    """The daemon on the LLRP reader emulator over TCP: the set-up the LLRP end-to-end
    tests share (the ``llrp_agent`` fixture)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @contextlib.asynccontextmanager
    async def run(
        self,
        scenario: Scenario,
        tables: Callable[[int], str],
        ledger: LedgerProcess | None = None,
    ) -> AsyncIterator[ReaderRun]:
        """The emulator on ``scenario`` and the daemon with a config of the shared agent
        settings plus ``tables(port)`` (its ``[[devices]]`` and ``[[stations]]``),
        delivering to ``ledger`` (or to a closed port: the outbox only), running until
        the block ends; then stopped as SIGTERM stops it."""
        async with LlrpEmulator(scenario) as emu:
            if ledger is not None:
                token, token_file, url = ledger.token, ledger.token_file, ledger.url
            else:
                token, token_file, url = "secret", self.workdir / "token", "http://127.0.0.1:9/"
                token_file.write_text(token, encoding="utf-8")
                token_file.chmod(0o600)
            path = write_config(self.workdir, url, token_file, None, health_listen="")
            with path.open("a", encoding="utf-8") as f:
                f.write(tables(emu.port))
            daemon = Daemon(load_config(path), token)
            task = asyncio.create_task(daemon.run())
            try:
                yield ReaderRun(emu, daemon, path)
            finally:
                daemon.stop()
                await asyncio.wait_for(task, 10)


@pytest.fixture
def llrp_agent(tmp_path: Path) -> LlrpAgent:
    """The daemon on the LLRP reader emulator (a fixture: import it into a conftest)."""
    return LlrpAgent(tmp_path)
