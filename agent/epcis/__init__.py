"""GS1 EPCIS 2.0: movements as ObjectEvents, and EPC URIs for GS1 keys (no I/O)."""

from agent.epcis.events import (
    CONTEXT,
    EXTENSION,
    EpcisPlaces,
    MappingError,
    document,
    event_id,
    to_event,
)
from agent.epcis.identifiers import EpcError, item_from_class, item_from_epc

__all__ = [
    "CONTEXT",
    "EXTENSION",
    "EpcError",
    "EpcisPlaces",
    "MappingError",
    "document",
    "event_id",
    "item_from_class",
    "item_from_epc",
    "to_event",
]
