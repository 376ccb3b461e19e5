"""The daily sync op: one run syncs a range of local days and materialises each day's partition
of the events and of the report tables with that day's own figures, and evaluates the checks.

Why one op for all of that (docs/dagster.md): a single-run backfill of an ordinary asset stores
the run's totals under every day. Yielding one ``AssetMaterialization`` per day, and no output,
from specs marked ``skippable`` gives each day its own record; but Dagster then skips every step
downstream of the op in the same run, so whatever must follow the events in a sync run (the
report tables, the checks) is part of the op. ``can_subset`` lets the UI run any part alone: the
report tables of some days, or only the checks.

Thin on purpose: every part calls plain functions; this module only orders them.
"""

from collections.abc import Iterator, Sequence
from datetime import date

import dagster as dg
import duckdb

from vis_pipeline import warehouse as wh
from vis_pipeline.defs.assets import EVENTS, events_materializations, events_spec
from vis_pipeline.defs.checks import (
    RECONCILED,
    TABLE_CHECKS,
    latest_materializations,
    reconciled_spec,
    reconciliation_evaluations,
    table_check_results,
    table_check_specs,
)
from vis_pipeline.defs.freshness import FRESHNESS, freshness_now, freshness_result, freshness_spec
from vis_pipeline.defs.reports import REPORT_TABLES, report_materializations, report_tables_spec
from vis_pipeline.defs.resources import VISClientResource, WarehouseResource, write_connection
from vis_pipeline.reports import DEFAULT_CALLBACK_HOURS
from vis_pipeline.sync import DaySync, raise_for_failed, sync_days

SYNC_OP = "vis__events"
"""The op's name: run config addresses it (``ops.vis__events.config.full``), as the CLI does."""

SyncEvent = dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.AssetCheckResult
"""What the op yields: per-day materialisations and check results, never an output."""


class SyncConfig(dg.Config):
    """Run config of the daily sync op."""

    full: bool = False
    """Fetch every day again, even the settled ones."""
    callback_hours: int = DEFAULT_CALLBACK_HOURS
    """How long after a missed call a callback still counts as returning it (reports)."""


def _summary(synced: Sequence[DaySync]) -> str:
    """The run's one log line (not one per day: each line is a write to Dagster's event log)."""
    kinds = (wh.STATUS_LOADED, wh.STATUS_SETTLED, wh.STATUS_FAILED)
    statuses = {status: sum(i.status == status for i in synced) for status in kinds}
    counts = ", ".join(f"{n} {status}" for status, n in statuses.items() if n)
    return (
        f"{len(synced)} days ({counts}): {sum(i.loaded for i in synced)} events loaded, "
        f"{sum(i.rejected for i in synced)} rejected"
    )


def build_sync_asset(
    partitions: dg.DailyPartitionsDefinition, freshness_hour: int
) -> dg.AssetsDefinition:
    """The daily sync op for these partitions (their time zone is the reporting zone)."""
    tz = partitions.timezone or "UTC"
    first_day = partitions.start.date()

    @dg.multi_asset(
        name=SYNC_OP,
        specs=[events_spec(partitions), report_tables_spec(partitions, EVENTS)],
        check_specs=[
            reconciled_spec(partitions),
            *table_check_specs(),
            freshness_spec(tz, freshness_hour),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=True,
    )
    def vis__events(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        vis: VISClientResource,
        warehouse: WarehouseResource,
    ) -> Iterator[SyncEvent]:
        assets = context.selected_asset_keys
        checks = {key.name for key in context.selected_asset_check_keys}
        # An unpartitioned check run alone (from the UI) has no days.
        partitioned = bool(assets) or RECONCILED in checks
        days = [date.fromisoformat(key) for key in context.partition_keys] if partitioned else []
        synced: list[DaySync] = []
        if EVENTS in assets:
            with vis.get_extractor() as extractor:
                synced = sync_days(
                    extractor,
                    lambda: write_connection(warehouse),
                    days,
                    tz,
                    full=config.full,
                    run_id=context.run.run_id,
                )
            context.log.info(_summary(synced))
        with write_connection(warehouse) as conn:
            yield from _materialize(context, conn, days, synced, config.callback_hours, tz)
            yield from table_check_results(conn, checks & TABLE_CHECKS.keys())
        if FRESHNESS in checks:
            yield freshness_result(freshness_now(context.instance, tz, freshness_hour, first_day))
        # The days that could be read are committed and materialised; a day that could not
        # fails the run, by name.
        raise_for_failed(synced)

    return vis__events


def _materialize(
    context: dg.AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    days: list[date],
    synced: list[DaySync],
    callback_hours: int,
    tz: str,
) -> Iterator[SyncEvent]:
    """As selected: each day's events partition, each day's count check, each day's report
    partition."""
    assets = context.selected_asset_keys
    checks = {key.name for key in context.selected_asset_check_keys}
    failed = {i.local_date: i.error or "failed" for i in synced if i.status == wh.STATUS_FAILED}
    reconciliation = wh.reconcile(conn, days) if EVENTS in assets or RECONCILED in checks else []
    if EVENTS in assets:
        yield from events_materializations(conn, synced, reconciliation)
    if RECONCILED in checks:
        # After the materialisations: each day's result points at the one it checked.
        targets = latest_materializations(context.instance, EVENTS, [d.isoformat() for d in days])
        yield from reconciliation_evaluations(reconciliation, failed, targets)
    if REPORT_TABLES in assets:
        landed = [day for day in days if day not in failed]
        yield from report_materializations(conn, days, landed, tz, callback_hours)
