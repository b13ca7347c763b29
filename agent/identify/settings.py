"""How a site's labels are read: the ``[identify]`` settings.

A frozen dataclass with help text like agent/config's settings, so the
config loader can fill it from TOML. Every check that can fail at start-up
fails here, in ``__post_init__``, with a ValueError naming the bad value: a
pattern that does not compile must stop the daemon, not every scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

# Every command a card can carry (agent/identify/commands.py reads them).
COMMAND_NAMES = ("PAIR", "OP", "QTY", "PO", "ORDER", "DISP", "END", "CANCEL")
MAX_PREFIX = 16


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class IdentifySettings:
    location_prefix: str = field(
        default="LOC:",
        metadata=_help(
            "text a location label starts with; what follows it is the location code "
            "(LOC:A-01-02 is location A-01-02)"
        ),
    )
    gln_is_location: bool = field(
        default=True,
        metadata=_help(
            "a GS1 location label (AI 414, with AI 254 as its extension) is a location; "
            "when false such a label is an unknown code"
        ),
    )
    sku_patterns: list[str] = field(
        default_factory=list,
        metadata=_help(
            "regular expressions (whole-code match) for house SKUs; tried after commands "
            "and location labels and before the GS1 guess for codes without an AIM "
            "symbology id, so a pattern that matches a GTIN's digits takes it"
        ),
    )
    missing_separator: Literal["reject", "accept"] = field(
        default="reject",
        metadata=_help(
            "a GS1 code whose lot or serial seems to hold further AIs (the scanner lost "
            "a GS separator): reject it as unknown, or accept it with a warning"
        ),
    )

    def __post_init__(self) -> None:
        prefix = self.location_prefix
        if not prefix or len(prefix) > MAX_PREFIX or not prefix.isprintable():
            raise ValueError(
                f"location_prefix: 1..{MAX_PREFIX} printable characters, got {prefix!r}"
            )
        for name in COMMAND_NAMES:
            if prefix.startswith(f"{name}:") or f"{name}:".startswith(prefix) or prefix == name:
                raise ValueError(
                    f"location_prefix: {prefix!r} would collide with the {name} command"
                )
        compile_patterns(self.sku_patterns)


def compile_patterns(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    """Each SKU pattern compiled, or a ValueError that names the one that is wrong."""
    out = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise ValueError(f"sku_patterns[{i}]: expected a string, got {pattern!r}")
        try:
            out.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(
                f"sku_patterns[{i}]: {pattern!r} is not a valid regular expression ({exc})"
            ) from exc
    return tuple(out)


__all__ = ["COMMAND_NAMES", "IdentifySettings", "compile_patterns"]
