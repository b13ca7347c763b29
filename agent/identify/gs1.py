"""GS1 through biip: bare GTINs and SSCCs, element strings, HRI and Digital Link.

Pure: text in, Identity out. The deeper checks (biip's silent mis-splits of
variable-length AIs, measures, GLN locations) come with the rules engine.
"""

from __future__ import annotations

from typing import Any

import biip
from biip.gs1_messages import GS1Message

from agent.model import Identity

_GTIN_LENGTHS = (8, 12, 13, 14)
_CONFIG = biip.ParseConfig(separator_chars=["\x1d"])


def identify_gs1(text: str) -> Identity | None:
    """The GS1 identity in ``text``, or None when it is not GS1 at all."""
    if text.startswith("("):
        try:
            message = GS1Message.parse_hri(text, config=_CONFIG)
        except biip.ParseError:
            return None
        return _from_elements(text, message.element_strings)
    result = biip.parse(text, config=_CONFIG)
    if text.isdigit() and len(text) in _GTIN_LENGTHS:
        if result.gtin is not None:
            return Identity(kind="gtin", raw=text, gtin=result.gtin.as_gtin_14())
        return Identity(kind="unknown", raw=text, error=result.gtin_error)
    if text.isdigit() and len(text) == 18:
        if result.sscc is not None:
            return Identity(kind="sscc", raw=text, sscc=result.sscc.value)
        return Identity(kind="unknown", raw=text, error=result.sscc_error)
    if result.gs1_digital_link_uri is not None:
        return _from_elements(text, result.gs1_digital_link_uri.element_strings)
    if result.gs1_message is not None:
        return _from_elements(text, result.gs1_message.element_strings)
    return None


def _from_elements(text: str, elements: Any) -> Identity | None:
    found: dict[str, Any] = {}
    for element in elements:
        ai = element.ai.ai
        if ai in ("01", "02") and element.gtin is not None:
            found["gtin"] = element.gtin.as_gtin_14()
        elif ai == "00" and element.sscc is not None:
            found["sscc"] = element.sscc.value
        elif ai == "10":
            found["lot"] = element.value
        elif ai == "21":
            found["serial"] = element.value
        elif ai in ("17", "15", "16") and element.date is not None:
            found.setdefault("expiry", element.date.isoformat())
        elif ai in ("30", "37"):
            found["qty"] = int(element.value)
    if found.get("qty") == 0:
        return Identity(kind="unknown", raw=text, error=f"GS1: a count of 0 (AI 30/37) in {text!r}")
    if "gtin" in found:
        return Identity(kind="gtin", raw=text, **found)
    if "sscc" in found:
        return Identity(kind="sscc", raw=text, sscc=found["sscc"])
    return None
