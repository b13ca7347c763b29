"""Input reports -> scans: a report's fields by layout, continued reports appended. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.framing import finish, split_aim
from drivers.hidpos.layouts import Layout


@dataclass(frozen=True, slots=True)
class Piece:
    aim: bytes
    data: bytes
    more: bool


class ReportError(ValueError):
    """A report that cannot be a scanned-data report of this layout."""


def parse_report(report: bytes, layout: Layout) -> Piece | None:
    """One input report -> its part of a scan; None for another report id (status, ...)."""
    if not report or report[0] != layout.report_id:
        return None
    if len(report) < layout.size:
        raise ReportError(
            f"report of {len(report)} bytes, the {layout.name} layout needs {layout.size}"
        )
    length = report[layout.length_at]
    if length > layout.data_max:
        raise ReportError(
            f"report says {length} data bytes, the {layout.name} layout holds {layout.data_max}"
        )
    aim = b""
    if layout.aim_at is not None:
        aim = report[layout.aim_at : layout.aim_at + layout.aim_len]
    data = report[layout.data_at : layout.data_at + length]
    return Piece(aim, data, bool(report[layout.more_at] & layout.more_mask))


@dataclass(frozen=True, slots=True)
class Finished:
    data: bytes
    symbology: str | None
    fault: str | None


class Assembler:
    """Appends continued reports into one scan, bounded by ``max_length``."""

    def __init__(self, layout: Layout, *, aim: bool, max_length: int) -> None:
        self.layout = layout
        self.aim = aim
        self.max_length = max_length
        self._aim = b""
        self._parts: list[bytes] = []
        self._kept = 0
        self._dropped = 0
        self._reports = 0

    @property
    def pending(self) -> bool:
        return self._reports > 0

    def feed(self, report: bytes) -> Finished | None:
        """A report in; the finished scan out when its last report has come."""
        try:
            piece = parse_report(report, self.layout)
        except ReportError as exc:
            return self._fault(f"{exc}: {report[:16].hex()}", report)
        if piece is None:
            return None
        if not self._reports:
            self._aim = piece.aim
        self._reports += 1
        room = max(0, self.max_length - self._kept)
        self._parts.append(piece.data[:room])
        self._kept += min(room, len(piece.data))
        self._dropped += max(0, len(piece.data) - room)
        return None if piece.more else self._finish(None)

    def cut_off(self) -> Finished | None:
        """No report came while a scan was flagged 'continued': what there is, as a bad read."""
        if not self.pending:
            return None
        return self._finish(
            f"scan cut off: report {self._reports} said more data follows, none came"
        )

    def _finish(self, fault: str | None) -> Finished:
        data = b"".join(self._parts)
        aim_sym, rest = split_aim(self._aim)
        if self.aim and aim_sym is not None and not rest:
            data = self._aim + data
        scan = finish(data, aim=self.aim, max_length=self.max_length, dropped=self._dropped)
        self._aim, self._parts, self._kept, self._dropped, self._reports = b"", [], 0, 0, 0
        return Finished(scan.data, scan.symbology, fault or scan.fault)

    def _fault(self, reason: str, report: bytes) -> Finished:
        """A malformed report ends any scan in progress: kept as evidence, signalled bad."""
        data = b"".join(self._parts) if self._reports else report
        self._aim, self._parts, self._kept, self._dropped, self._reports = b"", [], 0, 0, 0
        return Finished(data[: self.max_length], None, reason)
