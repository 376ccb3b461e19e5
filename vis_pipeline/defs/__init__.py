"""The Dagster code location: assets, checks, the sync job, its schedule and the sensors; the
webhook path's drain job, sensor and upkeep schedule (``live.py``); the warehouse maintenance
job and its schedule (``maintenance.py``).

Definitions are built when Dagster loads the location (not at import), from the environment.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from vis_pipeline.defs.assets import account, users
from vis_pipeline.defs.daily_sync import build_sync_asset
from vis_pipeline.defs.freshness import build_freshness_sensor
from vis_pipeline.defs.jobs import build_export_job, build_sync_job
from vis_pipeline.defs.live import build_drain_job, build_drain_sensor, build_upkeep_schedule
from vis_pipeline.defs.maintenance import build_maintenance_job, build_maintenance_schedule
from vis_pipeline.defs.partitions import daily_partitions
from vis_pipeline.defs.reports import build_export_asset
from vis_pipeline.defs.resources import build_resources
from vis_pipeline.defs.schedules import build_daily_schedule
from vis_pipeline.defs.sensors import build_failure_sensor
from vis_pipeline.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything Dagster shows, for these settings."""
    partitions = daily_partitions(settings)
    sync_job = build_sync_job()
    drain_job = build_drain_job(settings)
    return dg.Definitions(
        assets=[
            account,
            users,
            build_sync_asset(partitions, settings.freshness_hour),
            build_export_asset(partitions),
        ],
        jobs=[sync_job, build_export_job(), drain_job, build_maintenance_job(settings)],
        schedules=[
            build_daily_schedule(
                settings.timezone,
                settings.resync_days,
                date.fromisoformat(settings.start_date),
                settings.schedule_cron,
            ),
            build_upkeep_schedule(settings),
            build_maintenance_schedule(settings),
        ],
        sensors=[
            build_freshness_sensor(settings.timezone, settings.freshness_hour, settings.start),
            build_failure_sensor(settings.alert_webhook_url, [sync_job, drain_job]),
            build_drain_sensor(settings),
        ],
        resources=build_resources(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The location as Dagster loads it: settings from the environment."""
    return build_definitions(Settings.from_env())
