"""Prometheus metrics for one agent, on a registry of its own (no global state).

Counters move where things happen (a read decided, a batch settled); gauges
that describe the outbox are read when scraped, from numbers the daemon keeps
in memory, so a scrape never scans a table of a million rows.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

SYNC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reads = Counter(
            "edgetally_reads",
            "Reads by device and result (good, bad, refused)",
            ["device", "result"],
            registry=r,
        )
        self.movements = Counter(
            "edgetally_movements",
            "Movements by kind and state (stored, delivered, rejected)",
            ["kind", "state"],
            registry=r,
        )
        self.backlog = Gauge(
            "edgetally_outbox_pending", "Movements waiting for the ledger", registry=r
        )
        self.oldest_pending_age = Gauge(
            "edgetally_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending movement",
            registry=r,
        )
        self.outbox_bytes = Gauge("edgetally_outbox_bytes", "Bytes the outbox holds", registry=r)
        self.outbox_cap = Gauge("edgetally_outbox_cap_bytes", "The outbox size cap", registry=r)
        self.sync_latency = Histogram(
            "edgetally_sync_request_seconds",
            "Time of one request to the ledger",
            buckets=SYNC_BUCKETS,
            registry=r,
        )
        self.retries = Counter("edgetally_sync_retries", "Failed sync attempts", registry=r)
        self.last_success = Gauge(
            "edgetally_sync_last_success_timestamp_seconds",
            "When the ledger last answered",
            registry=r,
        )
        # Per sink (label `sink`): each sink's own delivery. The unlabelled sync
        # metrics above are the first sink's, as in the days of one sink.
        self.sink_movements = Counter(
            "edgetally_sink_movements",
            "Movements settled by each sink, by state (delivered, rejected)",
            ["sink", "state"],
            registry=r,
        )
        self.sink_pending = Gauge(
            "edgetally_sink_pending", "Movements waiting for each sink", ["sink"], registry=r
        )
        self.sink_retries = Counter(
            "edgetally_sink_retries", "Failed delivery attempts of each sink", ["sink"], registry=r
        )
        self.sink_last_success = Gauge(
            "edgetally_sink_last_success_timestamp_seconds",
            "When each sink last answered",
            ["sink"],
            registry=r,
        )
        self.sink_up = Gauge(
            "edgetally_sink_up",
            "1 unless the sink is failing (see health.ledger_down_attempts)",
            ["sink"],
            registry=r,
        )
        self.device_connected = Gauge(
            "edgetally_device_connected", "1 if the device is connected", ["device"], registry=r
        )
        self.alarm = Gauge("edgetally_alarm", "1 while the alarm is raised", ["alarm"], registry=r)
        self.clock_synced = Gauge(
            "edgetally_clock_synced", "1 if the wall clock is synchronised", registry=r
        )
        self.portal_passes = Counter(
            "edgetally_portal_passes",
            "Portal passes judged, by station and verdict (crossed_in, crossed_out, duplicate, "
            "or why nothing moved: too_few_reads, one_sided, no_order, turned_back, "
            "interleaved, low_confidence, beam_not_broken)",
            ["station", "verdict"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
