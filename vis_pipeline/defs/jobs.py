"""Jobs: the one that syncs the warehouse, and the tags that make a range of days one run."""

from __future__ import annotations

from datetime import date

import dagster as dg

from vis_pipeline.defs.assets import ACCOUNT, EVENTS, USERS, WAREHOUSE_WRITE_TAGS
from vis_pipeline.defs.reports import EXPORT, REPORT_TABLES

SYNC_JOB = "sync_vis"
"""Name of the job that refreshes the account, users, events and reports of a range of days."""

EXPORT_JOB = "export_reports"
"""Name of the job that writes the report files of a range of days to the exports folder."""


def build_sync_job() -> dg.UnresolvedAssetJobDefinition:
    """The sync job: dimensions, then the events and reports of the days of the run, each day's
    partition on its own, and every check of the events."""
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.assets(ACCOUNT, USERS, EVENTS, REPORT_TABLES),
        tags=WAREHOUSE_WRITE_TAGS,
        description="Sync local days of VIS events (and account, users, reports) into DuckDB.",
    )


def build_export_job() -> dg.UnresolvedAssetJobDefinition:
    """The export job: report files of the days of the run, named by the range."""
    return dg.define_asset_job(
        EXPORT_JOB,
        selection=dg.AssetSelection.assets(EXPORT),
        tags=WAREHOUSE_WRITE_TAGS,
        description="Write the report page and files of a range of days to the exports folder.",
    )


RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
"""Dagster's run tags for the first and last partition of a run of many partitions."""

PARTITION_TAG = "dagster/partition"
"""Dagster's run tag for the partition of a run of one partition."""


def range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make days ``first`` to ``last`` a single run of the partitioned job."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
