"""Jobs: the one that syncs the warehouse, and the tags that make a range of days one run."""

from __future__ import annotations

from datetime import date

import dagster as dg

from vis_pipeline.defs.assets import ACCOUNT, EVENTS, USERS, WAREHOUSE_WRITE_TAGS

SYNC_JOB = "sync_vis"
"""Name of the job that refreshes the account, users and events of a range of days."""


def build_sync_job() -> dg.UnresolvedAssetJobDefinition:
    """The sync job: dimensions, then events, for the days of the run."""
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.assets(ACCOUNT, USERS, EVENTS),
        tags=WAREHOUSE_WRITE_TAGS,
        description="Sync local days of VIS events (and the account and users) into DuckDB.",
    )


def range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make days ``first`` to ``last`` a single run of the partitioned job."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
