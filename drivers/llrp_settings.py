"""What an LLRP reader is told to do: the ``[[devices]] driver = "llrp"`` table, checked,
and mapped onto sllurp's ``LLRPReaderConfig``.

Flat keys, because the config loader has no nested tables in driver settings.
Checks that need more than one key (``search_mode`` without the Impinj
extensions, a GPO used twice) are in ``check()``, which names the key; the
driver refuses to start on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sllurp.llrp import LLRPReaderConfig

from drivers.llrp_setup import StartTrigger

SearchMode = Literal["reader-selected", "single-target", "dual-target", "single-target-suppression"]
# Impinj Octane LLRP, ImpinjInventorySearchMode: the value sent for each name.
SEARCH_MODES: dict[str, int] = {
    "reader-selected": 0,
    "single-target": 1,
    "dual-target": 2,
    "single-target-suppression": 3,  # "TagFocus"
}
# What every tag report carries: the driver turns these into Read fields and evidence.
TAG_CONTENT = {
    "EnableROSpecID": False,
    "EnableSpecIndex": False,
    "EnableInventoryParameterSpecID": False,
    "EnableAntennaID": True,
    "EnableChannelIndex": False,
    "EnablePeakRSSI": True,
    "EnableFirstSeenTimestamp": True,
    "EnableLastSeenTimestamp": True,
    "EnableTagSeenCount": True,
    "EnableAccessSpecID": False,
}


@dataclass(frozen=True)
class LlrpSettings:
    host: str = field(metadata={"help": "reader host name or IP address"})
    port: int = field(
        default=5084, metadata={"help": "LLRP TCP port", "minimum": 1, "maximum": 65535}
    )
    antennas: list[int] = field(
        default_factory=lambda: [1],
        metadata={"help": "antenna ports to inventory on", "minimum": 1, "maximum": 65535},
    )
    tx_power_dbm: float | None = field(
        default=None,
        metadata={
            "help": "transmit power in dBm, the reader's nearest level; unset = its maximum",
            "minimum": 0,
            "maximum": 40,
        },
    )
    session: int = field(
        default=2, metadata={"help": "Gen2 session 0-3", "minimum": 0, "maximum": 3}
    )
    search_mode: SearchMode | None = field(
        default=None,
        metadata={"help": "Impinj search mode (needs impinj_extensions = true)"},
    )
    tag_population: int = field(
        default=32,
        metadata={"help": "tags expected in the field at once", "minimum": 1, "maximum": 65535},
    )
    mode_identifier: int | None = field(
        default=None,
        metadata={
            "help": "reader mode (ModeIdentifier from its capabilities); unset = default",
            "minimum": 0,
        },
    )
    report_every_n_tags: int = field(
        default=32,
        metadata={
            "help": "the reader reports after this many tags...",
            "minimum": 1,
            "maximum": 65535,
        },
    )
    report_timeout_ms: int = field(
        default=250,
        metadata={
            "help": "...or after this long (0 = only after N tags)",
            "minimum": 0,
            "maximum": 3_600_000,
        },
    )
    keepalive_s: float = field(
        default=5.0,
        metadata={
            "help": "the reader sends a keepalive this often",
            "minimum": 0.1,
            "maximum": 3600,
        },
    )
    keepalive_misses: int = field(
        default=3,
        metadata={
            "help": "missed keepalives (silence) that declare the link dead",
            "minimum": 1,
            "maximum": 100,
        },
    )
    reconnect_initial_s: float = field(
        default=1.0, metadata={"help": "first reconnect wait (full jitter)", "minimum": 0.001}
    )
    reconnect_max_s: float = field(
        default=60.0, metadata={"help": "longest reconnect wait", "minimum": 0.001}
    )
    connect_timeout_s: float = field(
        default=5.0, metadata={"help": "TCP connect timeout", "minimum": 0.01, "maximum": 300}
    )
    impinj_extensions: bool = field(
        default=False, metadata={"help": "enable Impinj's LLRP extensions (Impinj readers only)"}
    )
    gpo_good: int | None = field(
        default=None, metadata={"help": "GPO port pulsed on a good read", "minimum": 1}
    )
    gpo_bad: int | None = field(
        default=None, metadata={"help": "GPO port pulsed on a bad read", "minimum": 1}
    )
    gpo_alarm: int | None = field(
        default=None, metadata={"help": "GPO port pulsed on an alarm", "minimum": 1}
    )
    gpo_pulse_ms: int = field(
        default=500,
        metadata={"help": "how long a GPO pulse lasts", "minimum": 10, "maximum": 60_000},
    )
    gpi_port: int | None = field(
        default=None,
        metadata={"help": "GPI port of a beam sensor, reported as events", "minimum": 1},
    )
    start_trigger: StartTrigger = field(
        default="immediate",
        metadata={
            "help": "how our ROSpec starts: immediate (when enabled; START_ROSPEC only if "
            "no report comes within start_window_s) or explicit (always START_ROSPEC)"
        },
    )
    start_window_s: float = field(
        default=3.0,
        metadata={
            "help": "immediate start trigger: no report or ROSpec start event this long "
            "after ENABLE_ROSPEC, and the driver sends START_ROSPEC",
            "minimum": 0.05,
            "maximum": 600,
        },
    )
    fold_repeats: bool = field(
        default=True,
        metadata={
            "help": "one counted read per tag and antenna in each report (seen_count summed)"
        },
    )

    def check(self) -> list[tuple[str, str]]:
        """Problems that span keys, as (key, what is expected)."""
        out: list[tuple[str, str]] = []
        if not self.antennas:
            out.append(("antennas", "at least one antenna port"))
        elif len(set(self.antennas)) != len(self.antennas):
            out.append(("antennas", f"each antenna once, got {self.antennas}"))
        if self.search_mode is not None and not self.impinj_extensions:
            out.append(("search_mode", "impinj_extensions = true as well (an Impinj extension)"))
        if self.reconnect_max_s < self.reconnect_initial_s:
            out.append(
                ("reconnect_max_s", f"at least reconnect_initial_s ({self.reconnect_initial_s})")
            )
        gpos = [(k, getattr(self, k)) for k in ("gpo_good", "gpo_bad", "gpo_alarm")]
        for i, (key, port) in enumerate(gpos):
            for other, port2 in gpos[:i]:
                if port is not None and port == port2:
                    out.append((key, f"a GPO port other than {other}'s ({port})"))
        return out

    @property
    def silence_s(self) -> float:
        """Silence after which the link is declared dead."""
        return self.keepalive_s * self.keepalive_misses


def reader_config(s: LlrpSettings) -> LLRPReaderConfig:
    """A fresh sllurp config for one connection: sllurp mutates it (tx power) while connecting."""
    values: dict[str, Any] = {
        "antennas": list(s.antennas),
        "tx_power": 0,  # index 0 = the reader's maximum, unless tx_power_dbm picks a level
        "tx_power_dbm": float(s.tx_power_dbm) if s.tx_power_dbm is not None else None,
        "session": s.session,
        "tag_population": s.tag_population,
        "mode_identifier": s.mode_identifier,
        "report_every_n_tags": s.report_every_n_tags,
        "report_timeout_ms": s.report_timeout_ms,
        "tag_content_selector": dict(TAG_CONTENT),
        "keepalive_interval": max(1, round(s.keepalive_s * 1000)),
        "reset_on_connect": True,  # delete what a previous client left, then add our ROSpec
        "start_inventory": True,
        "reconnect": False,  # the driver reconnects, with backoff, on its own loop
        "impinj_extended_configuration": s.impinj_extensions,
        "impinj_search_mode": (SEARCH_MODES[s.search_mode] if s.search_mode is not None else None),
    }
    config = LLRPReaderConfig(values)
    events = dict(config.event_selector)
    events["GPIEvent"] = s.gpi_port is not None
    events["ROSpecEvent"] = True  # "ROSpec started" tells the start window it ran
    config.event_selector = events
    config.gpi_ports_config = {s.gpi_port: True} if s.gpi_port is not None else {}
    return config
