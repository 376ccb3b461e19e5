"""The Dagster code location: assets, checks, the sync job and its schedule.

Definitions are built when Dagster loads the location (not at import), from the environment.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from vis_pipeline.defs.assets import EVENTS, account, build_events_asset, users
from vis_pipeline.defs.checks import build_checks
from vis_pipeline.defs.jobs import build_export_job, build_sync_job
from vis_pipeline.defs.partitions import daily_partitions
from vis_pipeline.defs.reports import build_report_assets
from vis_pipeline.defs.resources import build_resources
from vis_pipeline.defs.schedules import build_daily_schedule
from vis_pipeline.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything Dagster shows, for these settings."""
    partitions = daily_partitions(settings)
    return dg.Definitions(
        assets=[
            account,
            users,
            build_events_asset(partitions),
            *build_report_assets(partitions, EVENTS),
        ],
        asset_checks=build_checks(),
        jobs=[build_sync_job(), build_export_job()],
        schedules=[
            build_daily_schedule(
                settings.timezone, settings.resync_days, date.fromisoformat(settings.start_date)
            )
        ],
        resources=build_resources(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The location as Dagster loads it: settings from the environment."""
    return build_definitions(Settings.from_env())
