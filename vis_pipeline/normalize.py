"""Turn one window's event records (API JSON dicts) into typed pandas frames for the warehouse.

Columns are built whole (one list comprehension per field, one vectorised conversion per column)
because a busy account yields hundreds of thousands of records per sync. Conversions go through
Arrow, which refuses wrong Python types instead of coercing them (pandas would turn ``"12"`` into
12), so a record the client should not have passed fails loudly and is quarantined, not mangled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from vis_pipeline.records import (
    DIRECTIONS,
    FINAL_STATES,
    RECORD_TYPES,
    STATES,
    InvalidInstant,
    RejectedRecord,
    event_problem,
    parse_instant_ms,
)

INT64 = pd.Int64Dtype()
"""Nullable 64-bit integers (ids, durations)."""

STRING = pd.StringDtype("pyarrow")
"""Nullable text, Arrow-backed so it reaches DuckDB without a copy per value."""

BOOL = np.dtype("bool")
"""Flags that are never missing."""

INSTANT = pd.DatetimeTZDtype(unit="ms", tz="UTC")
"""Instants in UTC at the API's precision (milliseconds)."""

DATE = pd.ArrowDtype(pa.date32())
"""Calendar dates (Arrow date32), as DuckDB's DATE."""

EVENT_INT_FIELDS: tuple[tuple[str, str], ...] = (
    ("event_id", "id"),
    ("account_id", "accountId"),
    ("user_id", "userId"),
    ("uci_id", "uciId"),
    ("duration_ms", "duration"),
)
"""Integer columns of vis.events and the wire field each comes from."""

EVENT_STRING_FIELDS: tuple[tuple[str, str], ...] = (
    ("external_id", "externalId"),
    ("record_type", "type"),
    ("direction", "direction"),
    ("caller_id", "callerId"),
    ("phone_number", "phoneNumber"),
    ("state", "state"),
    ("sms_data", "smsData"),
)
"""Text columns of vis.events and the wire field each comes from."""

EVENT_INSTANT_FIELDS: tuple[tuple[str, str], ...] = (
    ("start_time", "startTime"),
    ("answer_time", "answerTime"),
    ("end_time", "endTime"),
)
"""Timestamp columns of vis.events and the wire field each comes from."""

REQUIRED_COLUMNS: frozenset[str] = frozenset(
    {
        "event_id",
        "account_id",
        "user_id",
        "uci_id",
        "record_type",
        "direction",
        "phone_number",
        "state",
        "start_time",
    }
)
"""Columns fed by fields the spec marks required: a null there means the record is invalid."""

EVENT_DTYPES: dict[str, Any] = {
    "event_id": INT64,
    "external_id": STRING,
    "record_type": STRING,
    "account_id": INT64,
    "user_id": INT64,
    "uci_id": INT64,
    "direction": STRING,
    "caller_id": STRING,
    "phone_number": STRING,
    "state": STRING,
    "is_final": BOOL,
    "start_time": INSTANT,
    "answer_time": INSTANT,
    "end_time": INSTANT,
    "duration_ms": INT64,
    "sms_data": STRING,
    "local_date": DATE,
    "synced_at": INSTANT,
}
"""vis.events columns, in table order, with their frame dtypes."""

RAW_DTYPES: dict[str, Any] = {
    "event_id": INT64,
    "payload": STRING,
    "state": STRING,
    "is_final": BOOL,
    "start_time": INSTANT,
    "local_date": DATE,
}
"""raw.events columns carried by a batch (the seen-at times are added by the warehouse)."""

REJECTED_DTYPES: dict[str, Any] = {
    "event_id": INT64,
    "reason": STRING,
    "payload": STRING,
    "local_date": DATE,
}
"""Rejected-record columns carried by a batch (the window columns are added by the warehouse)."""

_ARROW_TYPES: dict[str, pa.DataType] = {
    "event_id": pa.int64(),
    "external_id": pa.string(),
    "record_type": pa.string(),
    "account_id": pa.int64(),
    "user_id": pa.int64(),
    "uci_id": pa.int64(),
    "direction": pa.string(),
    "caller_id": pa.string(),
    "phone_number": pa.string(),
    "state": pa.string(),
    "is_final": pa.bool_(),
    "start_time": pa.timestamp("ms", tz="UTC"),
    "answer_time": pa.timestamp("ms", tz="UTC"),
    "end_time": pa.timestamp("ms", tz="UTC"),
    "duration_ms": pa.int64(),
    "sms_data": pa.string(),
    "local_date": pa.date32(),
    "synced_at": pa.timestamp("ms", tz="UTC"),
    "payload": pa.string(),
    "reason": pa.string(),
}

EVENTS_SCHEMA = pa.schema([(name, _ARROW_TYPES[name]) for name in EVENT_DTYPES])
"""Arrow schema of the events frame, as handed to DuckDB."""

RAW_SCHEMA = pa.schema([(name, _ARROW_TYPES[name]) for name in RAW_DTYPES])
"""Arrow schema of the raw frame, as handed to DuckDB."""

REJECTED_SCHEMA = pa.schema([(name, _ARROW_TYPES[name]) for name in REJECTED_DTYPES])
"""Arrow schema of the rejected frame, as handed to DuckDB."""

MAX_REASON_CHARS = 500
"""Longest reason stored for a rejected record (conversion messages may quote the value)."""

_CONVERSION_ERRORS = (
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    KeyError,
    pa.ArrowException,
)


@dataclass
class NormalizedBatch:
    """One window's records as frames shaped like the warehouse tables."""

    events: pd.DataFrame
    """vis.events rows, one per event id, columns and dtypes as ``EVENT_DTYPES``."""
    raw: pd.DataFrame
    """raw.events rows for the same ids, in the same order, as ``RAW_DTYPES``."""
    rejected: pd.DataFrame
    """Records that are not valid events, as ``REJECTED_DTYPES``."""
    synced_at: datetime | None = None
    """When the batch was fetched; the warehouse stamps raw and rejected rows with it."""


class _Unconvertible(ValueError):
    """A batch holds at least one record whose fields do not convert (found per record later)."""


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


def _json_column(values: Sequence[Any]) -> pd.Series:
    # Arrow checks the UTF-8 in one pass instead of decoding each document in Python.
    documents = pa.array([json_bytes(value) for value in values], type=pa.binary())
    return documents.cast(pa.string()).to_pandas(types_mapper={pa.string(): STRING}.get)


def _ints(values: list[Any]) -> pd.Series:
    return pa.array(values, type=pa.int64()).to_pandas(types_mapper={pa.int64(): INT64}.get)


def _strings(values: list[Any]) -> pd.Series:
    return pa.array(values, type=pa.string()).to_pandas(types_mapper={pa.string(): STRING}.get)


def _instants(values: list[Any]) -> pd.Series:
    # Arrow first: pandas would read an integer as an epoch instead of refusing it.
    pa.array(values, type=pa.string())
    parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
    return parsed.astype(INSTANT)


def _local_dates(instants: pd.Series, tz: str) -> pd.Series:
    """Calendar date of each instant on the wall clock of ``tz``."""
    wall_clock = instants.dt.tz_convert(tz).dt.tz_localize(None).to_numpy()
    # numpy's day unit floors, so the date is right whatever the wall-clock time.
    days = pa.array(wall_clock.astype("datetime64[D]"), type=pa.date32())
    return pd.Series(days, dtype=DATE, index=instants.index)


def _require_known(values: pd.Series, known: frozenset[str], column: str) -> None:
    unknown = set(values.dropna().unique()) - known
    if unknown:
        raise _Unconvertible(f"{column}: unknown values {sorted(unknown)!r}")


def _check_required(columns: dict[str, pd.Series]) -> None:
    for name in REQUIRED_COLUMNS:
        if columns[name].isna().any():
            raise _Unconvertible(f"{name}: required value missing")
    if (columns["duration_ms"].dropna() < 0).any():
        raise _Unconvertible("duration_ms: negative duration")
    _require_known(columns["state"], STATES, "state")
    _require_known(columns["direction"], DIRECTIONS, "direction")
    _require_known(columns["record_type"], RECORD_TYPES, "record_type")


def _event_columns(
    records: Sequence[dict[str, Any]], tz: str, synced_at: pd.Timestamp
) -> dict[str, pd.Series]:
    """Every vis.events column of ``records``; raises if any record does not convert."""
    columns: dict[str, pd.Series] = {}
    for column, key in EVENT_INT_FIELDS:
        columns[column] = _ints([record.get(key) for record in records])
    for column, key in EVENT_STRING_FIELDS:
        columns[column] = _strings([record.get(key) for record in records])
    for column, key in EVENT_INSTANT_FIELDS:
        columns[column] = _instants([record.get(key) for record in records])
    _check_required(columns)
    states = columns["state"].to_numpy(dtype=object)
    columns["is_final"] = pd.Series(
        np.fromiter((state in FINAL_STATES for state in states), dtype=BOOL, count=len(states))
    )
    columns["local_date"] = _local_dates(columns["start_time"], tz)
    columns["synced_at"] = pd.Series(synced_at, index=range(len(records)), dtype=INSTANT)
    return columns


def _frames(
    records: Sequence[dict[str, Any]], tz: str, synced_at: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The events and raw frames of ``records`` (same rows, same order)."""
    columns = _event_columns(records, tz, synced_at)
    events = pd.DataFrame({name: columns[name] for name in EVENT_DTYPES}).astype(EVENT_DTYPES)
    raw = pd.DataFrame(
        {
            "event_id": columns["event_id"],
            "payload": _json_column(records),
            "state": columns["state"],
            "is_final": columns["is_final"],
            "start_time": columns["start_time"],
            "local_date": columns["local_date"],
        }
    ).astype(RAW_DTYPES)
    return events, raw


def _storable_text(text: str) -> str:
    """``text`` as valid UTF-8, at most MAX_REASON_CHARS long (lone surrogates escaped)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_REASON_CHARS]


def _reason(exc: Exception) -> str:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return _storable_text(f"conversion failed: {message}")


def _bisect_unconvertible(
    records: Sequence[Any], convert: Callable[[Sequence[Any]], object]
) -> tuple[list[Any], list[RejectedRecord]]:
    """Split ``records`` into those ``convert`` accepts and the rest, halving around failures.

    Halving finds k bad records in about k·log(n) conversions instead of n single ones.
    """
    try:
        convert(records)
    except _CONVERSION_ERRORS as exc:
        if len(records) == 1:
            record = records[0]
            return [], [RejectedRecord(_reason(exc), record, _event_id_of(None, record))]
        middle = len(records) // 2
        kept_low, dropped_low = _bisect_unconvertible(records[:middle], convert)
        kept_high, dropped_high = _bisect_unconvertible(records[middle:], convert)
        return kept_low + kept_high, dropped_low + dropped_high
    return list(records), []


def _convertible(
    records: Sequence[Any], convert: Callable[[Sequence[Any]], object]
) -> tuple[list[Any], list[RejectedRecord]]:
    """Split ``records`` into convertible ones and the rest, with reasons.

    Only reached when a whole batch failed: the record contract names most problems, and
    halving finds whatever else breaks the conversion.
    """
    valid: list[Any] = []
    dropped: list[RejectedRecord] = []
    for record in records:
        problem = event_problem(record)
        if problem is None:
            valid.append(record)
        else:
            dropped.append(RejectedRecord(problem, record, _event_id_of(None, record)))
    if not valid:
        return [], dropped
    kept, unconvertible = _bisect_unconvertible(valid, convert)
    return kept, dropped + unconvertible


def _latest_per_event(events: pd.DataFrame, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per event id: a final version beats a live one, then the later record wins.

    The same event can come back twice in one window (pages shift while a call changes state),
    and the warehouse upsert must see each id once.
    """
    if not events["event_id"].duplicated().any():
        return events, raw
    ranked = pd.DataFrame(
        {"event_id": events["event_id"], "is_final": events["is_final"], "pos": events.index}
    ).sort_values(["is_final", "pos"], kind="stable")
    keep = ranked.drop_duplicates("event_id", keep="last").index.sort_values()
    return events.loc[keep].reset_index(drop=True), raw.loc[keep].reset_index(drop=True)


def _event_id_of(event_id: int | None, payload: Any) -> int | None:
    """The id of a rejected record: the one given, else an integer ``id`` in its payload."""
    if event_id is not None:
        return event_id
    if isinstance(payload, dict):
        candidate = payload.get("id")
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate
    return None


def _local_date_of(payload: Any, zone: ZoneInfo) -> date | None:
    """Local date of a rejected record's start, when it has a readable one."""
    if not isinstance(payload, dict):
        return None
    try:
        start_ms = parse_instant_ms(payload.get("startTime"))  # type: ignore[arg-type]
        moment = pd.Timestamp(start_ms, unit="ms", tz="UTC")
    except (InvalidInstant, ValueError, OverflowError):
        return None
    return moment.tz_convert(zone).date()


_INT64_RANGE = range(-(2**63), 2**63)


def _rejected_frame(rejected: Sequence[RejectedRecord], tz: str) -> pd.DataFrame:
    zone = ZoneInfo(tz)
    ids = [_event_id_of(item.event_id, item.payload) for item in rejected]
    return pd.DataFrame(
        {
            # An id that does not fit the column is kept in the payload only.
            "event_id": pd.array(
                [i if isinstance(i, int) and i in _INT64_RANGE else None for i in ids],
                dtype=INT64,
            ),
            "reason": pd.array(
                [_storable_text(str(item.reason)) for item in rejected], dtype=STRING
            ),
            "payload": pd.array([json_text(item.payload) for item in rejected], dtype=STRING),
            "local_date": pd.Series(
                pa.array([_local_date_of(item.payload, zone) for item in rejected], pa.date32()),
                dtype=DATE,
            ),
        }
    ).astype(REJECTED_DTYPES)


def _utc(moment: datetime) -> pd.Timestamp:
    if moment.tzinfo is None:
        raise ValueError("synced_at must be timezone-aware")
    return pd.Timestamp(moment).tz_convert("UTC")


def normalize_events(
    records: Sequence[dict[str, Any]],
    rejected: Sequence[RejectedRecord],
    tz: str,
    synced_at: datetime,
) -> NormalizedBatch:
    """Frames for one window: valid ``records``, plus ``rejected`` and any record that fails.

    ``tz`` is the reporting time zone (IANA name) that decides each event's ``local_date``.
    ``synced_at`` must be timezone-aware. Records are expected to have passed
    ``event_problem``; one that still does not convert is moved to ``rejected`` with the reason,
    and the records around it are kept.
    """
    ZoneInfo(tz)  # an unknown zone is a settings error, not a record problem: fail here
    stamp = _utc(synced_at)
    extra: list[RejectedRecord] = []
    try:
        events, raw = _frames(records, tz, stamp)
    except _CONVERSION_ERRORS:
        kept, extra = _convertible(records, lambda one: _frames(one, tz, stamp))
        events, raw = _frames(kept, tz, stamp)
    events, raw = _latest_per_event(events, raw)
    return NormalizedBatch(
        events=events,
        raw=raw,
        rejected=_rejected_frame([*rejected, *extra], tz),
        synced_at=stamp.to_pydatetime(),
    )
