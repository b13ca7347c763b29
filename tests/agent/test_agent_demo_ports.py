"""Servers we start and restart on one port (demo, tests, benches) take it from below the
kernel's ephemeral range, where no outgoing connection's local port can take it meanwhile."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.demo.ports import LOWEST, TRIES, ephemeral_range, free_port

LOW = ephemeral_range()[0]
no_room = pytest.mark.skipif(
    LOW - LOWEST < TRIES, reason=f"a tuned kernel: its ephemeral range starts at {LOW}"
)


@no_room
def test_a_free_port_is_below_the_ephemeral_range_and_free() -> None:
    low = LOW
    ports = {free_port() for _ in range(50)}
    assert all(LOWEST <= p < low for p in ports), sorted(ports)
    assert len(ports) == 50  # never the same twice in a process, though drawn at random
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))  # nobody holds it


@no_room
def test_a_port_someone_listens_on_is_never_given() -> None:
    held = []
    try:
        for port in range(LOWEST, LOWEST + 500):  # about 1 in 45 of the ports it draws from
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            s.listen()
            held.append(s)
        taken = {s.getsockname()[1] for s in held}
        assert all(free_port() not in taken for _ in range(500))  # about 11 would be, unchecked
    finally:
        for s in held:
            s.close()


def test_the_range_is_read_from_the_kernel_or_defaults(tmp_path: Path) -> None:
    tuned = tmp_path / "range"
    tuned.write_text("40000\t50000\n")
    assert ephemeral_range(tuned) == (40000, 50000)
    assert ephemeral_range(tmp_path / "missing") == (32768, 60999)
