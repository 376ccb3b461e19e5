"""The daily schedule: shortly after local midnight, sync yesterday and re-sync recent days.

When it ticks is a setting (``VIS_SCHEDULE_CRON``, 00:15 local by default), so a test can make
the daemon tick within a minute; the days a tick syncs depend only on the tick's local date.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from vis_pipeline.defs.jobs import SYNC_JOB, range_tags


def scheduled_days(tick: datetime, tz: str, resync_days: int, first_day: date) -> tuple[date, date]:
    """The days a tick at ``tick`` syncs: yesterday (local) and the ``resync_days`` before it."""
    yesterday = tick.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)
    first = max(first_day, yesterday - timedelta(days=resync_days))
    return first, yesterday


def build_daily_schedule(
    tz: str, resync_days: int, first_day: date, cron_schedule: str
) -> dg.ScheduleDefinition:
    """A schedule that asks for one run covering the recent days, keyed by the tick's date.

    The run key makes a second tick of the same local day (a cron more often than daily)
    launch nothing: the days it would sync were asked for already.
    """

    @dg.schedule(
        name="daily_sync",
        job_name=SYNC_JOB,
        cron_schedule=cron_schedule,
        execution_timezone=tz,
        description=f"Syncs yesterday and re-syncs the {resync_days} days before it.",
    )
    def daily_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        first, last = scheduled_days(context.scheduled_execution_time, tz, resync_days, first_day)
        if last < first:
            return dg.SkipReason(f"no day to sync before the first day {first_day}")
        return dg.RunRequest(run_key=f"daily-{last.isoformat()}", tags=range_tags(first, last))

    return daily_sync
