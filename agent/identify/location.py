"""Location labels: the site's own (``LOC:A-01-02``) and GS1's (AI 414 + 254).

A GS1 location is written as the GLN, or ``<GLN>.<extension>`` with AI 254:
the GLN is always 13 digits, so the first dot after it is unambiguous even
when the extension holds dots itself (the shape of an SGLN's pure identity).
"""

from __future__ import annotations

from agent.identify.commands import argument_problem
from agent.model import Identity


def parse_location(text: str, prefix: str) -> Identity | None:
    """The location a ``prefix`` label names, an unknown saying what is wrong, or None."""
    if not text.startswith(prefix):
        return None
    code = text[len(prefix) :]
    if not code:
        return Identity(
            kind="unknown", raw=text, error=f"location label: needs a code after {prefix!r}"
        )
    problem = argument_problem(code)
    if problem is not None:
        return Identity(kind="unknown", raw=text, error=f"location label: {problem}")
    return Identity(kind="location", raw=text, location=code)


def gln_location(gln: str, extension: str | None) -> str:
    return f"{gln}.{extension}" if extension else gln


__all__ = ["gln_location", "parse_location"]
