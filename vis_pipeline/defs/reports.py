"""Report assets: the report tables (one asset, one transaction) and the file exports.

Thin on purpose: the figures come from ``vis_pipeline.reports``, the files from
``vis_pipeline.exports`` and the charts from ``vis_pipeline.report_page``; this module turns
them into Dagster assets and metadata.

No ``from __future__ import annotations`` here: Dagster reads the config classes from the asset
functions' signatures, which must hold the classes themselves, not their names.
"""

from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from vis_pipeline import report_page as page
from vis_pipeline.defs.resources import write_connection
from vis_pipeline.exports import DASHBOARD, FORMATS, export_file_name, export_report
from vis_pipeline.reports import DEFAULT_CALLBACK_HOURS, REPORTS, materialize_reports

GROUP = "reports"
"""Dagster group of the report assets."""

EXPORT = dg.AssetKey(["reports", "export"])
"""The files written from the reports of a range of days."""

PREVIEW_ROWS = 10
"""Rows of a report shown in its materialisation's preview table."""

DEFAULT_EXPORT_DIR = "exports"
"""Folder the export asset writes to unless configured (relative to the working directory)."""

DEFAULT_EXPORT_FORMATS: tuple[str, ...] = ("html", "csv")
"""What the export asset writes unless configured: the page, and every report as CSV."""


REPORT_TABLES = dg.AssetKey(["reports", "tables"])
"""Every table of schema ``reports`` for the run's days, computed together in one transaction.

One asset rather than one per table: the tables are always written together, and Dagster
stores a planned and a done event per asset and partition, which for a year of history and six
separate assets is thousands of SQLite writes per run (most of a re-run's time)."""


class ReportsConfig(dg.Config):
    """Run config of the report tables."""

    callback_hours: int = DEFAULT_CALLBACK_HOURS
    """How long after a missed call a callback still counts as returning it."""


class ExportConfig(dg.Config):
    """Run config of the export asset."""

    directory: str = DEFAULT_EXPORT_DIR
    """Folder the files go to."""
    formats: list[str] = Field(default_factory=lambda: list(DEFAULT_EXPORT_FORMATS))
    """``html`` writes the page; every other format writes each report in that format."""


def _range(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The first and last local day of the run's partitions."""
    window = context.partition_key_range
    return date.fromisoformat(window.start), date.fromisoformat(window.end)


def _preview(frame: pd.DataFrame) -> dg.MetadataValue:
    """The first rows of a report as a markdown table."""
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    shown = frame.head(PREVIEW_ROWS).copy()
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column].dtype):
            shown[column] = shown[column].astype(str)
    return dg.MetadataValue.md(shown.to_markdown(index=False))


def _chart(svg: str) -> dg.MetadataValue:
    """A chart as markdown: an inline SVG image, or the note saying there was nothing to draw."""
    if not svg.startswith("<svg "):
        return dg.MetadataValue.md("_nothing to chart_")
    return dg.MetadataValue.md(f"![chart]({page.svg_data_uri(svg)})")


def _per_user(frame: pd.DataFrame, column: str) -> tuple[list[str], list[float]]:
    """``column`` summed per user, largest first, labelled with the user's name or id."""
    if frame.empty:
        return [], []
    names = frame.groupby("user_id")["user_name"].first()
    totals = frame.groupby("user_id")[column].sum().sort_values(ascending=False)
    labels = [page.user_label(names.get(user), user) for user in totals.index]
    return labels, [float(value) for value in totals]


def _per_day(frame: pd.DataFrame, first: date, last: date) -> tuple[list[str], list[float]]:
    """Rows per local day over the whole range (days without rows count 0)."""
    counts = frame.groupby("local_date").size() if len(frame) else pd.Series()
    days = pd.date_range(first, last, freq="D").date
    return [f"{day.day} {day:%b}" for day in days], [float(counts.get(day, 0)) for day in days]


def _charts(data: page.DashboardData) -> dict[str, Callable[[], str]]:
    """The chart of each report, drawn only when asked for."""
    return {
        "daily_call_volume": lambda: page.daily_volume_chart(data),
        "daily_call_volume_by_user": lambda: page.hbar_chart(
            *_per_user(data.volume_by_user, "total_calls"), page.INBOUND_COLOR, "Calls per user"
        ),
        "missed_calls": lambda: page.missed_rate_chart(data),
        "missed_calls_by_hour": lambda: page.heat_map(data),
        "missed_calls_by_user": lambda: page.hbar_chart(
            *_per_user(data.missed_by_user, "missed_calls"),
            page.MISSED_COLOR,
            "Missed inbound calls per user",
        ),
        "unreturned_missed_calls": lambda: page.bar_chart(
            *_per_day(data.unreturned, data.first, data.last),
            page.MISSED_COLOR,
            "Missed calls not called back, per day",
        ),
    }


def build_report_assets(
    partitions: dg.DailyPartitionsDefinition, events_key: dg.AssetKey
) -> list[dg.AssetsDefinition]:
    """The report tables (one asset, one transaction) and the export asset."""
    tz = partitions.timezone or "UTC"
    tables = "\n".join(f"- `reports.{name}`: {spec.description}" for name, spec in REPORTS.items())

    @dg.asset(
        key=REPORT_TABLES,
        deps=[events_key],
        group_name=GROUP,
        kinds={"duckdb"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"The report tables of the run's local days:\n{tables}",
    )
    def report_tables(
        context: dg.AssetExecutionContext, config: ReportsConfig, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        first, last = _range(context)
        with write_connection(warehouse) as conn:
            counts = materialize_reports(conn, first, last, tz, config.callback_hours)
            data = page.load_dashboard_data(conn, first, last)
            frames = {name: page.report_frame(data, name) for name in REPORTS}
        charts = _charts(data)
        metadata: dict[str, object] = {"first_day": first.isoformat(), "last_day": last.isoformat()}
        for name in REPORTS:
            metadata[f"{name}/rows"] = counts[name]
            metadata[f"{name}/preview"] = _preview(frames[name])
            metadata[f"{name}/chart"] = _chart(charts[name]())
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=EXPORT,
        group_name=GROUP,
        kinds={"html", "csv"},
        deps=[REPORT_TABLES],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description="The report page and report files of the run's days, named by the range.",
    )
    def export(
        context: dg.AssetExecutionContext, config: ExportConfig, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        first, last = _range(context)
        unknown = sorted(set(config.formats) - set(FORMATS))
        if unknown:
            raise dg.Failure(f"unknown export formats {unknown}; formats: {', '.join(FORMATS)}")
        folder = Path(config.directory)
        written: list[Path] = []
        with write_connection(warehouse) as conn:
            for fmt in config.formats:
                for name in [DASHBOARD] if fmt == "html" else list(REPORTS):
                    target = folder / export_file_name(name, first, last, fmt)
                    written.append(export_report(conn, name, first, last, fmt, target, tz=tz))
        for path in written:
            context.log.info(f"wrote {path}")
        return dg.MaterializeResult(
            metadata={
                "files": dg.MetadataValue.json([str(path) for path in written]),
                "directory": dg.MetadataValue.path(str(folder.resolve())),
                "first_day": first.isoformat(),
                "last_day": last.isoformat(),
            }
        )

    return [report_tables, export]
