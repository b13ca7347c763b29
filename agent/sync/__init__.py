"""Delivery of the outbox to the ledger (DESIGN §5)."""

from agent.sync.epcis import EpcisSink, EpcisSinkSettings, make_epcis_sink
from agent.sync.http_ledger import HttpLedgerSink, Result, parse_retry_after
from agent.sync.loop import Syncer, SyncStatus
from agent.sync.policy import RetryPolicy

__all__ = [
    "EpcisSink",
    "EpcisSinkSettings",
    "HttpLedgerSink",
    "Result",
    "RetryPolicy",
    "SyncStatus",
    "Syncer",
    "make_epcis_sink",
    "parse_retry_after",
]
