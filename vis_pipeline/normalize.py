"""Turn one window's event records (API JSON dicts) into typed pandas frames for the warehouse.

A busy account yields hundreds of thousands of records per sync, so nothing here loops over
records in Python more than once: Arrow reads every wire field of every record in one pass
(``pa.array`` of a struct type), the raw payloads are serialised in one ``orjson`` call, and the
checks and conversions are vectorised. Arrow refuses wrong Python types instead of coercing
them (pandas would turn ``"12"`` into 12), so a record the client should not have passed fails
loudly and is quarantined, not mangled. The frames' columns are Arrow-backed (``pd.ArrowDtype``),
so handing them to DuckDB through Arrow copies nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vis_pipeline.batch import (
    EVENTS_SCHEMA,
    INSTANT_TYPE,
    RAW_SCHEMA,
    REJECTED_SCHEMA,
    NormalizedBatch,
    json_bytes,
    json_text,
)
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

_INSTANT_TYPE = INSTANT_TYPE

INT64 = pd.ArrowDtype(pa.int64())
"""64-bit integers (ids, durations); a missing value is null."""

STRING = pd.ArrowDtype(pa.string())
"""Text (UTF-8); a missing value is null."""

DATE = pd.ArrowDtype(pa.date32())
"""Calendar dates, as DuckDB's DATE."""


def _dtypes(schema: pa.Schema) -> dict[str, pd.ArrowDtype]:
    return {field.name: pd.ArrowDtype(field.type) for field in schema}


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

EVENT_DTYPES: dict[str, pd.ArrowDtype] = _dtypes(EVENTS_SCHEMA)
"""vis.events columns, in table order, with their frame dtypes (Arrow-backed)."""

RAW_DTYPES: dict[str, pd.ArrowDtype] = _dtypes(RAW_SCHEMA)
"""raw.events columns carried by a batch, with their frame dtypes."""

REJECTED_DTYPES: dict[str, pd.ArrowDtype] = _dtypes(REJECTED_SCHEMA)
"""Rejected-record columns carried by a batch, with their frame dtypes."""

_BATCH_SCHEMA = pa.schema([*EVENTS_SCHEMA, RAW_SCHEMA.field("payload")])
"""Every column of a batch: the events frame's and the raw payload."""

_WIRE_TYPE = pa.struct(
    [(key, pa.int64()) for _, key in EVENT_INT_FIELDS]
    + [(key, pa.string()) for _, key in EVENT_STRING_FIELDS + EVENT_INSTANT_FIELDS]
)
"""The wire fields of an event as Arrow reads them (instants as text, parsed afterwards)."""

_POOL = pa.system_memory_pool()
"""Allocator of a window's largest Arrow buffers (the wire fields, the payloads). During a sync,
Arrow's default allocator (mimalloc) measured two to five times slower on them than the system
one, which reuses the memory the previous window freed."""

_FINAL_STATES = pa.array(sorted(FINAL_STATES), type=pa.string())

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


class _Unconvertible(ValueError):
    """A batch holds at least one record whose fields do not convert (found per record later)."""


_SEPARATOR_VALUE = "\x00"
"""A marker put between records serialised together (orjson writes it ``"\\u0000"``)."""

_SEPARATOR = b"," + orjson.dumps(_SEPARATOR_VALUE) + b","
"""How the marker reads between two records in the serialised array."""


def _json_documents_at_once(records: Sequence[Any]) -> pa.Array | None:
    """Each record as compact JSON from ONE orjson call, or None when that cannot be done.

    A call per record costs more than the serialising itself, and orjson gives each result a
    buffer of kilobytes that the allocator keeps. So the records are serialised as one array
    with a marker value between them, and Arrow cuts the text at the markers (no Python object
    per record). The marker's text cannot occur inside a string (its quotes would be escaped)
    and inside a record only as an element of a nested array: the cut is used only when it
    yields exactly one piece per record.
    """
    if not records:
        return pa.array([], type=pa.string())
    interleaved: list[Any] = [_SEPARATOR_VALUE] * (2 * len(records) - 1)
    interleaved[::2] = records
    try:
        text = orjson.dumps(interleaved)
    except TypeError:  # a value orjson does not serialise: see json_bytes
        return None
    del interleaved
    # The text between the brackets as one Arrow string, sharing the bytes' memory; orjson
    # writes valid UTF-8 and the cuts fall on ASCII, so every piece is valid text.
    inner = pa.array([1, len(text) - 1], type=pa.int64())
    whole = pa.LargeStringArray.from_buffers(1, inner.buffers()[1], pa.py_buffer(text))
    pieces = pc.split_pattern(whole, pattern=_SEPARATOR, memory_pool=_POOL).flatten()
    documents = pieces.cast(pa.string(), memory_pool=_POOL)
    return documents if len(documents) == len(records) else None


def _json_column(records: Sequence[Any]) -> pa.Array:
    """The raw payload of each record, as JSON text (unknown fields included)."""
    documents = _json_documents_at_once(records)
    if documents is not None:
        return documents
    # Arrow checks the UTF-8 in one pass instead of decoding each document in Python.
    return pa.array([json_bytes(record) for record in records], type=pa.string())


def _instants(texts: pa.Array) -> pa.Array:
    """ISO-8601 instants as UTC milliseconds; a text without an offset is read as UTC."""
    try:
        # Arrow's parser reads the API's own spelling (milliseconds and an offset) in C++.
        return texts.cast(_INSTANT_TYPE)
    except pa.ArrowInvalid:
        pass
    # Other spellings (no offset, microseconds...): the record contract's parser, which every
    # record given to normalize_events has passed; it truncates to the millisecond.
    millis = [None if text is None else parse_instant_ms(text) for text in texts.to_pylist()]
    return pa.array(millis, type=pa.int64()).cast(_INSTANT_TYPE)


def _local_dates(instants: pa.Array, tz: str) -> pa.Array:
    """Calendar date of each instant on the wall clock of ``tz``."""
    utc = instants.to_pandas()  # numpy-backed: pandas converts zones fastest there
    wall_clock = utc.dt.tz_convert(tz).dt.tz_localize(None).to_numpy()
    # numpy's day unit floors, so the date is right whatever the wall-clock time.
    return pa.array(wall_clock.astype("datetime64[D]"), type=pa.date32())


def _require_objects(records: Sequence[Any]) -> None:
    # Arrow would also read a list or tuple as a struct, by position. One look per type, not
    # per record: records are plain dicts.
    if not all(issubclass(kind, dict) for kind in set(map(type, records))):
        raise _Unconvertible("a record is not an object")


def _require_known(values: pa.Array, known: frozenset[str], column: str) -> None:
    unknown = set(pc.unique(values).drop_null().to_pylist()) - known
    if unknown:
        raise _Unconvertible(f"{column}: unknown values {sorted(unknown)!r}")


def _check_required(columns: dict[str, pa.Array]) -> None:
    for name in REQUIRED_COLUMNS:
        if columns[name].null_count:
            raise _Unconvertible(f"{name}: required value missing")
    if pc.any(pc.less(columns["duration_ms"], 0)).as_py():
        raise _Unconvertible("duration_ms: negative duration")
    _require_known(columns["state"], STATES, "state")
    _require_known(columns["direction"], DIRECTIONS, "direction")
    _require_known(columns["record_type"], RECORD_TYPES, "record_type")


def _event_columns(
    records: Sequence[dict[str, Any]], tz: str, synced_at: pd.Timestamp
) -> dict[str, pa.Array]:
    """Every vis.events column of ``records``; raises if any record does not convert."""
    _require_objects(records)
    wire = pa.array(records, type=_WIRE_TYPE, memory_pool=_POOL)
    columns: dict[str, pa.Array] = {}
    for column, key in EVENT_INT_FIELDS + EVENT_STRING_FIELDS:
        columns[column] = wire.field(key)
    for column, key in EVENT_INSTANT_FIELDS:
        columns[column] = _instants(wire.field(key))
    _check_required(columns)
    columns["is_final"] = pc.is_in(columns["state"], value_set=_FINAL_STATES)
    columns["local_date"] = _local_dates(columns["start_time"], tz)
    columns["synced_at"] = pa.repeat(pa.scalar(synced_at, type=_INSTANT_TYPE), len(records))
    return columns


def _table(records: Sequence[dict[str, Any]], tz: str, synced_at: pd.Timestamp) -> pa.Table:
    """The vis.events columns of ``records`` plus their raw payloads, one row per record."""
    columns = _event_columns(records, tz, synced_at)
    columns["payload"] = _json_column(records)
    return pa.table(columns, schema=_BATCH_SCHEMA)


def _frame(table: pa.Table, schema: pa.Schema) -> pd.DataFrame:
    """The ``schema`` columns of ``table`` as a frame of Arrow-backed columns (no copy)."""
    return table.select(schema.names).to_pandas(types_mapper=pd.ArrowDtype)


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


def _latest_per_event(table: pa.Table) -> pa.Table:
    """One row per event id: a final version beats a live one, then the later record wins.

    The same event can come back twice in one window (pages shift while a call changes state),
    and the warehouse upsert must see each id once.
    """
    ids = table["event_id"].to_numpy()
    if pd.Index(ids).is_unique:
        return table
    ranked = pd.DataFrame({"event_id": ids, "is_final": table["is_final"].to_numpy()})
    ranked = ranked.sort_values("is_final", kind="stable")  # live first, in record order
    keep = ranked.drop_duplicates("event_id", keep="last").index.sort_values()
    return table.take(pa.array(keep, type=pa.int64()))


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
        table = _table(records, tz, stamp)
    except _CONVERSION_ERRORS:
        kept, extra = _convertible(records, lambda some: _table(some, tz, stamp))
        table = _table(kept, tz, stamp)
    table = _latest_per_event(table)
    return NormalizedBatch(
        events=_frame(table, EVENTS_SCHEMA),
        raw=_frame(table, RAW_SCHEMA),
        rejected=_rejected_frame([*rejected, *extra], tz),
        synced_at=stamp.to_pydatetime(),
    )


__all__ = [
    "EVENTS_SCHEMA",
    "EVENT_DTYPES",
    "RAW_DTYPES",
    "RAW_SCHEMA",
    "REJECTED_DTYPES",
    "REJECTED_SCHEMA",
    "NormalizedBatch",
    "json_bytes",
    "json_text",
    "normalize_events",
]
