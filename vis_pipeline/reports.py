"""Reports: tables in schema ``reports`` computed by one SQL file each.

The SQL reads the semantic layer (``vis.calls``, ``vis.calls_local``, ``vis.call_figures``,
created with the schema), where every figure is defined once; a report only picks its figures.

Every report table has a ``local_date`` column (a local day in the reporting time zone) and is
replaced day by day: materialising a range deletes the rows of those days and inserts them
again, all in one transaction, so re-running a range is always safe and a failure changes
nothing. What the figures mean is written down in ``docs/report-definitions.md``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pandas as pd

from vis_pipeline.sqlfiles import load_sql
from vis_pipeline.warehouse import retry_on_conflict

SQL_FOLDER = "reports"
"""Folder of ``sql/`` holding one SELECT per report, named like the report."""

SCHEMA = "reports"
"""Warehouse schema holding the report tables."""

DEFAULT_CALLBACK_HOURS = 24
"""How long after a missed call a callback still counts as returning it."""

MAX_CALLBACK_HOURS = 24 * 31
"""Longest callback window accepted: longer ones would rescan a month per day."""


@dataclass(frozen=True)
class Report:
    """One report table: what it holds and the columns that identify a row."""

    name: str
    description: str
    key: tuple[str, ...]
    """Columns that identify a row (and order the rows read back)."""
    columns: tuple[str, ...]
    """Every column, in table order."""

    @property
    def table(self) -> str:
        """Qualified table name (``reports.<name>``)."""
        return f"{SCHEMA}.{self.name}"


_VOLUME_FIGURES = (
    "total_calls",
    "answered_calls",
    "missed_calls",
    "rejected_calls",
    "cancelled_calls",
    "live_calls",
    "answer_rate",
    "talk_seconds_total",
    "talk_seconds_mean",
    "talk_seconds_p50",
    "talk_seconds_p90",
    "answer_seconds_mean",
    "answer_seconds_p90",
    "busiest_hour",
)
_MISSED_FIGURES = ("inbound_calls", "missed_calls", "live_calls", "missed_rate")

REPORTS: dict[str, Report] = {
    report.name: report
    for report in (
        Report(
            "daily_call_volume",
            "Calls per local day and direction: outcomes, answer rate, talk time, time to "
            "answer and the busiest hour.",
            ("local_date", "direction"),
            ("local_date", "direction", *_VOLUME_FIGURES),
        ),
        Report(
            "daily_call_volume_by_user",
            "daily_call_volume split by user, with the user's name when it is known.",
            ("local_date", "user_id", "direction"),
            ("local_date", "user_id", "user_name", "direction", *_VOLUME_FIGURES),
        ),
        Report(
            "missed_calls",
            "Inbound calls per local day and how many were missed.",
            ("local_date",),
            ("local_date", *_MISSED_FIGURES),
        ),
        Report(
            "missed_calls_by_hour",
            "Inbound and missed calls per local day and local hour of the day.",
            ("local_date", "local_hour"),
            ("local_date", "local_hour", *_MISSED_FIGURES),
        ),
        Report(
            "missed_calls_by_user",
            "Inbound and missed calls per local day and user.",
            ("local_date", "user_id"),
            ("local_date", "user_id", "user_name", *_MISSED_FIGURES),
        ),
        Report(
            "unreturned_missed_calls",
            "Missed inbound calls whose number got no callback within the callback window, "
            "with how long they have waited.",
            ("local_date", "start_time", "event_id"),
            (
                "event_id",
                "local_date",
                "start_time",
                "local_start_time",
                "caller_id",
                "phone_number",
                "user_id",
                "user_name",
                "callback_deadline",
                "window_closed",
                "as_of",
                "waited_hours",
            ),
        ),
    )
}
"""Every report, by name; the name is also its SQL file's and its table's name."""

UNRETURNED = "unreturned_missed_calls"
"""The report whose rows depend on calls after their own day (the callback window)."""

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


class ReportError(ValueError):
    """A report request the warehouse cannot answer: unknown name, bad range or setting."""


def report(name: str) -> Report:
    """The report called ``name``, or ReportError listing the known ones."""
    try:
        return REPORTS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(REPORTS))
        raise ReportError(f"unknown report {name!r}; known reports: {known}") from None


def report_sql(name: str) -> str:
    """The SELECT computing report ``name`` (its parameters are bound, never pasted)."""
    return load_sql(f"{SQL_FOLDER}/{report(name).name}")


def sql_parameters(sql: str) -> frozenset[str]:
    """Names of the ``$name`` parameters ``sql`` uses (comments ignored).

    DuckDB refuses a parameter the statement does not use, so each report gets only its own.
    """
    return frozenset(_PARAMETER.findall(_COMMENT.sub("", sql)))


def check_range(first: date, last: date) -> None:
    """ReportError unless ``first`` and ``last`` are dates with ``first <= last``."""
    if not isinstance(first, date) or not isinstance(last, date):
        raise ReportError(f"first and last must be dates, got {first!r} and {last!r}")
    if last < first:
        raise ReportError(f"last day {last} is before first day {first}")


def _check_settings(tz: str, callback_hours: int) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ReportError(f"unknown time zone {tz!r}") from None
    if isinstance(callback_hours, bool) or not isinstance(callback_hours, int):
        raise ReportError(f"callback_hours must be an integer, got {callback_hours!r}")
    if not 1 <= callback_hours <= MAX_CALLBACK_HOURS:
        raise ReportError(
            f"callback_hours must be between 1 and {MAX_CALLBACK_HOURS}, got {callback_hours}"
        )


def unreturned_lookback_days(callback_hours: int) -> int:
    """Days before a range whose missed calls a callback inside the range can return.

    One more than the window's length in days covers a call at the very end of a day and the
    25-hour day of a DST change.
    """
    return math.ceil(callback_hours / 24) + 1


def recomputed_range(name: str, first: date, last: date, callback_hours: int) -> tuple[date, date]:
    """The days whose rows of report ``name`` materialising ``first``..``last`` replaces.

    A call on a day of the range can be the callback of a missed call from the days before,
    so the unreturned report also refreshes those (otherwise a call returned the next morning
    would stay listed until its own day was rebuilt).
    """
    if name == UNRETURNED:
        return first - timedelta(days=unreturned_lookback_days(callback_hours)), last
    return first, last


def _parameters(
    sql: str, first: date, last: date, tz: str, callback_hours: int
) -> dict[str, object]:
    available: dict[str, object] = {
        "first_date": first,
        "last_date": last,
        "tz": tz,
        "callback_hours": callback_hours,
    }
    wanted = sql_parameters(sql)
    unknown = wanted - available.keys()
    if unknown:
        raise ReportError(f"report SQL uses unknown parameters: {', '.join(sorted(unknown))}")
    return {name: available[name] for name in wanted}


def _check_local_dates(conn: duckdb.DuckDBPyConnection, first: date, last: date, tz: str) -> None:
    """ReportError when the range's events got their local_date in another zone than ``tz``.

    Local days come from the warehouse and local hours from ``tz``: mixing two zones would
    put calls in hours that do not belong to their day.
    """
    found = conn.execute(
        "SELECT count(*) FROM vis.calls_local($tz) "
        "WHERE local_date BETWEEN $first_date AND $last_date "
        "AND CAST(local_start_time AS DATE) <> local_date",
        {"first_date": first, "last_date": last, "tz": tz},
    ).fetchall()[0]
    if found and found[0]:
        raise ReportError(
            f"{found[0]} events of {first}..{last} have a local_date that is not their day in "
            f"{tz}: the warehouse was loaded with another reporting time zone"
        )


def _materialize_one(
    conn: duckdb.DuckDBPyConnection,
    spec: Report,
    first: date,
    last: date,
    tz: str,
    callback_hours: int,
    *,
    exists: bool,
) -> int:
    """Replace the rows of ``first``..``last`` of one report (its table created first unless
    it ``exists``); the rows it now holds for those days.

    Every report's query yields rows of the days it is given only, so the rows inserted are
    the rows those days hold.
    """
    sql = report_sql(spec.name)
    params = _parameters(sql, first, last, tz, callback_hours)
    # Identifiers come from the registry, never from the caller; values are all bound.
    if not exists:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {spec.table} AS SELECT * FROM ({sql}) WITH NO DATA",
            params,
        )
    conn.execute(
        f"DELETE FROM {spec.table} WHERE local_date BETWEEN $first_date AND $last_date",
        {"first_date": first, "last_date": last},
    )
    inserted = conn.execute(
        f"INSERT INTO {spec.table} BY NAME SELECT * FROM ({sql})", params
    ).fetchall()
    return int(inserted[0][0]) if inserted else 0


def materialize_reports(
    conn: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    tz: str,
    callback_hours: int = DEFAULT_CALLBACK_HOURS,
) -> dict[str, int]:
    """Recompute every report for local days ``first``..``last`` in one transaction.

    ``tz`` must be the zone the warehouse's ``local_date`` was computed in (it decides local
    hours). Returns the rows each report now holds for the days it recomputed (see
    :func:`recomputed_range`). Re-running is safe; on any error nothing changes.

    Writers on a PostgreSQL catalog run at once: when another one's commit conflicts with this
    one (both created a report table of a new warehouse, or replaced rows of the same table),
    the whole computation runs again on the snapshot that commit made
    (:func:`~vis_pipeline.warehouse.retry_on_conflict`).
    """
    check_range(first, last)
    _check_settings(tz, callback_hours)
    return retry_on_conflict(lambda: _materialize_all(conn, first, last, tz, callback_hours))


def _materialize_all(
    conn: duckdb.DuckDBPyConnection, first: date, last: date, tz: str, callback_hours: int
) -> dict[str, int]:
    """One attempt of :func:`materialize_reports`: one transaction, from the latest snapshot."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    counts: dict[str, int] = {}
    conn.begin()
    try:
        _check_local_dates(conn, first, last, tz)
        existing = _report_tables(conn)
        for spec in REPORTS.values():
            low, high = recomputed_range(spec.name, first, last, callback_hours)
            counts[spec.name] = _materialize_one(
                conn, spec, low, high, tz, callback_hours, exists=spec.name in existing
            )
    except BaseException:
        conn.rollback()
        raise
    # Outside the block above: a commit DuckLake refuses has already ended the transaction.
    conn.commit()
    return counts


def _report_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """The names of the reports whose tables have been created (by a materialisation)."""
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = $schema", {"schema": SCHEMA}
    ).fetchall()
    return {row[0] for row in rows}


def report_exists(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the table of report ``name`` has been created (by a materialisation)."""
    return report(name).name in _report_tables(conn)


def read_report(
    conn: duckdb.DuckDBPyConnection, name: str, first: date, last: date
) -> pd.DataFrame:
    """The rows of report ``name`` for local days ``first``..``last``, in key order.

    Days (DATE columns) come back as ``datetime.date`` values, instants (TIMESTAMPTZ) in UTC
    whatever the connection's time zone, so every export of the same rows is the same file.
    A report never materialised reads as an empty frame with the report's columns.
    """
    spec = report(name)
    check_range(first, last)
    if not report_exists(conn, name):
        return pd.DataFrame({column: pd.Series(dtype=object) for column in spec.columns})
    columns = ", ".join(spec.columns)
    order = ", ".join(spec.key)
    cursor = conn.execute(
        f"SELECT {columns} FROM {spec.table} "
        f"WHERE local_date BETWEEN $first_date AND $last_date ORDER BY {order}",
        {"first_date": first, "last_date": last},
    )
    types = {column[0]: str(column[1]) for column in cursor.description or []}
    return _plain_dates(cursor.df(), types)


def _plain_dates(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """DATE columns as ``date`` objects and TIMESTAMPTZ columns in UTC."""
    for column, kind in types.items():
        if kind == "DATE":
            frame[column] = pd.Series(
                [None if pd.isna(v) else v.date() for v in frame[column]],
                index=frame.index,
                dtype=object,
            )
        elif kind.startswith("TIMESTAMP WITH TIME ZONE"):
            frame[column] = frame[column].dt.tz_convert("UTC")
    return frame


def read_every_report(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of each materialised report, every column of every row read (damage shows)."""
    existing = _report_tables(conn)
    return {
        spec.name: conn.execute(f"SELECT count(hash(t)) FROM {spec.table} AS t").fetchall()[0][0]
        for spec in REPORTS.values()
        if spec.name in existing
    }
