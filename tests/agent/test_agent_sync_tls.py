"""TLS is verified by default: the sink refuses a certificate it cannot trust.

A real uvicorn ledger on loopback serves HTTPS with a certificate from a test
CA (trustme); the agent's sink talks to it over a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import uvicorn

from agent.errors import SyncTransient
from agent.outbox import Pending
from agent.sync import HttpLedgerSink
from ledger import LedgerStore, create_app


@pytest.fixture
def tls_ledger(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    key_and_cert = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(key_and_cert))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    store = LedgerStore(tmp_path / "ledger.db")
    token = store.add_agent("dock-1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(store),
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="off",
        ssl_certfile=str(key_and_cert),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"https://127.0.0.1:{port}", token, ca_file
    server.should_exit = True
    thread.join(10)
    store.close()


async def test_untrusted_certificate_is_refused_by_default(
    tls_ledger: tuple[str, str, Path],
) -> None:
    url, token, _ = tls_ledger
    sink = HttpLedgerSink(url, token)
    with pytest.raises(SyncTransient, match="CERTIFICATE_VERIFY_FAILED"):
        await sink.send("dock-1", [Pending(1, "x", "{}", 0.0)], "b1")
    await sink.aclose()


async def test_the_configured_ca_is_trusted(tls_ledger: tuple[str, str, Path]) -> None:
    url, token, ca_file = tls_ledger
    sink = HttpLedgerSink(url, token, ca_file=ca_file)
    movement = (
        '{"seq":1,"id":"01a1ffbb-9539-73ea-a0e8-65b9529e6fd0","agent":"dock-1","kind":"receive",'
        '"item":{"gtin":"09506000134352"},"qty":2,"to":"DOCK-1","station":"s","device":"d",'
        '"observed_at":"2026-11-21T20:00:00.000000Z","clock":{"synced":true,"boot_id":"b",'
        '"mono_ns":1}}'
    )
    [result] = await sink.send(
        "dock-1", [Pending(1, "01a1ffbb-9539-73ea-a0e8-65b9529e6fd0", movement, 0.0)], "b2"
    )
    assert result.status == "applied"
    await sink.aclose()
