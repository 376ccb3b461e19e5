"""Warehouse maintenance in Dagster: a job that compacts the lake and a schedule that runs it.

Thin on purpose: the work is ``maintenance.compact_warehouse``; this module says when it runs
and what the run shows (the figures). It never runs beside a sync, in two ways: its runs carry
the warehouse writers' tag, which the run queue lets through one at a time (``dagster.yaml``),
and it opens the warehouse as every writer does (``open_writer``), waiting for a writer under
way where the catalog takes one at a time (a sync started outside Dagster, a drain).
"""

from datetime import timedelta

import dagster as dg

from vis_pipeline.defs.assets import WAREHOUSE_WRITE_TAGS
from vis_pipeline.defs.resources import WarehouseResource
from vis_pipeline.maintenance import Compaction, compact_warehouse
from vis_pipeline.settings import Settings

MAINTENANCE_JOB = "warehouse_maintenance"
"""The job that merges small files, expires old snapshots and deletes unread files."""

MAINTENANCE_OP = "compact_warehouse"
"""The job's one op (a job's op may not share its name)."""

MAINTENANCE_SCHEDULE = "warehouse_maintenance_schedule"
"""The schedule of the maintenance job (``VIS_MAINTENANCE_CRON``)."""


def compaction_metadata(done: Compaction) -> dict[str, object]:
    """What a maintenance run shows in Dagster: its figures (a folder not counted is omitted)."""
    return {key: value for key, value in done.as_dict().items() if value is not None}


def build_maintenance_job(settings: Settings) -> dg.JobDefinition:
    """The maintenance job: one op compacting the warehouse with the settings' retention."""
    retention = timedelta(days=settings.snapshot_retention_days)

    @dg.op(
        name=MAINTENANCE_OP,
        description=f"Merge small files; expire snapshots older than {retention.days} days.",
    )
    def compact_op(
        context: dg.OpExecutionContext, warehouse: WarehouseResource
    ) -> dict[str, object]:
        done = compact_warehouse(warehouse.location(), retention)
        metadata = compaction_metadata(done)
        context.log.info(", ".join(f"{key} {value}" for key, value in metadata.items()))
        context.add_output_metadata(metadata)
        return metadata

    @dg.job(
        name=MAINTENANCE_JOB,
        tags=WAREHOUSE_WRITE_TAGS,
        description="Compact the warehouse: merge small files, expire old snapshots.",
    )
    def warehouse_maintenance() -> None:
        compact_op()

    return warehouse_maintenance


def build_maintenance_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """The schedule of the maintenance job, at a quiet local hour (``VIS_MAINTENANCE_CRON``)."""
    return dg.ScheduleDefinition(
        name=MAINTENANCE_SCHEDULE,
        job_name=MAINTENANCE_JOB,
        cron_schedule=settings.maintenance_cron,
        execution_timezone=settings.timezone,
        description="Compacts the warehouse and expires snapshots older than "
        f"{settings.snapshot_retention_days} days.",
    )
