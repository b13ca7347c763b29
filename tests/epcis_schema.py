"""The GS1 EPCIS 2.0 JSON Schema (tests/data/epcis/), as a validator with formats checked."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = Path(__file__).parent / "data" / "epcis" / "EPCIS-JSON-Schema.json"


@functools.cache
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def errors(doc: Any) -> list[str]:
    """Every schema error, as ``path: message`` (empty when the document is valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(doc)
    ]
