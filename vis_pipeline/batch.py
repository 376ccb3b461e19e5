"""A normalised window as the warehouse receives it: three tables, their Arrow schemas, and the
JSON text of a payload.

Kept apart from ``normalize`` (which builds batches with pandas) so that code which only reads
or writes the warehouse imports pyarrow but never pandas: a sync with nothing new to fetch
never pays pandas' import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

INSTANT_TYPE = pa.timestamp("ms", tz="UTC")
"""Instants in UTC at the API's precision (milliseconds)."""

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("external_id", pa.string()),
        ("record_type", pa.string()),
        ("account_id", pa.int64()),
        ("user_id", pa.int64()),
        ("uci_id", pa.int64()),
        ("direction", pa.string()),
        ("caller_id", pa.string()),
        ("phone_number", pa.string()),
        ("state", pa.string()),
        ("is_final", pa.bool_()),
        ("start_time", INSTANT_TYPE),
        ("answer_time", INSTANT_TYPE),
        ("end_time", INSTANT_TYPE),
        ("duration_ms", pa.int64()),
        ("sms_data", pa.string()),
        ("local_date", pa.date32()),
        ("synced_at", INSTANT_TYPE),
    ]
)
"""vis.events columns, in table order, as handed to DuckDB."""

RAW_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("payload", pa.string()),
        ("state", pa.string()),
        ("is_final", pa.bool_()),
        ("start_time", INSTANT_TYPE),
        ("local_date", pa.date32()),
    ]
)
"""raw.events columns carried by a batch (the seen-at times are added by the warehouse)."""

REJECTED_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("reason", pa.string()),
        ("payload", pa.string()),
        ("local_date", pa.date32()),
    ]
)
"""Rejected-record columns carried by a batch (the window columns are added by the warehouse)."""


@dataclass
class NormalizedBatch:
    """One window's records as frames shaped like the warehouse tables."""

    events: pd.DataFrame
    """vis.events rows, one per event id, columns and types as ``EVENTS_SCHEMA``."""
    raw: pd.DataFrame
    """raw.events rows for the same ids, in the same order, as ``RAW_SCHEMA``."""
    rejected: pd.DataFrame
    """Records that are not valid events, as ``REJECTED_SCHEMA``."""
    synced_at: datetime | None = None
    """When the batch was fetched; the warehouse stamps raw and rejected rows with it."""


def json_bytes(value: Any) -> bytes:
    """``value`` as UTF-8 JSON; something is always returned, even for odd payloads."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        pass
    try:
        # The standard library copes with integers beyond 64 bits, which orjson refuses, and
        # escaping to ASCII keeps lone surrogates (valid in JSON, not in UTF-8) storable.
        return json.dumps(value, default=repr).encode()
    except (TypeError, ValueError, RecursionError):
        return orjson.dumps(repr(value))


def json_text(value: Any) -> str:
    """``value`` as JSON text (see ``json_bytes``)."""
    return json_bytes(value).decode()
