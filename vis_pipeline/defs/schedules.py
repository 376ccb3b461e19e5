"""The daily schedule: shortly after local midnight, sync yesterday and re-sync recent days."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from vis_pipeline.defs.jobs import SYNC_JOB, range_tags

DAILY_CRON = "15 0 * * *"
"""00:15 local: late enough that yesterday is over, early enough for morning reports."""


def scheduled_days(tick: datetime, tz: str, resync_days: int, first_day: date) -> tuple[date, date]:
    """The days a tick at ``tick`` syncs: yesterday (local) and the ``resync_days`` before it."""
    yesterday = tick.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)
    first = max(first_day, yesterday - timedelta(days=resync_days))
    return first, yesterday


def build_daily_schedule(tz: str, resync_days: int, first_day: date) -> dg.ScheduleDefinition:
    """A schedule that asks for one run covering the recent days, keyed by the tick's date."""

    @dg.schedule(
        name="daily_sync",
        job_name=SYNC_JOB,
        cron_schedule=DAILY_CRON,
        execution_timezone=tz,
        description=f"Syncs yesterday and re-syncs the {resync_days} days before it.",
    )
    def daily_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        first, last = scheduled_days(context.scheduled_execution_time, tz, resync_days, first_day)
        if last < first:
            return dg.SkipReason(f"no day to sync before the first day {first_day}")
        return dg.RunRequest(run_key=f"daily-{last.isoformat()}", tags=range_tags(first, last))

    return daily_sync
