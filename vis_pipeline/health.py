"""What is wrong with the warehouse, one line per problem: the truth ``vis-pipeline status`` tells.

Each problem says what is wrong and which days, so an operator knows what to sync again: a file
that cannot be read, days whose latest sync failed, days whose events do not match the API's
count, days missing between synced ones, and days whose reports were never built.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb

from vis_pipeline.errors import first_line_of
from vis_pipeline.reports import read_every_report, report_exists
from vis_pipeline.sqlfiles import load_sql
from vis_pipeline.warehouse import WarehouseError, status_summary

MAX_DAYS_NAMED = 5
"""Days named in one problem line before the rest are only counted."""


def days_text(days: Sequence[date | str]) -> str:
    """``2026-03-02, 2026-03-03 and 4 more``: a short list of days."""
    named = [str(day) for day in days[:MAX_DAYS_NAMED]]
    more = len(days) - len(named)
    return ", ".join(named) + (f" and {more} more" if more else "")


def days_without_reports(conn: duckdb.DuckDBPyConnection) -> list[date]:
    """Local days that hold events but whose reports were never materialised."""
    query = "health/select_event_dates"
    if report_exists(conn, "daily_call_volume"):
        query = "health/select_days_without_report"
    return [row[0] for row in conn.execute(load_sql(query)).fetchall()]


def warehouse_problems(conn: duckdb.DuckDBPyConnection) -> tuple[dict | None, list[str]]:
    """The warehouse's summary (None when it cannot be read) and its problems, one line each.

    Everything is read in one transaction, so from one snapshot: during a sync the figures
    agree with each other (a day's events, its sync record and the days counted).
    """
    try:
        conn.begin()
        try:
            summary = status_summary(conn)
            read_every_report(conn)
            missing = days_without_reports(conn)
        finally:
            conn.rollback()  # it only read
    except (WarehouseError, duckdb.Error) as exc:
        text = first_line_of(exc)
        if not text.startswith("the warehouse cannot be read"):
            text = f"the warehouse cannot be read: {text}"
        return None, [f"{text}; set it aside and rebuild it: vis-pipeline sync --rebuild"]
    problems = []
    checks = [
        ("failed_days", "the latest sync failed for day(s)"),
        ("unreconciled_days", "the events held differ from the API's count for day(s)"),
        ("gaps", "never synced, between synced days:"),
    ]
    for key, text in checks:
        if summary[key]:
            problems.append(f"{text} {days_text(summary[key])}")
    if missing:
        problems.append(f"reports were never built for day(s) {days_text(missing)}")
    return summary, problems
