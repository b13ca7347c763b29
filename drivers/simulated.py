"""A scripted barcode scanner: replays JSON lines through the real driver interface.

Each script line is ``{"device": "...", "data": "...", "delay": 0.2}``:
``delay`` seconds before the read (scaled by ``speed``), ``data`` as text
(JSON escapes such as \\u001d for GS are kept byte for byte), or ``data_hex``
for binary. ``device`` is optional and defaults to the driver's own id.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agent.errors import DriverError
from agent.model import Feedback, Read, dumps
from drivers.base import Driver

MAX_DELAY_S = 86400


@dataclass(frozen=True)
class SimulatedSettings:
    script: Path = field(metadata={"help": "JSON lines file of reads to replay"})
    speed: float = field(
        default=1.0, metadata={"help": "delay divisor; 0 replays as fast as possible", "minimum": 0}
    )
    repeat: bool = field(default=False, metadata={"help": "start again at the end, forever"})
    ack_log: Path | None = field(
        default=None, metadata={"help": "append each feedback as a JSON line (tests, audits)"}
    )


@dataclass(frozen=True, slots=True)
class ScriptLine:
    device: str | None
    data: bytes
    delay: float


def parse_script(text: str, name: str) -> list[ScriptLine]:
    """Parse a script; errors name the file and line."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{name}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DriverError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise DriverError(f"{where}: expected a JSON object")
        extra = set(obj) - {"device", "data", "data_hex", "delay"}
        if extra:
            raise DriverError(f"{where}: unknown field {sorted(extra)[0]!r}")
        if ("data" in obj) == ("data_hex" in obj):
            raise DriverError(f"{where}: expected exactly one of 'data' or 'data_hex'")
        if "data" in obj:
            if not isinstance(obj["data"], str):
                raise DriverError(f"{where}: 'data' must be a string")
            try:
                # \udcXX stands for the raw byte XX (Python's surrogateescape)
                data = obj["data"].encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as exc:
                raise DriverError(
                    f"{where}: 'data' is not valid Unicode text; use 'data_hex' for binary"
                ) from exc
        else:
            try:
                data = bytes.fromhex(obj["data_hex"])
            except (TypeError, ValueError) as exc:
                raise DriverError(f"{where}: 'data_hex' must be hex digits") from exc
        delay = obj.get("delay", 0)
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not 0 <= delay <= MAX_DELAY_S  # also refuses NaN and huge integers
        ):
            raise DriverError(
                f"{where}: 'delay' must be a number of seconds >= 0 and <= {MAX_DELAY_S}"
            )
        device = obj.get("device")
        if device is not None and (not isinstance(device, str) or not device):
            raise DriverError(f"{where}: 'device' must be a non-empty string")
        out.append(ScriptLine(device, data, float(delay)))
    return out


def load_script(path: Path) -> list[ScriptLine]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise DriverError(f"cannot read script {path}: {reason}") from exc
    return parse_script(text, str(path))


class SimulatedScanner(Driver):
    Settings = SimulatedSettings

    def __init__(self, device_id: str, settings: SimulatedSettings, reads: Any) -> None:
        super().__init__(device_id, settings, reads)
        self.settings: SimulatedSettings = settings
        self.lines: list[ScriptLine] = []
        self.given: deque[Feedback] = deque(maxlen=256)  # the latest, for tests; bounded memory
        self._ack: IO[str] | None = None

    @classmethod
    def preflight(cls, settings: SimulatedSettings) -> None:
        load_script(settings.script)

    async def open(self) -> None:
        try:
            self.lines = await asyncio.to_thread(load_script, self.settings.script)
        except DriverError as exc:
            raise DriverError(f"device {self.device_id}: {exc}") from exc
        self.present = True
        if self.settings.ack_log is not None:
            self._ack = open(self.settings.ack_log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    async def close(self) -> None:
        if self._ack is not None:
            self._ack.close()
            self._ack = None

    async def reads(self) -> AsyncIterator[Read]:
        speed = self.settings.speed
        while True:
            for line in self.lines:
                if line.delay and speed:
                    await asyncio.sleep(line.delay / speed)
                if self.state != "open":
                    return
                yield self.read_factory.make(line.device or self.device_id, line.data)
            if not self.settings.repeat or not self.lines:
                return

    async def feedback(self, feedback: Feedback) -> None:
        self.given.append(feedback)
        if self._ack is not None:
            # Line-buffered: each line reaches the kernel at once, so it survives a kill -9.
            self._ack.write(
                dumps(
                    {"read_id": feedback.read_id, "kind": feedback.kind, "reason": feedback.reason}
                )
                + "\n"
            )
