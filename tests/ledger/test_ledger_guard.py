"""Slow clients against a real ledger process (issue 18, item 1).

The ledger runs in its own process under a 1024 descriptor limit; the test
opens more half-sent heads than that and a legitimate agent still gets every
batch answered within seconds; a body that stalls is cut within the idle time.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.store import LedgerStore
from tests.ledger.test_ledger_server import ROOT, free_port, wait_until_up

RUN = (
    "import sys, pathlib; from ledger import serve; "
    "serve(pathlib.Path(sys.argv[1]), '127.0.0.1', int(sys.argv[2]), "
    "head_timeout_s=float(sys.argv[3]), body_idle_s=float(sys.argv[4]))"
)
HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: "


def _nofile_1024() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.fixture
def slow_ledger(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """A ledger process with a 1024 descriptor limit, 3 s for a head, 1 s of body idle."""
    db = tmp_path / "ledger.db"
    with LedgerStore(db) as store:
        token = store.add_agent("dock-3")
    port = free_port()
    # stderr to a file: a pipe nobody reads would block the ledger once it filled.
    err = (tmp_path / "ledger.err").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, str(db), str(port), "3", "1"],
        cwd=ROOT,
        stderr=err,
        preexec_fn=_nofile_1024,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc)
        yield base, token, proc
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        err.close()


def _open_half_heads(port: int, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        with contextlib.suppress(OSError):  # the ledger may already have cut it
            s.sendall(HALF_HEAD)
        out.append(s)
    return out


def _closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_flood_of_half_sent_heads_does_not_starve_an_agent(
    slow_ledger: tuple[str, str, subprocess.Popen[bytes]], mv: Any, tmp_path: Path
) -> None:
    base, token, proc = slow_ledger
    port = int(base.rsplit(":", 1)[1])
    flood = _open_half_heads(port, 1100)
    try:
        latencies = []
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            for _ in range(10):
                started = time.monotonic()
                r = client.post("/v1/movements", json={"agent": "dock-3", "movements": [mv()]})
                latencies.append(time.monotonic() - started)
                assert r.status_code == 200, r.text
                assert r.json()["results"][0]["status"] == "applied"
        assert max(latencies) < 3.0, latencies
        # Every half-sent head is cut: the oldest to make room, the rest at the deadline.
        deadline = time.monotonic() + 15
        still_open = [
            s for s in flood if not _closed_by_peer(s, max(0.01, deadline - time.monotonic()))
        ]
        assert still_open == []
    finally:
        for s in flood:
            s.close()
    proc.terminate()
    proc.communicate(timeout=20)
    stderr = (tmp_path / "ledger.err").read_bytes()
    assert b"Too many open files" not in stderr, stderr.decode(errors="replace")[-2000:]


def test_a_stalled_body_is_cut_within_the_idle_time(
    slow_ledger: tuple[str, str, subprocess.Popen[bytes]],
) -> None:
    base, token, _ = slow_ledger
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST /v1/movements HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 100\r\n\r\n"
            b'{"agent":'
        )
        started = time.monotonic()
        s.settimeout(8)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(4096):
                data += chunk
        waited = time.monotonic() - started
    assert waited < 4.0, f"held {waited:.1f} s"
    assert b"200 OK" not in data
    # The ledger goes on answering.
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_a_trickled_head_is_cut_at_the_deadline_not_kept_alive_by_each_byte(
    slow_ledger: tuple[str, str, subprocess.Popen[bytes]],
) -> None:
    base, _, _ = slow_ledger
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        started = time.monotonic()
        cut = False
        for byte in HALF_HEAD * 20:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            if _closed_by_peer(s, 0.2):
                cut = True
                break
        waited = time.monotonic() - started
    assert cut and waited < 6.0, f"cut={cut} after {waited:.1f} s"


def test_serve_speaks_tls_with_tls_cert_and_key_and_still_cuts_slow_heads(
    tmp_path: Path, mv: Any
) -> None:
    """`ledger serve --tls-cert/--tls-key` (issue 18, item 5): HTTPS end to end, the
    start line says https, and a half-sent head is cut there too."""
    import json
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    db = tmp_path / "ledger.db"
    with LedgerStore(db) as store:
        token = store.add_agent("dock-3")
    args = ["--db", str(db), "--port", "0", "--tls-cert", str(tmp_path / "cert.pem")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "ledger", "serve", *args, "--tls-key", str(tmp_path / "key.pem")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        start = json.loads(proc.stdout.readline())
        assert start["url"].startswith("https://127.0.0.1:")
        verify = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with httpx.Client(base_url=start["url"], verify=verify, timeout=10) as client:
            r = client.post(
                "/v1/movements",
                json={"agent": "dock-3", "movements": [mv()]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.json()["results"][0]["status"] == "applied"
        port = int(start["url"].rsplit(":", 1)[1])
        with verify.wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1"
        ) as s:
            s.sendall(HALF_HEAD)
            started = time.monotonic()
            s.settimeout(15)
            with contextlib.suppress(ConnectionResetError, ssl.SSLError):
                while s.recv(1024):
                    pass
            assert time.monotonic() - started < 10  # the default head deadline is 5 s
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_tls_cert_without_key_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "ledger", "serve", "--db", str(tmp_path / "l.db"),
         "--tls-cert", str(tmp_path / "cert.pem")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--tls-cert and --tls-key: give both" in done.stderr and "Traceback" not in done.stderr


def test_tls_files_from_the_ledger_config_are_resolved_and_checked(tmp_path: Path) -> None:
    from ledger.config import load_ledger_config

    cfg = tmp_path / "ledger.toml"
    cfg.write_text('[ledger]\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n')
    settings = load_ledger_config(cfg)
    assert (settings.tls_cert, settings.tls_key) == (
        str(tmp_path / "cert.pem"),
        str(tmp_path / "key.pem"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "ledger", "serve", "--db", str(tmp_path / "l.db"),
         "--config", str(cfg)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{tmp_path / 'cert.pem'}: no such file" in done.stderr
