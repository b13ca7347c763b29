"""A real trytond on loopback for the tryton sink's tests.

The database is made once per session (``trytond-admin --all`` with the
stock, product_cost_fifo, stock_lot and edgetally modules, then
tryton_setup.py) and copied for each test, so a test starts trytond on a
fresh database file in about a second instead of a minute.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

DB = "edgetally"
LOGIN, PASSWORD = "edgetally-agent", "agent-password-1"
LOST_FOUND = "LOST"
STORAGE = ("DOCK-7", "SHELF-A", "SHELF-B")  # Tryton locations of these codes, under STO
MODULES = ("stock", "product_cost_fifo", "stock_lot", "edgetally")
BIN = Path(sys.executable).parent


def _config(workdir: Path, port: int) -> Path:
    path = workdir / "trytond.conf"
    path.write_text(
        f"[database]\nuri = sqlite://\npath = {workdir}\n\n"
        f"[web]\nlisten = 127.0.0.1:{port}\n\n"
        "[session]\nmax_attempt = 1000\n",
        encoding="utf-8",
    )
    return path


def build_template(workdir: Path, products: list[str]) -> Path:
    """An initialised database file at ``workdir/edgetally.sqlite``."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = _config(workdir, 0)
    (workdir / "admin-pass").write_text("admin-password\n", encoding="utf-8")
    db = workdir / f"{DB}.sqlite"
    db.touch()  # trytond-admin creates tables in an existing SQLite file
    env = {**os.environ, "TRYTONPASSFILE": str(workdir / "admin-pass")}
    log = workdir / "admin.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [
                str(BIN / "trytond-admin"),
                "-c",
                str(conf),
                "-d",
                DB,
                "--all",
                "--email",
                "admin@example.com",
                "--activate-dependencies",
                "-u",
                *MODULES,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=300,
        )
    assert done.returncode == 0, log.read_text()[-3000:]
    spec = workdir / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "login": LOGIN,
                "password": PASSWORD,
                "lost_found": LOST_FOUND,
                "storage": list(STORAGE),
                "products": products,
            }
        ),
        encoding="utf-8",
    )
    setup = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("tryton_setup.py")),
            str(conf),
            DB,
            str(spec),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    return db


class TrytonServer:
    """``trytond`` as a process on a copy of the template; stop and start it on one port."""

    def __init__(self, workdir: Path, template: Path, port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = port
        shutil.copyfile(template, workdir / f"{DB}.sqlite")
        self.conf = _config(workdir, port)
        self.root = f"http://127.0.0.1:{port}/"
        self.url = f"{self.root}{DB}/rpc/"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = (self.workdir / "trytond.log").open("ab")
        self.proc = subprocess.Popen(
            [str(BIN / "trytond"), "-c", str(self.conf), "-d", DB],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.workdir / "trytond.log").read_text()[-3000:]
            try:
                if (
                    httpx.post(
                        f"{self.root}rpc/",
                        json={"method": "common.server.version", "params": []},
                        timeout=2,
                    ).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("trytond did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if hasattr(self, "log"):
            self.log.close()

    def call(self, method: str, *params: object, session: str | None = None) -> object:
        """One JSON-RPC call, as the test's own client (to read what Tryton holds)."""
        headers = {"Authorization": f"Session {session}"} if session else {}
        r = httpx.post(
            self.url,
            json={"id": 1, "method": method, "params": list(params)},
            headers=headers,
            timeout=30,
        )
        r.raise_for_status()
        doc = r.json()
        assert "error" not in doc or doc["error"] is None, doc
        return doc["result"]


class Reader:
    """What Tryton holds, read over JSON-RPC as the agent's user (the test's eyes)."""

    def __init__(self, server: TrytonServer) -> None:
        self.server = server
        uid, key, _ = server.call("common.db.login", LOGIN, {"password": PASSWORD}, "en")
        token = base64.b64encode(f"{LOGIN}:{uid}:{key}".encode()).decode()
        self.session = token
        prefs = server.call("model.res.user.get_preferences", True, {}, session=token)
        assert isinstance(prefs, dict)
        self.context = {"company": prefs["company"]}

    def call(self, method: str, *params: object) -> Any:
        return self.server.call(method, *params, self.context, session=self.session)

    def on_hand(self, locations: dict[str, str]) -> dict[str, int]:
        """Tryton's quantity of each product at each Tryton location, keyed as the
        reference ledger keys on-hand (``EdgeTally location/item``); zeros left out."""
        out: dict[str, int] = {}
        for ours, code in locations.items():
            (loc,) = self.call("model.stock.location.search", [("code", "=", code)], 0, None, None)
            ctx = {**self.context, "locations": [loc], "stock_date_end": None}
            rows = self.server.call(
                "model.product.product.search_read",
                [],
                0,
                None,
                None,
                ["code", "quantity"],
                ctx,
                session=self.session,
            )
            for row in rows:
                if row["quantity"]:
                    out[f"{ours}/{row['code']}"] = int(row["quantity"])
        return out

    def moves(self) -> list[dict[str, Any]]:
        return self.call(
            "model.stock.move.search_read",
            [("edgetally_id", "!=", None)],
            0,
            None,
            [("id", "ASC")],
            [
                "edgetally_id",
                "quantity",
                "state",
                "cost_price",
                "unit_price",
                "lot.number",
                "product.code",
                "from_location.code",
                "to_location.code",
            ],
        )
