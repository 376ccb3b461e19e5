"""The page's figures over a whole range: headline figures and one row per user.

Both come from SQL files of ``sql/figures`` that read ``vis.call_figures``, where every figure
is defined once; nothing here adds, divides or averages, so the page, the Dagster metadata and
the report tables can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import duckdb
import pandas as pd

from vis_pipeline.sqlfiles import load_sql


@dataclass(frozen=True)
class HeadlineFigures:
    """The figures of every call of a range taken together (see docs/report-definitions.md)."""

    total_calls: int
    inbound_calls: int
    outbound_calls: int
    answered_calls: int
    finished_calls: int
    answer_rate: float | None
    """Answered calls / finished calls; None without finished calls."""
    missed_inbound_calls: int
    finished_inbound_calls: int
    missed_rate: float | None
    """Missed inbound calls / finished inbound calls; None without finished inbound calls."""
    talk_seconds_total: float
    talk_seconds_mean: float | None
    """Mean talk time of the answered calls; None when none was answered."""
    answer_seconds_mean: float | None
    """Mean time to answer of the answered calls; None when none was answered."""
    unreturned_calls: int
    """Missed inbound calls not called back (the materialised report's rows)."""
    open_unreturned_calls: int
    """Of those, the ones still within their callback window."""


def _range(first: date, last: date) -> dict[str, date]:
    return {"first_date": first, "last_date": last}


def load_headline_figures(
    conn: duckdb.DuckDBPyConnection, first: date, last: date
) -> HeadlineFigures:
    """The headline figures of local days ``first``..``last`` (the reports must exist)."""
    cursor = conn.execute(load_sql("figures/select_headline_figures"), _range(first, last))
    names = [column[0] for column in cursor.description or []]
    row = dict(zip(names, cursor.fetchall()[0], strict=True))
    return HeadlineFigures(**{field.name: row[field.name] for field in fields(HeadlineFigures)})


def load_user_figures(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> pd.DataFrame:
    """One row per user with calls on local days ``first``..``last``, busiest first."""
    return conn.execute(load_sql("figures/select_user_figures"), _range(first, last)).df()
