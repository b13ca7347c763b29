"""Command cards: ``PAIR:<station>``, ``OP:<badge>``, ``QTY:n``, ``PO:<ref>``,
``ORDER:<ref>``, ``DISP:restock|damaged|quarantine``, ``END``, ``CANCEL``.

Names are exact and upper case, as printed on the station's cards. Arguments are
checked here, once, so the rules never see a reference with a control character
or a stray space in it (it would become a different key at the ledger).
"""

from __future__ import annotations

from agent.identify.settings import COMMAND_NAMES
from agent.model import Identity

MAX_ARGUMENT = 64
QTY_MAX = 1_000_000
DISPOSITIONS = ("restock", "damaged", "quarantine")
_BARE = ("END", "CANCEL")


def parse_command(text: str) -> Identity | None:
    """The command ``text`` carries, an unknown saying what was expected, or None."""
    name, sep, argument = text.partition(":")
    if name not in COMMAND_NAMES:
        return None
    if name in _BARE:
        if sep:
            return _bad(text, f"{name}: takes no value, expected exactly {name!r}")
        return Identity(kind="command", raw=text, command=name)
    if not sep or not argument:
        return _bad(text, f"{name}: needs a value after the colon")
    problem = argument_problem(argument)
    if problem is not None:
        return _bad(text, f"{name}: {problem}")
    if name == "QTY":
        # isascii: "³" is a digit to str.isdigit() but not to int().
        if not (argument.isascii() and argument.isdigit()) or not 0 < int(argument) <= QTY_MAX:
            return _bad(text, f"QTY: needs a whole number 1..{QTY_MAX}, got {argument!r}")
        return Identity(
            kind="command", raw=text, command=name, argument=argument, qty=int(argument)
        )
    if name == "DISP" and argument not in DISPOSITIONS:
        return _bad(text, f"DISP: expected one of {', '.join(DISPOSITIONS)}, got {argument!r}")
    return Identity(kind="command", raw=text, command=name, argument=argument)


def argument_problem(value: str, limit: int = MAX_ARGUMENT) -> str | None:
    """Why ``value`` cannot be a station, badge, reference or location code, or None."""
    if len(value) > limit:
        return f"expected at most {limit} characters, got {len(value)}"
    if not value.isprintable():
        return f"expected printable characters, got {value!r}"
    if value[0] == " " or value[-1] == " ":
        return f"expected no leading or trailing space, got {value!r}"
    return None


def _bad(text: str, error: str) -> Identity:
    return Identity(kind="unknown", raw=text, error=error)


__all__ = ["DISPOSITIONS", "MAX_ARGUMENT", "QTY_MAX", "argument_problem", "parse_command"]
