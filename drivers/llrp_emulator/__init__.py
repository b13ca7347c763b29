"""An LLRP reader emulator: a TCP server that speaks LLRP 1.0.1 for real, driven by a scenario.

sllurp (or any LLRP client) connects to it unmodified. It answers the
reader-control messages with correct LLRPStatus and message ids, keeps ROSpec
state (disabled, inactive, active), sends KEEPALIVEs per the client's
KeepaliveSpec, and streams RO_ACCESS_REPORTs while a ROSpec is active. The
frames come from ``drivers.llrp_frames``, a codec written independently of
sllurp's so that the two check each other.

What is read comes from a scenario (TOML or JSON): antennas in groups
("outside", "inside", shelves) placed along one axis, tag groups that pass a
portal, park near it, sit on a shelf or leave, and faults. ``timeline()`` is
the pure model: deterministic for a seed and independent of how the time is
cut into windows, so tests check it without sockets.

Quirks (``quirks = [...]`` in a scenario, ``edgetally sim llrp --quirks``):
ways real readers answer unlike sllurp expects, each one seen in the field
(``scenario.QUIRKS``; the README's "Reader compatibility" table says what the
LLRP driver does about each). ``faults.unsupported`` answers any named request
with ERROR_MESSAGE (M_UnsupportedMessage).

Clocks: tag motion runs on scenario time, which starts when the first ROSpec
starts on a connection and runs ``speed`` times faster than the wall clock;
faults count scenario seconds from the moment the client connected.

Modules: ``scenario`` (the model and its loading), ``tagmodel`` (``timeline``),
``session`` (one connection's reader state machine), ``flood`` (benchmark
mode) and ``server`` (``LlrpEmulator``, ``serve``).
"""

from __future__ import annotations

from drivers.llrp_emulator.scenario import (
    DEFAULT_X,
    QUIRKS,
    Antenna,
    Faults,
    Flood,
    Malformed,
    Motion,
    Quirk,
    Scenario,
    TagGroup,
    bundled_scenario,
    load_scenario,
    parse_quirks,
    scenario_from_dict,
    sgtin96,
)
from drivers.llrp_emulator.server import (
    LlrpEmulator,
    serve,
)
from drivers.llrp_emulator.session import (
    MAX_TAGS_PER_REPORT,
    READER_MAC,
    ConnectionRecord,
    tid_of,
)
from drivers.llrp_emulator.tagmodel import (
    Observation,
    timeline,
)

__all__ = [
    "DEFAULT_X",
    "MAX_TAGS_PER_REPORT",
    "QUIRKS",
    "READER_MAC",
    "Antenna",
    "ConnectionRecord",
    "Faults",
    "Flood",
    "LlrpEmulator",
    "Malformed",
    "Motion",
    "Observation",
    "Quirk",
    "Scenario",
    "TagGroup",
    "bundled_scenario",
    "load_scenario",
    "parse_quirks",
    "scenario_from_dict",
    "serve",
    "sgtin96",
    "tid_of",
    "timeline",
]
