"""A throwaway mosquitto MQTT broker on a free loopback port.

For the demo's mqtt sink, the tests and bench.outage: Debian's ``mosquitto``
package, started with a config of our own (anonymous, no persistence, loopback
only), stopped and started again on the same port to play an outage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from agent.demo.ports import free_port
from agent.errors import ConfigError

SEARCH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"]
)


def mosquitto_binary() -> str | None:
    """Where ``mosquitto`` is (Debian installs it in /usr/sbin, off a user's PATH)."""
    return shutil.which("mosquitto", path=SEARCH)


class MosquittoBroker:
    """``start()`` / ``stop()`` (or ``with``); ``start()`` again keeps the port."""

    def __init__(
        self, port: int | None = None, ready_timeout_s: float = 10.0, anonymous: bool = True
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise ConfigError(
                "mosquitto",
                "",
                "the mosquitto MQTT broker is not installed (Debian: `apt-get install mosquitto`, "
                "or `sh scripts/system-deps --test`)",
            )
        self.binary = binary
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._ready_timeout_s = ready_timeout_s
        self._anonymous = anonymous  # False: every login is refused (no users are set up)
        self._dir = Path(tempfile.mkdtemp(prefix="edgetally-mqtt-"))
        self.conf = self._dir / "mosquitto.conf"
        self.log = self._dir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MosquittoBroker:
        self.conf.write_text(
            f"listener {self.port} {self.host}\n"
            f"allow_anonymous {'true' if self._anonymous else 'false'}\n"
            "persistence false\n"
            # a subscriber that falls behind a backlog's drain is queued for, not dropped
            "max_queued_messages 0\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\n"
        )
        self.conf.chmod(0o644)
        self._dir.chmod(0o755)  # as root, mosquitto reads its config as user mosquitto
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._ready_timeout_s
        while True:  # readiness, not logic: poll the port until the broker listens
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self._proc.returncode}: {self.log.read_text()[-500:]}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mosquitto did not listen on port {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
