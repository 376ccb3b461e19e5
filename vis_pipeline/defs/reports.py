"""Report assets: the report tables (materialised by the daily sync op) and the file exports.

Thin on purpose: the report tables come from ``vis_pipeline.reports``, the headline figures and
charts from ``vis_pipeline.dashboard`` (the same SQL as the page), the rows per day from
``day_figures`` and the files from ``vis_pipeline.exports``; this module turns them into
Dagster specs, events and metadata.

No ``from __future__ import annotations`` here: Dagster reads the config classes from the asset
functions' signatures, which must hold the classes themselves, not their names.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from pydantic import Field

from vis_pipeline.dashboard import charts
from vis_pipeline.dashboard.data import DashboardData, load_dashboard_data, report_frame
from vis_pipeline.dashboard.figures import HeadlineFigures
from vis_pipeline.dashboard.svg import svg_data_uri
from vis_pipeline.defs.assets import RUN_PREFIX
from vis_pipeline.defs.day_figures import report_rows_by_day
from vis_pipeline.defs.resources import WarehouseResource
from vis_pipeline.exports import DASHBOARD, FORMATS, export_file_name, export_report
from vis_pipeline.reports import REPORTS, materialize_reports

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
    return dg.MetadataValue.md(f"![chart]({svg_data_uri(svg)})")


REPORT_CHARTS: dict[str, Callable[[DashboardData], str]] = {
    "daily_call_volume": charts.daily_volume_chart,
    "daily_call_volume_by_user": charts.user_calls_chart,
    "missed_calls": charts.missed_rate_chart,
    "missed_calls_by_hour": charts.heat_map,
    "missed_calls_by_user": charts.user_missed_chart,
    "unreturned_missed_calls": charts.unreturned_per_day_chart,
}
"""The chart shown with each report's materialisation."""


def _headline(figures: HeadlineFigures) -> dict[str, object]:
    """The range's headline figures as metadata (``headline/<figure>``); empty rates left out."""
    return {
        f"headline/{name}": value for name, value in asdict(figures).items() if value is not None
    }


def report_tables_spec(
    partitions: dg.DailyPartitionsDefinition, events_key: dg.AssetKey
) -> dg.AssetSpec:
    """The report tables, as a spec of the daily sync op (skippable: see docs/dagster.md)."""
    tables = "\n".join(f"- `reports.{name}`: {spec.description}" for name, spec in REPORTS.items())
    return dg.AssetSpec(
        REPORT_TABLES,
        deps=[events_key],
        group_name=GROUP,
        kinds={"duckdb"},
        partitions_def=partitions,
        skippable=True,
        description=f"The report tables of each local day:\n{tables}",
    )


def _run_overview(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> dict[str, object]:
    """The run's whole range at a glance: headline figures, and each report's preview and chart."""
    data = load_dashboard_data(conn, first, last)
    overview: dict[str, object] = {"first_day": first.isoformat(), "last_day": last.isoformat()}
    overview.update(_headline(data.headline))
    for name in REPORTS:
        overview[f"{name}/preview"] = _preview(report_frame(data, name))
        overview[f"{name}/chart"] = _chart(REPORT_CHARTS[name](data))
    return {RUN_PREFIX + key: value for key, value in overview.items()}


def report_materializations(
    conn: duckdb.DuckDBPyConnection,
    days: Sequence[date],
    landed: Sequence[date],
    tz: str,
    callback_hours: int,
) -> Iterator[dg.AssetMaterialization]:
    """Recompute the report tables of ``days`` (one transaction), then one materialisation per
    day of ``landed``, each with that day's rows per table.

    A day whose events did not land is recomputed from what the warehouse holds but not
    materialised, so its partition shows it is missing.
    """
    first, last = days[0], days[-1]
    materialize_reports(conn, first, last, tz, callback_hours)
    rows = report_rows_by_day(conn, first, last)
    overview = _run_overview(conn, first, last) if landed else {}
    for day in landed:
        metadata: dict[str, object] = {f"{name}/rows": rows[day][name] for name in REPORTS}
        if day == landed[-1]:
            metadata.update(overview)
        yield dg.AssetMaterialization(REPORT_TABLES, partition=day.isoformat(), metadata=metadata)


def build_export_asset(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The export asset: the report page and files of a range of days."""
    tz = partitions.timezone or "UTC"

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
        context: dg.AssetExecutionContext, config: ExportConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        first, last = _range(context)
        unknown = sorted(set(config.formats) - set(FORMATS))
        if unknown:
            raise dg.Failure(f"unknown export formats {unknown}; formats: {', '.join(FORMATS)}")
        folder = Path(config.directory)
        written: list[Path] = []
        # Read-only: the files show the last committed state; no writer waits for them.
        with warehouse.get_connection() as conn:
            conn.begin()  # every file from one snapshot
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

    return export
