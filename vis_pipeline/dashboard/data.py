"""What one page shows: the report rows and the figures of a range, read from the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from vis_pipeline.dashboard.figures import (
    HeadlineFigures,
    load_headline_figures,
    load_user_figures,
)
from vis_pipeline.reports import read_report


@dataclass(frozen=True)
class DashboardData:
    """The report rows and figures of local days ``first``..``last``."""

    first: date
    last: date
    volume: pd.DataFrame
    missed: pd.DataFrame
    missed_by_hour: pd.DataFrame
    volume_by_user: pd.DataFrame
    missed_by_user: pd.DataFrame
    unreturned: pd.DataFrame
    headline: HeadlineFigures
    """The range's figures taken together (tiles, averages)."""
    users: pd.DataFrame
    """One row per user over the range, busiest first."""


_FRAME_OF_REPORT = {
    "daily_call_volume": "volume",
    "daily_call_volume_by_user": "volume_by_user",
    "missed_calls": "missed",
    "missed_calls_by_hour": "missed_by_hour",
    "missed_calls_by_user": "missed_by_user",
    "unreturned_missed_calls": "unreturned",
}


def report_frame(data: DashboardData, name: str) -> pd.DataFrame:
    """The rows of report ``name`` held by ``data``."""
    return getattr(data, _FRAME_OF_REPORT[name])


def load_dashboard_data(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> DashboardData:
    """Every report's rows and the figures of local days ``first``..``last``.

    The reports must have been materialised (an export checks this first).
    """
    frames = {
        field: read_report(conn, name, first, last) for name, field in _FRAME_OF_REPORT.items()
    }
    return DashboardData(
        first=first,
        last=last,
        **frames,
        headline=load_headline_figures(conn, first, last),
        users=load_user_figures(conn, first, last),
    )


def days_of(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def as_dates(column: pd.Series) -> list[date]:
    """A column of days (dates or timestamps) as ``date`` values."""
    return [pd.Timestamp(value).date() for value in column]
