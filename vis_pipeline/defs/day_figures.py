"""Each local day's own figures, for its daily partition: plain functions, no Dagster.

A sync run of many days materialises every day's partition on its own (docs/dagster.md), with
what the sync did to that day and what the warehouse holds for it. These functions compute
those figures from what ``sync_days`` returned and from the warehouse, so they are tested
without Dagster; ``assets.py`` and ``reports.py`` only turn them into Dagster events.
"""

from __future__ import annotations

from datetime import date

import duckdb

from vis_pipeline.reports import REPORTS
from vis_pipeline.sqlfiles import load_sql
from vis_pipeline.sync import DaySync, days_between
from vis_pipeline.warehouse import Reconciliation

SYNC_FIGURES: tuple[str, ...] = (
    "api_count",
    "loaded",
    "rejected",
    "pages",
    "requests",
    "retries",
    "repair_requests",
)
"""What a sync did to one day, named as :class:`DaySync` names it."""


def events_figures(
    synced: DaySync, reconciliation: Reconciliation, live_calls: int
) -> dict[str, object]:
    """The figures of one day's events partition.

    ``status`` is the sync's (loaded, settled or failed); ``loaded`` is what this run loaded
    (0 for a settled day); ``held`` is what the warehouse now holds for the day (distinct
    event ids, rejected records with an id included), which the API's count must equal.
    """
    figures: dict[str, object] = {"status": synced.status}
    figures.update({name: getattr(synced, name) for name in SYNC_FIGURES})
    figures["held"] = reconciliation.loaded
    figures["live_calls"] = live_calls
    figures["seconds"] = round(synced.seconds, 3)
    return figures


def _range(first: date, last: date) -> dict[str, date]:
    return {"first_date": first, "last_date": last}


def live_calls_by_day(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> dict[date, int]:
    """Calls not yet in a final state on each local day ``first``..``last`` (0 without calls)."""
    rows = conn.execute(load_sql("figures/select_live_calls_by_day"), _range(first, last))
    counted = dict(rows.fetchall())
    return {day: int(counted.get(day, 0)) for day in days_between(first, last)}


def report_rows_by_day(
    conn: duckdb.DuckDBPyConnection, first: date, last: date
) -> dict[date, dict[str, int]]:
    """Rows each report table holds for each local day ``first``..``last`` (0 when none)."""
    rows = {day: dict.fromkeys(REPORTS, 0) for day in days_between(first, last)}
    for name, spec in REPORTS.items():
        # The table's name comes from the report registry, never from a caller; days are bound.
        counted = conn.execute(
            f"SELECT local_date, count(*) FROM {spec.table} "
            "WHERE local_date BETWEEN $first_date AND $last_date GROUP BY local_date",
            _range(first, last),
        ).fetchall()
        for day, count in counted:
            rows[day][name] = int(count)
    return rows
