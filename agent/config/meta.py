"""What a setting's field carries: the Size type and the help/limits metadata."""

from __future__ import annotations

from typing import Any


class Size(int):
    """A byte count written as 536870912, "512MB" or "512MiB"."""


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}
