"""Bytes in, scans out, no I/O: ``LineFramer`` cuts lines, ``garbage`` spots line noise.

Terminators, as decided here:

- ``cr``: a scan ends at CR. An LF right after that CR belongs to the
  terminator, so a scanner that sends CR LF works too (no empty scans).
- ``lf``: a scan ends at LF; one CR right before it belongs to the terminator.
- ``crlf``: a scan ends at CR LF, also when the pair is split across reads. A
  lone CR or LF is data, so a scanner set to something else shows up as a bad
  read naming the stray control byte instead of reads silently glued together.
- ``none``: a scan ends after ``frame_timeout_ms`` of silence.

A terminator with nothing before it (an empty line, a stray CR LF) carries no
data and is not a scan; the framer counts these in ``blank_lines``. A line
that stays unterminated for ``frame_timeout_ms`` is flushed as a bad read ("cut
short"), and so is a partial line when the port goes away: its bytes are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drivers.serial_scanner.settings import Terminator


@dataclass(frozen=True, slots=True)
class Frame:
    """A line as it came off the wire, before prefix/suffix/AIM handling."""

    data: bytes
    dropped: int = 0  # bytes past the kept limit, discarded to bound memory
    cut: str | None = None  # why the line ended without its terminator


class LineFramer:
    """Cuts a byte stream into scans by terminator; memory stays bounded by ``keep``."""

    def __init__(self, terminator: Terminator, keep: int) -> None:
        self.terminator = terminator
        self.keep = keep
        self.blank_lines = 0
        self._buf = bytearray()
        self._dropped = 0
        self._last = -1  # the last byte of the current line, kept or dropped
        self._skip_lf = False  # cr: an LF right after a terminating CR is part of it

    @property
    def pending(self) -> bool:
        return bool(self._buf) or self._dropped > 0

    def feed(self, chunk: bytes) -> list[Frame]:
        if self.terminator == "none":
            self._add(chunk)
            return []
        out: list[Frame] = []
        pos = 0
        if self.terminator == "cr":
            if self._skip_lf and chunk[:1] == b"\n":
                pos = 1
            if chunk:
                self._skip_lf = False
            while (end := chunk.find(b"\r", pos)) >= 0:
                self._add(chunk[pos:end])
                self._end(out, trim_cr=False)
                pos = end + 1
                if chunk[pos : pos + 1] == b"\n":
                    pos += 1
                elif pos == len(chunk):
                    self._skip_lf = True
        else:
            need_cr = self.terminator == "crlf"
            while (end := chunk.find(b"\n", pos)) >= 0:
                self._add(chunk[pos:end])
                pos = end + 1
                if self._last == 0x0D:
                    self._end(out, trim_cr=True)
                elif need_cr:
                    self._add(b"\n")  # a lone LF is data here
                else:
                    self._end(out, trim_cr=False)
        self._add(chunk[pos:])
        return out

    def flush(self, why: str) -> Frame | None:
        """End the current line without its terminator (silence, the port went away)."""
        if not self.pending:
            return None
        frame = Frame(bytes(self._buf), self._dropped, why if self.terminator != "none" else None)
        self._reset()
        return frame

    def _add(self, data: bytes) -> None:
        if not data:
            return
        room = self.keep - len(self._buf)
        if room > 0:
            self._buf += data[:room]
        self._dropped += max(0, len(data) - max(room, 0))
        self._last = data[-1]

    def _end(self, out: list[Frame], trim_cr: bool) -> None:
        dropped = self._dropped
        if trim_cr:  # the CR belongs to the terminator, wherever it ended up
            if dropped:
                dropped -= 1
            else:
                del self._buf[-1:]
        if self._buf or dropped:
            out.append(Frame(bytes(self._buf), dropped))
        else:
            self.blank_lines += 1
        self._reset()

    def _reset(self) -> None:
        self._buf.clear()
        self._dropped = 0
        self._last = -1


# Control bytes allowed inside a scan: ISO/IEC 15434 envelopes (MaxiCode, Data
# Matrix on shipping labels) use EOT, FS, GS and RS; GS1 codes use GS as FNC1.
_CONTROL_RE = re.compile(rb"[\x00-\x03\x05-\x1b\x1f\x7f]|\xc2[\x80-\x9f]")


def garbage(data: bytes) -> str | None:
    """Why ``data`` is not a scanner's text (line noise, a wrong baud rate), or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"garbage on the line: byte 0x{data[exc.start]:02x} at offset {exc.start} is not "
            "UTF-8 text (wrong baud rate, parity or bytesize?)"
        )
    if m := _CONTROL_RE.search(data):
        code = m.group()[-1]
        return f"garbage on the line: control byte 0x{code:02x} at offset {m.start()}"
    return None
