"""Agent and ledger processes for the benchmarks: start, watch, stop, measure.

Real processes (``python -m agent.cli ...``), a ``$NOTIFY_SOCKET`` to hear
READY=1 as systemd would, stdout parsed as the agent's JSON log lines, and
/proc for memory. Shared by bench.footprint and the torture and outage runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from agent.demo.ports import free_port as free_port  # the benches' servers' ports

ROOT = Path(__file__).resolve().parents[1]
READY_GRACE_S = 1.0  # after the log line, how long READY=1 may still arrive
STOP_TIMEOUT_S = 30.0
EDGETALLY = [sys.executable, "-m", "agent.cli"]


class BenchError(RuntimeError):
    """The benchmark could not run as intended; the message says why."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---- processes ---------------------------------------------------------------------------


class NotifyListener:
    """A systemd-style ``$NOTIFY_SOCKET``: an AF_UNIX datagram socket, drained by a thread.

    Drained for the child's whole life, so a daemon that also sends STATUS= or
    WATCHDOG=1 never blocks on a full socket buffer.
    """

    def __init__(self, path: Path) -> None:
        self.path: Path | None = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if len(os.fsencode(path)) < 108:  # sun_path's size on Linux, with its NUL
            self.sock.bind(str(path))
            self.address = str(path)
        else:  # a deep temp dir (pytest's): the abstract namespace, which leaves no file
            self.path = None
            name = f"edgetally-footprint-{os.getpid()}-{path.stem}-{secrets.token_hex(4)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        self.sock.settimeout(0.1)
        self.ready_at: float | None = None
        self.messages: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.decode("utf-8", "replace").splitlines():
                key, _, value = line.partition("=")
                self.messages[key] += 1
                if key == "READY" and value == "1" and self.ready_at is None:
                    self.ready_at = now

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()


class Child:
    """A process we started: stdout read line by line by a thread into a log file, stopped by us."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._err = (workdir / f"{name}.stderr").open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
        )
        self.events: Counter[str] = Counter()
        self.event_at: dict[str, float] = {}
        self.tail: deque[str] = deque(maxlen=20)
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("wb") as out:
            for raw in self.proc.stdout:
                now = time.monotonic()
                out.write(raw)
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.tail.append(line)
                try:
                    name = json.loads(line).get("event")
                except (ValueError, AttributeError):
                    continue
                if isinstance(name, str):
                    self.events[name] += 1
                    self.event_at.setdefault(name, now)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, lines: int = 15) -> str:
        if not self._err.closed:
            self._err.flush()
        text = Path(self._err.name).read_text(encoding="utf-8", errors="replace")
        return "\n".join([*self.tail, *text.splitlines()[-lines:]])

    def died(self, doing: str) -> BenchError:
        return BenchError(
            f"{self.name} exited with {self.proc.returncode} while {doing}; its output ends:\n"
            + self.stderr_tail()
        )

    def close(self) -> None:
        """After it has exited: let the reader finish and close our end of its stderr."""
        self._reader.join(5)
        self._err.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> float:
        """``sig``, then wait; a child that does not stop in time is killed and that is an error."""
        t0 = time.monotonic()
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BenchError(
                    f"{self.name} did not stop within {STOP_TIMEOUT_S:.0f}s of {sig.name}; killed"
                ) from None
        seconds = time.monotonic() - t0
        self.close()
        if self.proc.returncode != 0:
            raise BenchError(
                f"{self.name} stopped with exit code {self.proc.returncode}; its output ends:\n"
                + self.stderr_tail()
            )
        return seconds


def child_env(
    notify: NotifyListener | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}
    env.pop("NOTIFY_SOCKET", None)  # never the socket of whatever runs this benchmark
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.address
    return env


def start_agent(
    stack: contextlib.ExitStack, name: str, config: Path, workdir: Path, env: dict[str, str]
) -> tuple[Child, NotifyListener]:
    notify = NotifyListener(workdir.parent / f"{name}.sock")  # short: sun_path is 108 bytes
    stack.callback(notify.close)
    argv = [*EDGETALLY, "run", "--config", str(config)]
    agent = Child(name, argv, workdir, child_env(notify, env))
    stack.callback(stop_quietly, agent)
    return agent, notify


def stop_quietly(child: Child, sig: signal.Signals = signal.SIGTERM) -> None:
    """For clean-up after a failure: stop it, and say (not raise) if that went wrong."""
    if not child.alive():
        child.close()
        return
    try:
        child.stop(sig)
    except BenchError as exc:
        log(f"while cleaning up: {exc}")


def wait_ready(
    agent: Child, notify: NotifyListener, timeout: float
) -> tuple[float, str, float | None]:
    """Seconds from spawn to READY, which signal said so, and seconds to the log line."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        logged = agent.event_at.get("ready")
        if notify.ready_at is not None:
            logged_s = (logged - agent.started) if logged is not None else None
            return notify.ready_at - agent.started, "sd_notify", logged_s
        if logged is not None and now - logged >= READY_GRACE_S:
            return logged - agent.started, "log_line", logged - agent.started
        if not agent.alive():
            raise agent.died("starting")
        if now > deadline:
            raise BenchError(f"{agent.name} was not ready within {timeout:g}s")
        time.sleep(0.005)


def read_proc_status(pid: int) -> dict[str, int]:
    """The kB (and count) fields of /proc/<pid>/status we report."""
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise BenchError(f"cannot read /proc/{pid}/status: {exc.strerror}") from exc
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
            out[key] = int(value.split()[0])
    return out


def mb(kb: int) -> float:
    return round(kb / 1024, 2)


def mapped_libraries(pid: int) -> list[str]:
    """Python extension modules and packaged libraries the process has mapped.

    From /proc/<pid>/maps: which C parts a daemon pays for, named by module
    (``evdev/_input``, ``_sqlite3``), relative to site-packages or lib-dynload.
    """
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except OSError as exc:
        raise BenchError(f"cannot read /proc/{pid}/maps: {exc.strerror}") from exc
    names = set()
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        path = fields[5] if len(fields) == 6 else ""  # anonymous mappings have no path
        for root in ("/site-packages/", "/lib-dynload/"):
            _, found, rest = path.partition(root)
            if found and ".so" in rest:  # evdev/_input.cpython-311-x86_64-linux-gnu.so
                head, _, file = rest.rpartition("/")
                names.add(f"{head}/{file.split('.')[0]}" if head else file.split(".")[0])
    return sorted(names)


@contextlib.contextmanager
def terminated_as_error() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl+C, so children are stopped and files removed."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def bench_main(
    name: str,
    summary: str,
    work: Callable[[Path], dict[str, Any]],
    *,
    say: Callable[[str], None] = log,
    parent: Path | None = None,
    stdout: IO[str] | None = None,
    on_failure: Callable[[Path], None] | None = None,
) -> int:
    """What every benchmark's main() does around its work: one temp dir removed at the
    end, SIGTERM handled like Ctrl+C, one JSON object on stdout, 1 on failure."""
    with (
        terminated_as_error(),
        tempfile.TemporaryDirectory(prefix=f"edgetally-{name}-", dir=parent) as tmp,
    ):
        say(f"{summary} in {tmp}")
        try:
            result = work(Path(tmp))
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            say(f"failed: {exc}")
            if on_failure is not None:
                on_failure(Path(tmp))  # before the temp dir goes
            return 1
        except KeyboardInterrupt:
            say("interrupted")
            return 130
    print(json.dumps(result, indent=2), file=stdout or sys.stdout)
    return 0


def wait_healthy(ledger: Child, url: str, timeout: float = 30) -> None:
    """Until the ledger process answers /healthz; its death or the timeout is a BenchError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not ledger.alive():
            raise ledger.died("starting")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise BenchError(f"the ledger at {url} was not healthy within {timeout:.0f}s")
