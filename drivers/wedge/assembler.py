"""Key events -> scans, no I/O: ends on the suffix key or a gap, names every fault."""

from __future__ import annotations

from typing import Literal

from evdev import InputEvent, ecodes

from drivers.framing import Scan, finish
from drivers.keymap import KeyDecoder
from drivers.wedge.settings import WedgeSettings

_TERMINATORS = {
    "enter": (ecodes.KEY_ENTER, ecodes.KEY_KPENTER),
    "tab": (ecodes.KEY_TAB,),
    "none": (),
}


class ScanAssembler:
    """One device's key events -> finished scans: terminator, timeout, faults."""

    def __init__(self, decoder: KeyDecoder, settings: WedgeSettings) -> None:
        self.decoder = decoder
        self.settings = settings
        self._prefix = (settings.prefix or "").encode("utf-8")
        self._terminators = _TERMINATORS[settings.suffix]
        self._timeout_us = settings.inter_key_timeout_ms * 1000
        # Keep what finish() may strip (prefix, AIM id) beyond max_length; count the rest.
        self._cap = settings.max_length + len(self._prefix) + 3
        self._buf = bytearray()
        self._dropped = 0
        self._no_char: list[str] = []
        self._lost = False
        self._syncing = False
        self._last_us: int | None = None

    @property
    def pending(self) -> bool:
        """Whether a scan has begun (a timeout would end it)."""
        return bool(self._buf or self._dropped or self._no_char or self._lost)

    def feed(self, ev: InputEvent) -> list[Scan]:
        """One evdev event; the scans it finished (a gap before it, or its suffix)."""
        if ev.type == ecodes.EV_SYN:
            if ev.code == ecodes.SYN_DROPPED:
                # The kernel's buffer overflowed: events up to the next SYN_REPORT
                # are incomplete and the key state is unknown.
                self._lost = self._syncing = True
            elif ev.code == ecodes.SYN_REPORT and self._syncing:
                self._syncing = False
                self.decoder.reset()
            return []
        if ev.type != ecodes.EV_KEY or self._syncing:
            return []
        out = []
        now_us = ev.sec * 1_000_000 + ev.usec
        if (
            ev.value == 1
            and self.pending
            and self._last_us is not None
            and now_us - self._last_us > self._timeout_us
        ):
            out.append(self._finish("timeout"))  # read late: the gap still ends the scan
        text = self.decoder.key(ev.code, ev.value)
        if ev.value != 1:
            return out
        self._last_us = now_us
        if ev.code in self._terminators:
            out.append(self._finish("suffix"))
        elif text is None:
            self._no_char.append(key_name(ev.code))
        elif text:
            self._append(text.encode("utf-8"))
        return out

    def _append(self, data: bytes) -> None:
        room = self._cap - len(self._buf)
        self._buf += data[:room]
        self._dropped += max(0, len(data) - room)

    def expire(self) -> Scan | None:
        """No key for inter_key_timeout_ms: the scan so far, if any."""
        return self._finish("timeout") if self.pending else None

    def gone(self) -> Scan | None:
        """The device went away: the scan so far, if any, is a bad read."""
        return self._finish("gone") if self.pending else None

    def _finish(self, ended: Literal["suffix", "timeout", "gone"]) -> Scan:
        scan = finish(
            bytes(self._buf),
            prefix=self._prefix,
            aim=self.settings.aim,
            max_length=self.settings.max_length,
            dropped=self._dropped,
        )
        faults = [scan.fault] if scan.fault else []
        if self._no_char:
            shown = ", ".join(self._no_char[:5]) + (", …" if len(self._no_char) > 5 else "")
            faults.append(
                f"{len(self._no_char)} key(s) with no character in layout "
                f"{self.decoder.layout.name!r}: {shown}"
            )
        if self._lost:
            faults.append("the kernel dropped key events (SYN_DROPPED): scan incomplete")
        if ended == "timeout" and self.settings.suffix != "none":
            faults.append(
                f"cut short: no {self.settings.suffix} key within "
                f"{self.settings.inter_key_timeout_ms} ms"
            )
        elif ended == "gone":
            faults.append("cut short: the device went away mid-scan")
        self._buf = bytearray()
        self._dropped = 0
        self._no_char = []
        self._lost = False
        return Scan(scan.data, scan.symbology, "; ".join(faults) or None)


def key_name(code: int) -> str:
    """KEY_F5 for 63: what a person can look up (evdev lists aliases for some codes)."""
    name = ecodes.KEY.get(code)
    if isinstance(name, list | tuple):
        return str(name[0])
    return str(name) if name else f"key {code}"
