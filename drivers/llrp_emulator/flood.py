"""Flood mode, for benchmarks: pre-encoded RO_ACCESS_REPORTs written as fast as the socket takes them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from drivers import llrp_frames as f
from drivers.llrp_emulator.scenario import Flood, Scenario, sgtin96

if TYPE_CHECKING:
    from drivers.llrp_emulator.session import RoSpecRun, Session


async def write_flood(session: Session, run: RoSpecRun) -> None:
    """Write pre-encoded reports until the ROSpec stops, the total is sent, or the client goes."""
    flood = session.scenario.flood
    assert flood is not None
    blob, per_write = flood_blob(session.scenario, flood, run.spec.rospec_id, session.epoch_us)
    frame_len = len(blob) // flood.reports_per_write
    data = bytearray(blob)
    sent = 0
    while run.state == f.ROSPEC_ACTIVE and not session.writer.is_closing() and not session.hung:
        if flood.total_reads is not None and sent >= flood.total_reads:
            # The benchmark's run is over: stop as a Duration trigger would.
            run.state = f.ROSPEC_INACTIVE
            return
        for i in range(flood.reports_per_write):
            f.HEADER.pack_into(
                data,
                i * frame_len,
                (f.VERSION << 10) | f.RO_ACCESS_REPORT,
                frame_len,
                session.reader_id(),
            )
        out = data
        if flood.total_reads is not None and sent + per_write > flood.total_reads:
            whole = -(-(flood.total_reads - sent) // flood.tags_per_report)
            out = data[: whole * frame_len]
        session.writer.write(out)
        sent += (len(out) // frame_len) * flood.tags_per_report
        session.record.reports_sent += len(out) // frame_len
        session.record.tags_reported += (len(out) // frame_len) * flood.tags_per_report
        await session.writer.drain()
        await asyncio.sleep(0)  # let the read loop see KEEPALIVE_ACK, STOP_ROSPEC…


def flood_blob(
    scenario: Scenario, flood: Flood, rospec_id: int, epoch_us: int
) -> tuple[bytes, int]:
    """``reports_per_write`` RO_ACCESS_REPORT frames of ``tags_per_report`` tags, encoded once."""
    epcs = [e for g in scenario.tags for e in g.epcs] or [
        sgtin96("00614141123452", i + 1, 7) for i in range(min(flood.tags, 10_000))
    ]
    epcs = (epcs * (flood.tags // len(epcs) + 1))[: flood.tags]
    ids = [a.id for a in scenario.antennas]
    frames = []
    n = 0
    for _ in range(flood.reports_per_write):
        tags = []
        for _ in range(flood.tags_per_report):
            epc = epcs[n % len(epcs)]
            tags.append(
                f.TagReportData(
                    epc,
                    epc96=len(epc) == 12,
                    rospec_id=rospec_id,
                    antenna_id=ids[n % len(ids)],
                    peak_rssi=-50 - n % 20,
                    first_seen=epoch_us + n,
                    last_seen=epoch_us + n,
                    tag_seen_count=1,
                )
            )
            n += 1
        frames.append(f.ROAccessReport(0, tuple(tags)).encode())
    if len({len(fr) for fr in frames}) != 1:
        raise ValueError("flood frames differ in size: use EPCs of one length")
    return b"".join(frames), flood.reports_per_write * flood.tags_per_report
