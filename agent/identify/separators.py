"""The guard against biip's silent mis-splits when a scanner loses a GS separator.

A variable-length AI (10 lot, 21 serial, ...) runs to the next GS (FNC1) or the
end of the data. A scanner or wedge that drops the GS turns
``10ABC123<GS>21XYZ`` into lot ``ABC12321XYZ`` with no serial, and biip, which
cannot know, reports exactly that. Nothing in the bytes proves it, so this is a
heuristic, tuned to flag real losses and leave ordinary lots alone:

1. Structure (certain): a variable-length element that is not the last one must
   end at a GS. biip cuts a value at its maximum length (20 for a lot) and reads
   on; if no GS follows there, the separator was lost.
2. Hidden elements: for each variable-length value, every tail ``value[i:]``
   (i >= 1) that biip parses completely as element strings, none of whose AIs
   is already in the message (GS1 allows an AI once per message, so a lot
   holding "10" is never a second lot), is a candidate. It is flagged when

   - strong: it holds a fixed-length element biip validated: a date
     (AI 11, 12, 13, 15, 16, 17: a real calendar date) or a key with a check
     digit (00 SSCC, 01/02 GTIN, 41x GLN). About 1 in 500 purely random 12-14
     digit numeric serials end in something that passes as a date AI; or
   - weak: it starts with AI 10 or 21 (lot and serial, the variable-length
     pair that follow each other on real labels) and its value starts with a
     letter (``...21XYZ``). Digit runs such as "2105" or "0310" are everywhere in
     real lots, so a tail like ``2105A`` is not enough. And not inside a serial
     (AI 21) that fills its maximum length (20, GS1's format ``X..20``):
     serials are issued at a fixed width, randomised ones (pharmaceutical
     packs) mostly at the full 20, and "10" + a letter turns up in about 1 in
     100 random 20-character serials. The cost: a serial and a lot joined by a
     lost GS into exactly 20 characters (their lengths add up to 18) is no
     longer caught; nothing in the bytes tells it from a full-length serial.
     Lots are not issued at a fixed width, so a full-length lot still counts.

   The tail must also be what GS1 allows there: every character of a 10 or 21
   value in GS1's character set 82 (biip's pattern for the AI), each date AI
   (11, 13, 15, 17...) a real calendar date, each key (00, 01, 02, 41x) with its
   check digit right.

   Only when the data holds no GS at all: a scanner that sent one GS sends
   them all (wedges lose every FNC1, through the keyboard map, or none), so
   with a GS present only rule 1 applies.

Measures (310n...) and counts (30, 37) hidden in a value are not flagged: their
digits have no check, so they would flag every lot that ends in digits.

Measured by ``python -m bench.guard`` (random codes that lost nothing, and
the same kinds of code with their GS dropped): GTIN + 20-character random
alphanumeric serial: 0.94% flagged before the full-length rule, under 0.1%
after (what remains is a valid date or check digit by chance); 12-16 digit
numeric serials: 0.2-0.4% (a date AI inside). Sites with such serials and
scanners that keep GS can set ``missing_separator = "accept"`` and keep the
warning as evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

import biip
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message

GS = "\x1d"
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17"})
_PARTNERS = ("10", "21")
# The first two digits of every AI that can be evidence: a hidden tail must open
# with one (it may go on with any AI after that).
_OPENINGS = frozenset({"00", "01", "02", "41", *_DATE_AIS, *_PARTNERS})


def lost_separators(
    body: str, elements: Sequence[GS1ElementString], config: biip.ParseConfig
) -> tuple[str, ...]:
    """Warnings for every place in ``body`` (an element string) where a GS seems lost."""
    warnings: list[str] = []
    present = {e.ai.ai for e in elements}
    pos = 0
    while pos < len(body) and body[pos].isspace():  # biip skips these; count, never strip
        pos += 1
    for index, element in enumerate(elements):
        pos += len(element.ai.ai) + len(element.value)
        if not element.ai.separator_required:
            while pos < len(body) and body[pos] == GS:
                pos += 1
            continue
        last = index == len(elements) - 1
        if not last and (pos >= len(body) or body[pos] != GS):
            warnings.append(
                f"possible lost GS separator: AI {element.ai.ai} value {element.value!r} "
                f"is followed by AI {elements[index + 1].ai.ai} without a GS"
            )
        full = element.ai.ai == "21" and len(element.value) >= _max_length(element.ai.format)
        hidden = None if GS in body else _hidden(element.value, present, config, full)
        if hidden is not None:
            at, found = hidden
            warnings.append(
                f"possible lost GS separator: AI {element.ai.ai} value {element.value!r} "
                f"may contain {found} from position {at}"
            )
        while pos < len(body) and body[pos] == GS:
            pos += 1
    return tuple(warnings)


def _hidden(
    value: str, present: set[str], config: biip.ParseConfig, full: bool = False
) -> tuple[int, str] | None:
    """The first tail of ``value`` that reads as further element strings, or None.

    ``full``: the value fills its AI's maximum length, so weak evidence is not enough.
    """
    for i in range(1, len(value) - 2):
        tail = value[i:]
        if tail[:2] not in _OPENINGS:  # cheap: most tails cannot be evidence at all
            continue
        try:
            inner = GS1Message.parse(tail, config=config).element_strings
        # biip's complaints about what is not element strings, and ValueError /
        # IndexError it lets through on odd data: not a candidate, nothing more.
        except (biip.ParseError, ValueError, IndexError):
            continue
        ais = [e.ai.ai for e in inner]
        if present.intersection(ais) or len(set(ais)) != len(ais):
            continue
        if any(_validated(e) for e in inner) or (
            not full and ais[0] in _PARTNERS and inner[0].value[:1].isalpha()
        ):
            shown = "".join(f"AI {e.ai.ai} {e.value!r} " for e in inner)
            return i, shown.rstrip()
    return None


@cache
def _max_length(fmt: str) -> int:
    """The longest value an AI takes, from its GS1 format ("N2+X..20" -> 20, "N2+N6" -> 6)."""
    last = fmt.split("+")[-1]
    match = re.search(r"(\d+)$", last)
    return int(match.group(1)) if match else 0


def _validated(element: GS1ElementString) -> bool:
    """A fixed-length element whose content biip checked: chance rarely makes one."""
    ai = element.ai.ai
    if ai in _DATE_AIS:
        return element.date is not None
    if ai == "00":
        return element.sscc is not None
    if ai in ("01", "02"):
        return element.gtin is not None
    if ai.startswith("41"):
        return element.gln is not None
    return False


__all__ = ["lost_separators"]
