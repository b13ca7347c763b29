"""An RO_ACCESS_REPORT's tag entries to Reads, with repeats of one tag on one antenna folded.

A reader without its own accumulation reports every singulation: the same tag
on the same antenna tens or hundreds of times in one report. Each entry made
into a ``Read`` costs an id, an object, a rules step and an outbox row, several
times what decoding it cost. So the entries of one report that name the same
(EPC, antenna) become one counted read, as a reader's own report accumulation
would make them (LLRP's TagSeenCount, FirstSeen/LastSeen, PeakRSSI):

- ``seen_count``: the entries' TagSeenCount summed (an entry without one
  counts 1), so every tag read stays accounted for;
- ``reader_first_seen_us`` / ``reader_last_seen_us``: the earliest first and
  the latest last stamp of the entries;
- ``rssi``: the highest PeakRSSI.

A lone entry stays as it came (its ``seen_count`` may be None). Entries that are
not tags or have no usable EPC are not folded: each is its own Read with a
fault, as in ``llrp_link.tag_reads``. Reads come out in the order of each
(EPC, antenna)'s first entry.

What is lost is only the order of the folded entries inside one report (at
most ``report_timeout_ms``, 250 ms by default); the portal judges time on the
first/last stamps, which the fold keeps.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from agent.model import MAX_INT, Read

# An accumulator per (EPC, antenna): [entries, count, first, last, rssi, seen_count_given]
_ENTRIES, _COUNT, _FIRST, _LAST, _RSSI, _GIVEN = range(6)


def _stamp(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value <= MAX_INT else None


def folded_tag_reads(
    device: str, tags: list[Any], make: Callable[..., Read], offset_us: int | None = None
) -> list[Read]:
    """The Reads of one report's TagReportData entries, one per (EPC, antenna)."""
    acc: dict[tuple[bytes, Any], list[Any]] = {}
    odd: list[tuple[int, Read]] = []  # entries that cannot be folded, with their position
    for tag in tags:
        if not isinstance(tag, dict):
            fault = "tag report that is not a tag"
            odd.append((len(acc), make(device, b"", kind="tag", fault=fault)))
            continue
        epc = tag.get("EPC")
        if type(epc) is not bytes or not epc:
            fault = "tag report with an empty EPC" if epc == b"" else "tag report without an EPC"
            odd.append((len(acc), _one(device, tag, b"", fault, make, offset_us)))
            continue
        count = tag.get("TagSeenCount")
        given = type(count) is int
        n = count if given else 1
        first = tag.get("FirstSeenTimestampUTC")  # _stamp, inline: this runs per entry
        if type(first) is not int or not 0 <= first <= MAX_INT:
            first = None
        last = tag.get("LastSeenTimestampUTC")
        if type(last) is not int or not 0 <= last <= MAX_INT:
            last = None
        rssi = tag.get("PeakRSSI")
        if type(rssi) is not int:
            rssi = None
        antenna = tag.get("AntennaID")
        key = (epc, antenna if type(antenna) is int else None)
        a = acc.get(key)
        if a is None:
            acc[key] = [1, n, first, last, rssi, count if given else None]
            continue
        a[_ENTRIES] += 1
        a[_COUNT] += n
        if first is not None and (a[_FIRST] is None or first < a[_FIRST]):
            a[_FIRST] = first
        if last is not None and (a[_LAST] is None or last > a[_LAST]):
            a[_LAST] = last
        if rssi is not None and (a[_RSSI] is None or rssi > a[_RSSI]):
            a[_RSSI] = rssi
    if odd:
        return _with_odd(device, acc, odd, make, offset_us)
    unhex = binascii.unhexlify
    try:  # positional (make's order): this runs per tag and antenna
        return [
            make(
                device,
                unhex(epc),
                "tag",
                None,  # symbology
                antenna,
                None if a[_RSSI] is None else float(a[_RSSI]),
                a[_COUNT] if a[_ENTRIES] > 1 else a[_GIVEN],  # seen_count
                None,  # fault
                a[_FIRST],
                a[_LAST],
                offset_us,
            )
            for (epc, antenna), a in acc.items()
        ]
    except binascii.Error:  # an EPC that is not hex: each read on its own
        return _with_odd(device, acc, odd, make, offset_us)


def _unhex(epc: bytes) -> tuple[bytes, str | None]:
    try:
        return binascii.unhexlify(epc), None
    except binascii.Error:
        return b"", "tag report with an EPC that is not hex"


def _with_odd(
    device: str,
    acc: dict[tuple[bytes, Any], list[Any]],
    odd: list[tuple[int, Read]],
    make: Callable[..., Read],
    offset_us: int | None,
) -> list[Read]:
    """The folded reads with the entries that could not be folded at their places."""
    reads: list[Read] = []
    at = 0
    for i, ((epc, antenna), a) in enumerate(acc.items()):
        while at < len(odd) and odd[at][0] <= i:
            reads.append(odd[at][1])
            at += 1
        data, bad = _unhex(epc)
        rssi = a[_RSSI]
        reads.append(
            make(
                device,
                data,
                "tag",
                None,  # symbology
                antenna,
                None if rssi is None else float(rssi),
                a[_COUNT] if a[_ENTRIES] > 1 else a[_GIVEN],  # seen_count
                bad,  # fault
                a[_FIRST],
                a[_LAST],
                offset_us,
            )
        )
    reads.extend(r for _, r in odd[at:])
    return reads


def _one(
    device: str,
    tag: dict[str, Any],
    data: bytes,
    fault: str,
    make: Callable[..., Read],
    offset_us: int | None,
) -> Read:
    antenna, rssi, count = tag.get("AntennaID"), tag.get("PeakRSSI"), tag.get("TagSeenCount")
    return make(
        device,
        data,
        kind="tag",
        antenna=antenna if type(antenna) is int else None,
        rssi=float(rssi) if type(rssi) is int else None,
        seen_count=count if type(count) is int else None,
        fault=fault,
        reader_first_seen_us=_stamp(tag.get("FirstSeenTimestampUTC")),
        reader_last_seen_us=_stamp(tag.get("LastSeenTimestampUTC")),
        reader_offset_us=offset_us,
    )


def tag_reads_counted(reads: list[Read]) -> int:
    """How many tag reads (singulations) ``reads`` stand for: what the fold keeps equal."""
    return sum(r.seen_count or 1 for r in reads)
