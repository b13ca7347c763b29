"""Raw read data -> Identity. Pure functions, no I/O (DESIGN §1)."""

from __future__ import annotations

import biip

from agent.identify.gs1 import identify_gs1
from agent.model import Identity, Read

# Command codes printed on a station's card; the full set comes with the rules engine.
COMMANDS = ("PO", "QTY", "ORDER", "OP", "PAIR", "END", "CANCEL")
MAX_DATA = 4096


def identify(read: Read) -> Identity:
    """What a read means. Never raises: anything unreadable is an ``unknown`` with a reason."""
    data = read.data
    if read.fault is not None:
        return Identity(kind="unknown", raw=_shown(data), error=read.fault)
    if not data:
        return Identity(kind="unknown", raw="", error="empty read")
    if len(data) > MAX_DATA:
        return Identity(
            kind="unknown", raw=data[:64].hex(), error=f"read longer than {MAX_DATA} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Identity(kind="unknown", raw=data.hex(), error="not UTF-8 text")
    command = _command(text)
    if command is not None:
        return command
    if any(ch < " " and ch != "\x1d" for ch in text):
        return Identity(kind="unknown", raw=text, error="control characters in the data")
    try:
        gs1 = identify_gs1(text)
    # biip's own complaints about odd input, and the IndexError it raises on a bare
    # "]" (it reads a symbology identifier past the end): an unknown, never a crash.
    except (biip.ParseError, ValueError, IndexError) as exc:
        return Identity(kind="unknown", raw=text, error=f"GS1: {exc}")
    if gs1 is not None:
        return gs1
    return Identity(kind="unknown", raw=text, error="not a GS1 code or a command")


def _shown(data: bytes) -> str:
    """Text as is when it is text, else hex: kept as evidence, never cleaned."""
    try:
        return data[:MAX_DATA].decode("utf-8")
    except UnicodeDecodeError:
        return data[:MAX_DATA].hex()


def _command(text: str) -> Identity | None:
    name, sep, argument = text.partition(":")
    if name not in COMMANDS:
        return None
    if name in ("END", "CANCEL"):
        return Identity(kind="command", raw=text, command=name) if not sep else None
    if not sep or not argument:
        return Identity(kind="unknown", raw=text, error=f"{name}: needs a value after the colon")
    if name == "QTY":
        if not (argument.isascii() and argument.isdigit()) or not 0 < int(argument) <= 1_000_000:
            return Identity(kind="unknown", raw=text, error="QTY: needs a whole number 1..1000000")
        return Identity(
            kind="command", raw=text, command=name, argument=argument, qty=int(argument)
        )
    return Identity(kind="command", raw=text, command=name, argument=argument)


__all__ = ["identify"]
