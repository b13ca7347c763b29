"""Delivery of the outbox to the ledger (DESIGN §5)."""

from agent.sync.epcis import EpcisSink
from agent.sync.http_ledger import HttpLedgerSink, Result
from agent.sync.httperrors import parse_retry_after
from agent.sync.loop import Syncer, SyncStatus
from agent.sync.policy import RetryPolicy

__all__ = [
    "EpcisSink",
    "HttpLedgerSink",
    "Result",
    "RetryPolicy",
    "SyncStatus",
    "Syncer",
    "parse_retry_after",
]
