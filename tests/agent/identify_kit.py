"""What the identify tests share: a read of given data, and the codes they use most."""

from __future__ import annotations

from typing import Any

from agent.model import Read

GTIN = "09506000134352"
SSCC = "376104250021234569"
GLN = "5412345000013"
GS = "\x1d"


def read(data: str | bytes, symbology: str | None = None, **fields: Any) -> Read:
    """A barcode read of ``data`` (text is UTF-8 encoded); ``fields`` override the rest."""
    values: dict[str, Any] = {
        "id": "0190f2a4-6c1e-7d3a-9b2f-000000000001",
        "device": "scanner-1",
        "kind": "barcode",
        "data": data.encode() if isinstance(data, str) else data,
        "observed_at": "2026-05-01T10:00:00.000000Z",
        "mono_ns": 1,
        "boot_id": "b",
        "symbology": symbology,
        **fields,
    }
    return Read(**values)
