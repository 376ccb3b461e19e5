"""The DuckDB warehouse: schema, transactional window loads, settlement, checks and status.

Every statement lives in a SQL file (``sqlfiles``); values are bound, never pasted. Batches
reach DuckDB as Arrow tables registered under fixed names, so a window of a hundred thousand
events is one set-based statement per table rather than a row at a time.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from vis_pipeline.batch import (
    EVENTS_SCHEMA,
    RAW_SCHEMA,
    REJECTED_SCHEMA,
    NormalizedBatch,
    json_text,
)
from vis_pipeline.catalog import WarehouseLocation, open_lake
from vis_pipeline.errors import WarehouseError, first_line_of
from vis_pipeline.locking import warehouse_lock
from vis_pipeline.records import FINAL_STATES, LIVE_STATES
from vis_pipeline.sqlfiles import list_sql, load_sql

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

SCHEMA_FOLDER = "schema"
"""SQL folder whose files, in name order, create the warehouse (each one idempotent)."""

LAKE_OPTIONS: dict[str, str] = {
    "parquet_compression": "zstd",
    "parquet_compression_level": "1",
    "data_inlining_row_limit": "100",
}
"""Options of the DuckLake catalog, set once when missing (setting one again can crash DuckDB
1.5.5's extension). zstd suits the long JSON payloads of raw.events; its level 1 rather than
DuckDB's default 3 makes a day's inserts a fifth faster, and here even 1 % smaller files
(30 days x 10,000 calls: 25.7 MB against 26.0 MB of Parquet). Commits of up to 100 rows (a
day's sync record, the account, the users) stay inside the catalog instead of becoming one tiny
Parquet file each."""

CONFLICT_ATTEMPTS = 5
"""Times a transaction is run while other writers' commits conflict with it (a PostgreSQL
catalog takes writers at once; each attempt starts again from the latest snapshot)."""

CONFLICT_PAUSE_SECONDS = 0.2
"""Pause before the next attempt, times the attempts made: the other writer finishes first."""

SCHEMA_ATTEMPTS = 3
"""Times a writer tries to bring a new warehouse's schema up to date (another may be at it)."""

CHECKS: tuple[str, ...] = (
    "unique_event_id",
    "call_fields_match_state",
    "call_times_in_order",
    "no_final_regressed",
    "raw_matches_events",
)
"""Data checks, one SQL file each under ``checks/``; each query returns the offending rows."""

CHECK_SAMPLE_ROWS = 10
"""Offending rows returned with a failed check (the count covers all of them)."""

STATUS_LOADED = "loaded"
"""A window whose events were fetched and loaded."""

STATUS_SETTLED = "settled"
"""A window skipped because nothing changed since its last load."""

STATUS_FAILED = "failed"
"""A window whose sync did not complete."""

_BATCH_EVENTS = "batch_events"
_BATCH_RAW = "batch_raw"
_BATCH_REJECTED = "batch_rejected"
_BATCH_USERS = "batch_users"
_BATCH_DIRECTORY = "batch_directory"

_CHECK_PARAMETERS: dict[str, list[str]] = {
    "final_states": sorted(FINAL_STATES),
    "live_states": sorted(LIVE_STATES),
}
_PARAMETER = re.compile(r"\$([A-Za-z_]\w*)")

_USERS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("account_id", pa.int64()),
        ("account_label", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("email_address", pa.string()),
        ("contact_number", pa.string()),
        ("status", pa.string()),
        ("roles", pa.string()),
        ("payload", pa.string()),
    ]
)

_USER_TEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("account_label", "acountLabel"),  # the spec's spelling on the wire
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("email_address", "emailAddress"),
    ("contact_number", "contactNumber"),
    ("status", "status"),
)


@dataclass(frozen=True)
class WindowSync:
    """What the caller knows about one synced window (one local day)."""

    local_date: date
    window_start: datetime
    window_end: datetime
    api_count: int
    """Events the API holds inside the window."""
    pages: int
    requests: int
    retries: int
    seconds: float
    run_id: str | None
    api_margin_count: int | None = None
    """What the count endpoint answered for the range actually queried (the window plus edge
    margins); None when that range was the window itself. Settlement compares against it."""

    @property
    def expected_count(self) -> int:
        """The count a later check of the same range must see for nothing to have changed."""
        return self.api_count if self.api_margin_count is None else self.api_margin_count


@dataclass(frozen=True)
class WindowLoad:
    """What loading one window did."""

    local_date: date
    loaded: int
    """Valid events in the batch (one per id)."""
    rejected: int
    """Rejected records now filed under the window."""
    inserted: int
    """Events new to the warehouse."""
    kept_final: int
    """Live versions ignored because the warehouse already holds the event's final version."""


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one data check."""

    name: str
    passed: bool
    failures: int
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Reconciliation:
    """The API's count for a local date against what the warehouse holds for it."""

    local_date: date
    api_count: int | None
    """From the latest successful sync of the date; None when it was never synced."""
    loaded: int
    """Distinct event ids held: clean events of the date plus rejected records with an id."""
    ok: bool


def _first_row(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The first row of the cursor's result (None when empty), reading the result to its end.

    DuckDB refuses some later calls on the connection (registering a table) while a result
    has rows left unread, which ``fetchone`` leaves behind even after the only row.
    """
    rows = cursor.fetchall()
    return rows[0] if rows else None


def connect(
    location: WarehouseLocation | str | Path, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (``location``, or a catalog path to parse); when writable, bring its
    schema up to date. Readers never wait for a writer, nor it for them."""
    if not isinstance(location, WarehouseLocation):
        location = WarehouseLocation.parse(location)
    conn = open_lake(location, read_only=read_only)
    try:
        if not read_only:
            apply_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def schema_fingerprint() -> str:
    """A digest of the schema files' text and the lake's options: a warehouse built by the
    same files, with the same options, has it."""
    digest = hashlib.sha256(repr(sorted(LAKE_OPTIONS.items())).encode())
    for name in list_sql(SCHEMA_FOLDER):
        digest.update(name.encode())
        digest.update(load_sql(name).encode())
    return digest.hexdigest()[:16]


def _applied_fingerprint(conn: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = _first_row(conn.execute(load_sql("warehouse/select_schema_version")))
    except duckdb.CatalogException:
        return None
    return None if row is None else str(row[0])


def apply_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create whatever the warehouse lacks and replace its views and macros, once per version
    of the schema files: a warehouse already up to date is not written at all.

    Two writers meeting a new warehouse (PostgreSQL catalog) race to create it; the one whose
    commit conflicts looks again and finds the other's work.
    """
    fingerprint = schema_fingerprint()
    for attempt in range(SCHEMA_ATTEMPTS):
        if _applied_fingerprint(conn) == fingerprint:
            return
        try:
            with _transaction(conn, "apply the schema"):
                _set_missing_options(conn)
                for name in list_sql(SCHEMA_FOLDER):
                    conn.execute(load_sql(name))
                _give_empty_tables_statistics(conn)
                parameters = {"fingerprint": fingerprint, "applied_at": datetime.now(UTC)}
                conn.execute(load_sql("warehouse/insert_schema_version"), parameters)
            return
        except WarehouseError:
            if attempt == SCHEMA_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _give_empty_tables_statistics(conn: duckdb.DuckDBPyConnection) -> None:
    """Give each empty table of the lake statistics, by writing one placeholder row and
    deleting it again in the same transaction.

    DuckLake (the release DuckDB 1.5.5 ships) keeps no statistics for a table that has never
    held a row, and asks the catalog for them again at every statement naming it: 15-20 ms a
    statement instead of under 1. vis.rejected_events, vis.user_directory (joined by vis.calls)
    and vis.webhook_landings are empty in most warehouses and are read at every load or report.
    Identifiers and types come from the catalog itself; the placeholder's value for a column
    that takes no NULL is the first of '0' and '1970-01-01' its type accepts.
    """
    for schema, table, data_types, nullable in conn.execute(
        load_sql("warehouse/select_lake_tables")
    ).fetchall():
        name = f"{_identifier(schema)}.{_identifier(table)}"
        if _first_row(conn.execute(f"SELECT count(*) FROM {name}"))[0]:
            continue
        values = ", ".join(
            "NULL"
            if takes_null
            else f"COALESCE(TRY_CAST('0' AS {data_type}), TRY_CAST('1970-01-01' AS {data_type}))"
            for data_type, takes_null in zip(data_types, nullable, strict=True)
        )
        conn.execute(f"INSERT INTO {name} VALUES ({values})")
        # The table was empty in this transaction's snapshot: the placeholder is all it holds.
        conn.execute(f"DELETE FROM {name}")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _set_missing_options(conn: duckdb.DuckDBPyConnection) -> None:
    recorded = {
        row[0] for row in conn.execute(load_sql("warehouse/select_lake_options")).fetchall()
    }
    for name, value in LAKE_OPTIONS.items():
        if name not in recorded:
            conn.execute(load_sql("warehouse/set_lake_option"), {"name": name, "value": value})


def is_commit_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (or the DuckDB error it wraps) is DuckLake refusing a commit because
    another writer's commit touched the same data first: nothing of the transaction was
    written."""
    return any(
        isinstance(error, duckdb.TransactionException) and "Transaction conflict" in str(error)
        for error in (exc, exc.__cause__)
    )


def retry_on_conflict(attempt: Callable[[], T]) -> T:
    """``attempt()`` (one whole transaction), run again while another writer's commit
    conflicts with it, up to ``CONFLICT_ATTEMPTS`` times."""
    for number in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return attempt()
        except (WarehouseError, duckdb.TransactionException) as exc:
            if number == CONFLICT_ATTEMPTS or not is_commit_conflict(exc):
                raise
            time.sleep(CONFLICT_PAUSE_SECONDS * number)
    raise AssertionError("unreachable: the last attempt returns or raises")


_last_sync_id = 0


def next_sync_id() -> int:
    """An id ordering sync rows by when they were written: the clock in nanoseconds, strictly
    increasing within the process (DuckLake has no sequences)."""
    global _last_sync_id
    _last_sync_id = max(_last_sync_id + 1, time.time_ns())
    return _last_sync_id


@contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection, action: str) -> Iterator[None]:
    """One transaction around the block: commit on success, roll back and re-raise otherwise."""
    conn.begin()
    try:
        yield
    except duckdb.Error as exc:
        conn.rollback()
        raise WarehouseError(f"could not {action}: {first_line_of(exc)}") from exc
    except BaseException:
        conn.rollback()
        raise
    try:
        # DuckLake writes the catalog at commit: a conflict with another writer shows here.
        conn.commit()
    except duckdb.Error as exc:
        raise WarehouseError(f"could not {action}: {first_line_of(exc)}") from exc


LOAD_THREADS = 1
"""DuckDB threads while a sync loads its days. A day is at most some tens of thousands of rows:
a second thread gains nothing on statements that small, and costs where the extraction and the
normalising already use the machine's cores (30 days x 10,000 calls on 2 cores: 5.6 s against
6.4 s)."""


@contextmanager
def load_threads(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block on ``LOAD_THREADS`` DuckDB threads, then restore the thread count (a
    setting of the whole DuckDB, which the process's other connections share)."""
    (threads,) = _first_row(conn.execute("SELECT current_setting('threads')"))
    conn.execute(f"SET threads = {LOAD_THREADS}")
    try:
        yield
    finally:
        conn.execute(f"SET threads = {int(threads)}")  # an integer read back, not user input


def _aware(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC; a naive datetime is refused (it would be read in some local zone)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame`` as an Arrow table with exactly ``schema`` (missing columns are an error).

    Column by column: Arrow-backed columns are handed over without a copy, and this skips
    the per-frame work of ``pa.Table.from_pandas``, which costs more than a small window.
    """
    columns = [pa.array(frame[field.name], type=field.type) for field in schema]
    return pa.table(columns, schema=schema)


@contextmanager
def _registered(conn: duckdb.DuckDBPyConnection, tables: Mapping[str, Any]) -> Iterator[None]:
    """Make ``tables`` readable by name in SQL for the duration of the block.

    Used inside the block's transaction: registering outside one is a transaction of its own,
    which on a DuckLake costs a look at the catalog (12 ms against 0.7 ms).
    """
    for name, table in tables.items():
        conn.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            conn.unregister(name)


def _sync_parameters(window: WindowSync, status: str, loaded: int, rejected: int) -> dict[str, Any]:
    return {
        "sync_id": next_sync_id(),
        "local_date": window.local_date,
        "window_start": _aware(window.window_start, "window_start"),
        "window_end": _aware(window.window_end, "window_end"),
        "api_count": int(window.api_count),
        "api_margin_count": None
        if window.api_margin_count is None
        else int(window.api_margin_count),
        "loaded": loaded,
        "rejected": rejected,
        "pages": int(window.pages),
        "requests": int(window.requests),
        "retries": int(window.retries),
        "seconds": float(window.seconds),
        "status": status,
        "run_id": window.run_id,
        "finished_at": datetime.now(UTC),
    }


MATCH_MARGIN_DAYS = 2
"""Days either side of a batch's local dates where its ids are looked for among stored rows: a
change of reporting zone moves an event's local date by at most this much."""


def _match_range(events: pa.Table, fallback: date) -> dict[str, date]:
    """The local dates whose stored rows a batch's ids are matched against."""
    low, high = pc.min_max(events["local_date"]).values()
    first = low.as_py() or fallback
    last = high.as_py() or fallback
    margin = timedelta(days=MATCH_MARGIN_DAYS)
    return {"first_date": first - margin, "last_date": last + margin}


def _write_events(
    conn: duckdb.DuckDBPyConnection,
    events: pa.Table,
    raw: pa.Table,
    seen_at: datetime,
    local_date: date,
) -> tuple[int, int, int]:
    """Write the registered batch to raw.events and vis.events: (inserted, kept_final, and the
    rejected rows stored for ``local_date`` before the batch)."""
    for table in (events, raw):
        repeated = table.num_rows - pc.count_distinct(table["event_id"]).as_py()
        if repeated:
            # With no key on the tables, a repeated id would be stored twice.
            raise WarehouseError(
                f"could not load window {local_date}: the batch holds {repeated} event ids twice"
            )
    dates = _match_range(events, local_date)
    parameters = {**dates, "local_date": local_date}
    outcome = _first_row(conn.execute(load_sql("warehouse/select_batch_outcome"), parameters))
    inserted, kept_final, stored_raw, stored_rejected = (int(value or 0) for value in outcome)
    # A window loaded for the first time holds only ids the warehouse has never seen: plain
    # inserts then store exactly what the upserts would, without their conflict check per row.
    if inserted == events.num_rows and stored_raw == 0:
        conn.execute(load_sql("warehouse/insert_raw_events"), {"seen_at": seen_at})
        conn.execute(load_sql("warehouse/insert_events"))
    else:
        conn.execute(load_sql("warehouse/upsert_raw_events"), {"seen_at": seen_at, **dates})
        conn.execute(load_sql("warehouse/upsert_events"), dates)
    return inserted, kept_final, stored_rejected


def load_window(
    conn: duckdb.DuckDBPyConnection, batch: NormalizedBatch, window: WindowSync
) -> WindowLoad:
    """Load one window's batch in ONE transaction, or change nothing.

    Upserts raw.events and vis.events (a stored final version survives a live one), replaces
    the window's rejected rows, and appends a 'loaded' row to the sync history.
    """
    seen_at = _aware(batch.synced_at or datetime.now(UTC), "synced_at")
    sync = _sync_parameters(window, STATUS_LOADED, len(batch.events), len(batch.rejected))
    tables = {
        _BATCH_EVENTS: _arrow(batch.events, EVENTS_SCHEMA),
        _BATCH_RAW: _arrow(batch.raw, RAW_SCHEMA),
    }
    if len(batch.rejected):
        tables[_BATCH_REJECTED] = _arrow(batch.rejected, REJECTED_SCHEMA)
    window_keys = {
        "window_start": sync["window_start"],
        "window_end": sync["window_end"],
        "local_date": window.local_date,
    }
    with (
        _transaction(conn, f"load window {window.local_date}"),
        _registered(conn, tables),
    ):
        inserted, kept_final, stored_rejected = _write_events(
            conn, tables[_BATCH_EVENTS], tables[_BATCH_RAW], seen_at, window.local_date
        )
        # Most days hold no rejected rows and most windows reject nothing: every statement
        # saved counts, as each one first asks the lake's catalog which files to read.
        if stored_rejected:
            conn.execute(
                load_sql("warehouse/delete_rejected_for_window"),
                {"local_date": window.local_date},
            )
        if _BATCH_REJECTED in tables:
            conn.execute(
                load_sql("warehouse/insert_rejected_events"),
                {**window_keys, "run_id": window.run_id, "rejected_at": seen_at},
            )
        conn.execute(load_sql("warehouse/insert_sync_window"), sync)
    return WindowLoad(
        local_date=window.local_date,
        loaded=len(batch.events),
        rejected=len(batch.rejected),
        inserted=inserted,
        kept_final=kept_final,
    )


def _append_syncs(
    conn: duckdb.DuckDBPyConnection, windows: Sequence[WindowSync], status: str
) -> None:
    """Append one history row per window, all in one transaction."""
    if not windows:
        return
    dates = ", ".join(str(window.local_date) for window in windows[:3])
    more = f" and {len(windows) - 3} more" if len(windows) > 3 else ""
    with _transaction(conn, f"record a {status} sync of {dates}{more}"):
        for window in windows:
            sync = _sync_parameters(window, status, loaded=0, rejected=0)
            conn.execute(load_sql("warehouse/insert_sync_window"), sync)


def record_settled(conn: duckdb.DuckDBPyConnection, windows: Sequence[WindowSync]) -> None:
    """Append a 'settled' row per window, in one transaction: each was checked and skipped."""
    _append_syncs(conn, windows, STATUS_SETTLED)


def record_failed(conn: duckdb.DuckDBPyConnection, window: WindowSync) -> None:
    """Append a 'failed' row: the window's sync did not complete (nothing was loaded)."""
    _append_syncs(conn, [window], STATUS_FAILED)


def _reconciliation_rows(
    conn: duckdb.DuckDBPyConnection, local_dates: Sequence[date]
) -> list[tuple[date, int | None, int, int]]:
    """(local_date, api_count, loaded, live) per distinct date, oldest first."""
    if not local_dates:
        return []
    sql = load_sql("warehouse/select_reconciliation")
    return conn.execute(sql, {"local_dates": list(local_dates)}).fetchall()


def latest_syncs(
    conn: duckdb.DuckDBPyConnection, local_dates: Sequence[date]
) -> dict[date, WindowSync]:
    """The latest successful ('loaded' or 'settled') sync of each date of ``local_dates``."""
    if not local_dates:
        return {}
    rows = conn.execute(
        load_sql("warehouse/select_latest_syncs"), {"local_dates": list(local_dates)}
    ).fetchall()
    return {
        day: WindowSync(
            local_date=day,
            window_start=start,
            window_end=end,
            api_count=api_count,
            pages=pages,
            requests=requests,
            retries=retries,
            seconds=seconds,
            run_id=run_id,
            api_margin_count=margin,
        )
        for day, start, end, api_count, pages, requests, retries, seconds, run_id, margin in rows
    }


def settled_windows(
    conn: duckdb.DuckDBPyConnection,
    previous: Mapping[date, WindowSync],
    api_counts_now: Mapping[date, int],
) -> dict[date, WindowSync]:
    """Of the dates' latest syncs (``previous``, from ``latest_syncs``), those whose re-fetch
    cannot change anything.

    Settled means: that sync's count of the queried range (``expected_count``) equals the
    date's count now, the warehouse holds its ``api_count`` distinct ids for the date, and none
    of the date's events is still live. One query, whatever the number of dates.
    """
    candidates = [
        day
        for day, count in api_counts_now.items()
        if day in previous and previous[day].expected_count == count
    ]
    return {
        day: previous[day]
        for day, _, loaded, live in _reconciliation_rows(conn, candidates)
        if loaded == previous[day].api_count and live == 0
    }


def reconcile(conn: duckdb.DuckDBPyConnection, local_dates: Sequence[date]) -> list[Reconciliation]:
    """The API's latest count against the ids held, for each of ``local_dates`` (oldest first)."""
    return [
        Reconciliation(day, api_count, loaded, api_count is not None and api_count == loaded)
        for day, api_count, loaded, _live in _reconciliation_rows(conn, local_dates)
    ]


def run_days(conn: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """What run ``run_id`` did to each local date (its latest sync row per date), JSON-ready.

    Keys: local_date (ISO text), status, api_count, loaded, rejected, pages, requests,
    retries, seconds; oldest date first.
    """
    cursor = conn.execute(load_sql("warehouse/select_run_days"), {"run_id": run_id})
    names = [column[0] for column in cursor.description]
    days = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return [{**day, "local_date": day["local_date"].isoformat()} for day in days]


PREVIEW_ROWS = 10
"""Events shown by ``preview_events`` unless told otherwise."""


def preview_events(
    conn: duckdb.DuckDBPyConnection, first: date, last: date, limit: int = PREVIEW_ROWS
) -> pd.DataFrame:
    """The first ``limit`` events (by start time) of the local dates ``first`` to ``last``."""
    parameters = {"first": first, "last": last, "limit": int(limit)}
    return conn.execute(load_sql("warehouse/select_events_preview"), parameters).df()


def _text(value: Any) -> str | None:
    """A text column's value: strings as they are, numbers as digits (the spec's examples mix)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json_text(value)


def _integer(value: Any, name: str, *, required: bool) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value is None and not required:
        return None
    raise ValueError(f"{name}: expected an integer, got {type(value).__name__}")


def _users_table(users: Sequence[Mapping[str, Any]]) -> pa.Table:
    # Last one wins for a repeated id, as a later answer of the API would.
    latest = {_integer(user.get("id"), "user id", required=True): user for user in users}
    rows = list(latest.values())
    columns: dict[str, list[Any]] = {
        "user_id": list(latest),
        "account_id": [_integer(u.get("accountId"), "accountId", required=False) for u in rows],
    }
    for column, key in _USER_TEXT_FIELDS:
        columns[column] = [_text(user.get(key)) for user in rows]
    columns["roles"] = [None if u.get("roles") is None else json_text(u["roles"]) for u in rows]
    columns["payload"] = [json_text(dict(user)) for user in rows]
    return pa.table(columns, schema=_USERS_SCHEMA)


def replace_users(
    conn: duckdb.DuckDBPyConnection, users: Sequence[Mapping[str, Any]], synced_at: datetime
) -> int:
    """Store ``users`` (getUser answers), replacing rows of the same id; returns how many."""
    if any(not isinstance(user, Mapping) for user in users):
        raise ValueError("every user must be a JSON object")
    table = _users_table(users)
    parameters = {"synced_at": _aware(synced_at, "synced_at")}

    def replace() -> None:
        with _transaction(conn, "replace users"), _registered(conn, {_BATCH_USERS: table}):
            conn.execute(load_sql("warehouse/upsert_users"), parameters)

    retry_on_conflict(replace)
    return table.num_rows


def replace_user_directory(
    conn: duckdb.DuckDBPyConnection, names: Mapping[int, str], imported_at: datetime
) -> int:
    """Replace the user directory with ``names`` (user id to name), in one transaction."""
    table = pa.table(
        {
            "user_id": pa.array(list(names), pa.int64()),
            "user_name": pa.array(list(names.values()), pa.string()),
        }
    )
    parameters = {"imported_at": _aware(imported_at, "imported_at")}
    with (
        _transaction(conn, "replace the user directory"),
        _registered(conn, {_BATCH_DIRECTORY: table}),
    ):
        conn.execute(load_sql("warehouse/delete_user_directory"))
        conn.execute(load_sql("warehouse/insert_user_directory"), parameters)
    return table.num_rows


def replace_account(
    conn: duckdb.DuckDBPyConnection, account: Mapping[str, Any], synced_at: datetime
) -> None:
    """Store ``account`` (getAccount answer), replacing the row of the same id."""
    if not isinstance(account, Mapping):
        raise ValueError("the account must be a JSON object")
    ucis = account.get("ucis")
    parameters = {
        "account_id": _integer(account.get("id"), "account id", required=True),
        "name": _text(account.get("name")),
        "org": _text(account.get("org")),
        "status": _text(account.get("status")),
        "ucis": None if ucis is None else json_text(ucis),
        "payload": json_text(dict(account)),
        "synced_at": _aware(synced_at, "synced_at"),
    }

    def replace() -> None:
        with _transaction(conn, "replace the account"):
            conn.execute(load_sql("warehouse/upsert_account"), parameters)

    retry_on_conflict(replace)


def _json_ready(value: Any) -> Any:
    """A query value that JSON can carry as is (dates and instants become ISO-8601 text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _check_sql(name: str) -> tuple[str, dict[str, Any]]:
    """The check's query (no trailing semicolon, to nest it) and the values it binds."""
    if name not in CHECKS:
        raise ValueError(f"unknown check {name!r}; known: {', '.join(CHECKS)}")
    sql = load_sql(f"checks/{name}").strip().rstrip(";")
    wanted = set(_PARAMETER.findall(sql))
    unknown = wanted - _CHECK_PARAMETERS.keys()
    if unknown:
        raise ValueError(f"check {name!r} uses unknown parameters {sorted(unknown)!r}")
    return sql, {key: _CHECK_PARAMETERS[key] for key in wanted}


def run_check(conn: duckdb.DuckDBPyConnection, name: str) -> CheckResult:
    """Run one data check; it passes when its query finds no offending row."""
    sql, parameters = _check_sql(name)
    (failures,) = _first_row(conn.execute(f"SELECT count(*) FROM ({sql})", parameters))
    sample: list[dict[str, Any]] = []
    if failures:
        cursor = conn.execute(f"SELECT * FROM ({sql}) LIMIT {CHECK_SAMPLE_ROWS}", parameters)
        names = [column[0] for column in cursor.description]
        sample = [
            {name: _json_ready(value) for name, value in zip(names, row, strict=True)}
            for row in cursor.fetchall()
        ]
    return CheckResult(name=name, passed=failures == 0, failures=int(failures), sample=sample)


def run_checks(conn: duckdb.DuckDBPyConnection) -> list[CheckResult]:
    """Every data check, in ``CHECKS`` order."""
    return [run_check(conn, name) for name in CHECKS]


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dates(conn: duckdb.DuckDBPyConnection, name: str) -> list[date]:
    return [row[0] for row in conn.execute(load_sql(name)).fetchall()]


def status_summary(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The warehouse at a glance, JSON-ready (dates and instants as ISO-8601 text).

    Keys: days_synced, first_day, last_day, gaps (days without a successful sync between the
    first and last synced day), failed_days (latest sync failed), unreconciled_days (the
    API's count differs from the ids held), counts (rows per table), last_run_id,
    last_sync_at, last_sync_status. Every table is read whole on the way (see
    select_table_counts.sql): a damaged file raises WarehouseError instead of a summary.
    """
    try:
        cursor = conn.execute(load_sql("warehouse/select_table_counts"))
        names = [column[0] for column in cursor.description]
        counts = dict(zip(names, (int(v) for v in _first_row(cursor)), strict=True))
    except duckdb.Error as exc:
        raise WarehouseError(f"the warehouse cannot be read: {first_line_of(exc)}") from exc
    synced = _dates(conn, "warehouse/select_synced_dates")
    last = _first_row(conn.execute(load_sql("warehouse/select_last_sync")))
    run_id, finished_at, last_status, _ = last if last else (None, None, None, None)
    return {
        "days_synced": len(synced),
        "first_day": _iso(synced[0]) if synced else None,
        "last_day": _iso(synced[-1]) if synced else None,
        "gaps": [_iso(day) for day in _dates(conn, "warehouse/select_sync_gaps")],
        "failed_days": [_iso(day) for day in _dates(conn, "warehouse/select_failed_dates")],
        "unreconciled_days": [_iso(r.local_date) for r in reconcile(conn, synced) if not r.ok],
        "counts": counts,
        "last_run_id": run_id,
        "last_sync_at": _iso(finished_at),
        "last_sync_status": last_status,
    }


# -- events landed by webhooks ---------------------------------------------------------------

_BATCH_LANDINGS = "batch_landings"

LANDINGS_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("local_date", pa.date32()),
        ("state", pa.string()),
        ("is_final", pa.bool_()),
        ("deliveries", pa.int64()),
        ("first_received_at", pa.timestamp("ms", tz="UTC")),
        ("last_received_at", pa.timestamp("ms", tz="UTC")),
    ]
)
"""The vis.webhook_landings columns a drained batch carries (landed_at is added here)."""


@dataclass(frozen=True)
class EventsLoad:
    """What merging events outside any window (webhook deliveries) did."""

    loaded: int
    inserted: int
    kept_final: int
    rejected: int


def load_webhook_events(
    conn: duckdb.DuckDBPyConnection,
    batch: NormalizedBatch,
    landings: pa.Table,
    landed_at: datetime,
    windows: Mapping[date, tuple[datetime, datetime]],
) -> EventsLoad:
    """Merge events delivered by webhooks in ONE transaction, or change nothing.

    The same guarded merge as ``load_window`` (a stored final version survives a live one),
    and each event marked in vis.webhook_landings (``landings``, as LANDINGS_SCHEMA). No sync
    row is written: the API's count was not asked, so no day counts as synced by this.
    Rejected records are added under their local date (``batch.rejected.local_date``, set for
    every row), whose window ``windows`` gives; the day's next sync replaces them.
    """
    seen_at = _aware(landed_at, "landed_at")
    tables = {
        _BATCH_EVENTS: _arrow(batch.events, EVENTS_SCHEMA),
        _BATCH_RAW: _arrow(batch.raw, RAW_SCHEMA),
        _BATCH_LANDINGS: landings.cast(LANDINGS_SCHEMA),
    }
    first_day = min(landings["local_date"].to_pylist(), default=None) or seen_at.date()
    with _transaction(conn, "load webhook deliveries"), _registered(conn, tables):
        inserted, kept_final, _ = _write_events(
            conn, tables[_BATCH_EVENTS], tables[_BATCH_RAW], seen_at, first_day
        )
        for day, rows in batch.rejected.groupby("local_date", sort=True):
            start, end = windows[day]
            parameters = {
                "window_start": _aware(start, "window_start"),
                "window_end": _aware(end, "window_end"),
                "local_date": day,
                "run_id": None,
                "rejected_at": seen_at,
            }
            with _registered(conn, {_BATCH_REJECTED: _arrow(rows, REJECTED_SCHEMA)}):
                conn.execute(load_sql("warehouse/insert_rejected_events"), parameters)
        conn.execute(load_sql("live/upsert_webhook_landings"), {"landed_at": seen_at})
    return EventsLoad(len(batch.events), inserted, kept_final, len(batch.rejected))


def days_landed_since_sync(
    conn: duckdb.DuckDBPyConnection, local_dates: Sequence[date]
) -> list[date]:
    """Of ``local_dates``, those holding events landed by webhooks after their latest
    successful sync (or never synced): not settled, whatever their counts say."""
    if not local_dates:
        return []
    sql = load_sql("live/select_days_landed_since_sync")
    return [row[0] for row in conn.execute(sql, {"local_dates": list(local_dates)}).fetchall()]


@contextmanager
def open_writer(location: WarehouseLocation | str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened for writing, under the lock that queues writers where its catalog
    needs one (SQLite); readers are never kept waiting by it."""
    if not isinstance(location, WarehouseLocation):
        location = WarehouseLocation.parse(location)
    with warehouse_lock(location.lock_path), connect(location) as conn:
        yield conn
