"""The systemd notify protocol against real AF_UNIX datagram sockets."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.notify import STATUS_MAX_BYTES, Notifier


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def logs() -> Iterator[Records]:
    logger = logging.getLogger("edgetally.notify")
    handler = Records()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def bind(address: str | bytes) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(5)
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "n.sock"
    assert len(os.fsencode(path)) < 108, "sun_path is 108 bytes"
    sock = bind(str(path))
    try:
        yield sock, path
    finally:
        sock.close()


def nothing_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(5)
    return False


def test_ready_status_stopping_datagrams(server: tuple[socket.socket, Path]) -> None:
    sock, path = server
    with Notifier({"NOTIFY_SOCKET": str(path)}) as notifier:
        assert notifier.enabled
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
        assert notifier.ready(status="outbox open, 2 devices")
        assert sock.recv(4096) == b"READY=1\nSTATUS=outbox open, 2 devices"
        assert notifier.status("syncing: 12 pending")
        assert sock.recv(4096) == b"STATUS=syncing: 12 pending"
        assert notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1"
        assert notifier.stopping(status="draining")
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=draining"
    assert not notifier.enabled


def test_status_text_cannot_break_the_protocol(server: tuple[socket.socket, Path]) -> None:
    sock, path = server
    with Notifier({"NOTIFY_SOCKET": str(path)}) as notifier:
        notifier.status("bad read 01\nREADY=1\r\x1b[2J\x00end\x7f")
        assert sock.recv(4096) == b"STATUS=bad read 01 READY=1  [2J end "

        notifier.status("é" * STATUS_MAX_BYTES)  # 2 bytes each: cut on a character boundary
        data = sock.recv(8192)
        value = data.removeprefix(b"STATUS=")
        assert len(value) == STATUS_MAX_BYTES
        assert value.decode("utf-8") == "é" * (STATUS_MAX_BYTES // 2)

        notifier.status("x" * (STATUS_MAX_BYTES - 1) + "é")  # the cut falls inside "é"
        assert sock.recv(8192) == b"STATUS=" + b"x" * (STATUS_MAX_BYTES - 1)

        notifier.status("GTIN \udcff lone surrogate")  # from surrogateescape'd device bytes
        assert sock.recv(4096) == b"STATUS=GTIN ? lone surrogate"


def test_abstract_namespace_socket() -> None:
    name = f"edgetally-test-{uuid.uuid4().hex}"
    sock = bind(b"\0" + name.encode())
    try:
        with Notifier({"NOTIFY_SOCKET": "@" + name}) as notifier:
            assert notifier.ready(status="up")
            assert sock.recv(4096) == b"READY=1\nSTATUS=up"
    finally:
        sock.close()


@pytest.mark.parametrize("pid", [None, "self"])
def test_watchdog_for_this_process(server: tuple[socket.socket, Path], pid: str | None) -> None:
    sock, path = server
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000"}
    if pid is not None:
        env["WATCHDOG_PID"] = str(os.getpid())
    with Notifier(env) as notifier:
        assert notifier.watchdog_interval_s() == 15.0
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.watchdog_interval_s() is None  # closed


def test_watchdog_meant_for_another_process(server: tuple[socket.socket, Path]) -> None:
    sock, path = server
    env = {
        "NOTIFY_SOCKET": str(path),
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": str(os.getpid() + 1),
    }
    with Notifier(env) as notifier:
        assert notifier.watchdog_interval_s() is None
        assert not notifier.watchdog()
        assert nothing_waiting(sock)
        assert notifier.ready()  # the rest of the protocol still works
        assert sock.recv(4096) == b"READY=1"


@pytest.mark.parametrize(
    ("usec", "pid", "warned"),
    [("0", "", False), ("", "", False), ("soon", "", True), ("30000000", "me", True)],
)
def test_watchdog_off_without_a_usable_interval(
    server: tuple[socket.socket, Path], logs: Records, usec: str, pid: str, warned: bool
) -> None:
    sock, path = server
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": usec, "WATCHDOG_PID": pid}
    with Notifier(env) as notifier:
        assert notifier.watchdog_interval_s() is None
        assert not notifier.watchdog()
        assert nothing_waiting(sock)
    assert logs.events() == (["notify_watchdog_env_invalid"] if warned else [])


def test_without_notify_socket_disabled_and_silent(
    monkeypatch: pytest.MonkeyPatch, logs: Records
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    for notifier in (Notifier(), Notifier({})):
        assert not notifier.enabled
        assert notifier.watchdog_interval_s() is None
        assert not notifier.ready(status="up")
        assert not notifier.watchdog()
        assert not notifier.status("x")
        assert not notifier.stopping()
        notifier.close()
    assert logs.records == []


def test_default_environment_is_os_environ(
    server: tuple[socket.socket, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = server
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with Notifier() as notifier:
        assert notifier.watchdog_interval_s() == 1.0
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"


@pytest.mark.parametrize("value", ["relative/notify.sock", "vsock:2:1234", "@"])
def test_unsupported_socket_address_disables(logs: Records, value: str) -> None:
    with Notifier({"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "30000000"}) as notifier:
        assert not notifier.enabled
        assert not notifier.ready()
        assert notifier.watchdog_interval_s() is None
    assert logs.events() == ["notify_socket_unsupported"]


def test_socket_that_cannot_be_made_disables(
    server: tuple[socket.socket, Path], monkeypatch: pytest.MonkeyPatch, logs: Records
) -> None:
    _, path = server

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(socket, "socket", refuse)
    with Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}) as notifier:
        assert not notifier.enabled
        assert not notifier.ready()
        assert notifier.watchdog_interval_s() is None
    assert logs.events() == ["notify_socket_failed"]


def test_socket_removed_mid_run(tmp_path: Path, logs: Records) -> None:
    path = tmp_path / "n.sock"
    sock = bind(str(path))
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    with Notifier(env) as notifier:
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"

        sock.close()
        path.unlink()
        assert not notifier.watchdog()  # ENOENT: returned, not raised
        assert not notifier.watchdog()
        assert not notifier.status("still running")
        assert notifier.enabled  # it keeps trying: systemd may come back (daemon-reexec)

        sock = bind(str(path))
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        sock.close()
        assert not notifier.watchdog()  # bound but closed: ECONNREFUSED
    failed = [r for r in logs.records if r.getMessage() == "notify_send_failed"]
    assert logs.events() == ["notify_send_failed", "notify_send_recovered", "notify_send_failed"]
    assert "FileNotFoundError" in failed[0].fields["error"]  # type: ignore[attr-defined]
    assert failed[0].fields["notify_socket"] == str(path)  # type: ignore[attr-defined]


def test_full_socket_never_blocks(server: tuple[socket.socket, Path], logs: Records) -> None:
    """Nobody reading (a hung manager): sends fail with EAGAIN instead of blocking the loop."""
    sock, path = server
    with Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}) as notifier:
        results = [notifier.watchdog() for _ in range(100_000)]
    assert results[0] and not results[-1]
    assert logs.events() == ["notify_send_failed"]
    assert "BlockingIOError" in logs.records[0].fields["error"]  # type: ignore[attr-defined]
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_close_is_idempotent_and_final(server: tuple[socket.socket, Path]) -> None:
    sock, path = server
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    notifier.close()
    notifier.close()
    assert not notifier.enabled
    assert not notifier.ready()
    assert nothing_waiting(sock)
