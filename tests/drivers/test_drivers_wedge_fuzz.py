"""The wedge's key-event decoder on arbitrary event streams: scans or bad reads, never a crash.

Whatever a misbehaving device (or a kernel buffer overflow) sends — key codes
outside any layout, values other than 0/1/2, modifiers left held, clocks going
backwards, SYN_DROPPED anywhere — the assembler only ever produces Scans whose
data stays within max_length and whose problems are named in ``fault``.
"""

from __future__ import annotations

from evdev import InputEvent, ecodes
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.keymap import Layout
from drivers.wedge import ScanAssembler, WedgeSettings

LAYOUTS = {name: Layout(name) for name in ("us", "de", "fr", "gb")}
MAX_LENGTH = 64

key_event = st.builds(
    lambda code, value, t: (ecodes.EV_KEY, code, value, t),
    st.one_of(st.integers(0, 0x2FF), st.sampled_from([28, 96, 15, 42, 54, 100, 29, 97, 27, 58])),
    st.sampled_from([0, 1, 1, 1, 2, -1, 3, 255]),
    st.integers(0, 10**7),
)
other_event = st.builds(
    lambda kind, code, value, t: (kind, code, value, t),
    st.sampled_from([ecodes.EV_SYN, ecodes.EV_MSC, ecodes.EV_LED, ecodes.EV_REL, 0x1F]),
    st.sampled_from([ecodes.SYN_REPORT, ecodes.SYN_DROPPED, ecodes.MSC_SCAN, 0, 7]),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 10**7),
)
streams = st.lists(st.one_of(key_event, key_event, key_event, other_event), max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    layout=st.sampled_from(sorted(LAYOUTS)),
    suffix=st.sampled_from(["enter", "tab", "none"]),
    events=streams,
)
def test_arbitrary_event_streams_give_bounded_scans_or_named_faults(
    layout: str, suffix: str, events: list[tuple[int, int, int, int]]
) -> None:
    cfg = WedgeSettings(vid_pid="05e0:1200", layout=layout, suffix=suffix, max_length=MAX_LENGTH)  # type: ignore[arg-type]
    asm = ScanAssembler(LAYOUTS[layout].decoder(), cfg)
    scans = []
    for kind, code, value, t in events:
        scans += asm.feed(InputEvent(t // 1_000_000, t % 1_000_000, kind, code, value))
    for last in (asm.expire(), asm.gone()):
        if last is not None:
            scans.append(last)
    for scan in scans:
        assert isinstance(scan.data, bytes) and len(scan.data) <= MAX_LENGTH
        if not scan.data:
            assert scan.fault, "an empty scan must be a bad read with a reason"
        if scan.fault is not None:
            assert scan.fault.strip(), "a fault must say what was wrong"
    assert not asm.pending  # expire/gone always end what was begun
