"""The webhook path in Dagster: a sensor that drains the spool, a schedule that keeps the
subscription alive and catches up on what it missed.

Thin on purpose: the drain is ``live.drain_spool`` and the upkeep ``subscriptions.upkeep``;
this module only says when they run and what they tell Dagster (counts, never a key or a body).

- The sensor ``webhook_spool`` looks at the spool every ``VIS_DRAIN_INTERVAL_SECONDS``; when
  something is spooled and no drain run is queued or running, it asks for a run of
  ``drain_webhook_spool``, which merges the deliveries into the warehouse and recomputes the
  reports of the days they touched. The run queues with the other warehouse writers.
- The schedule ``webhook_upkeep`` (``VIS_WEBHOOK_UPKEEP_CRON``) renews each subscription due
  within ``VIS_WEBHOOK_RENEW_HOURS``, renews one the API marked failed or let expire, subscribes
  again where the API forgot it, and for each of the last three asks for a run of the sync job
  over the local days it may have missed deliveries on.
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from vis_pipeline.defs.assets import WAREHOUSE_WRITE_TAGS
from vis_pipeline.defs.jobs import SYNC_JOB, range_tags
from vis_pipeline.defs.resources import VISClientResource, WarehouseResource, write_connection
from vis_pipeline.live import Drained, drain_spool
from vis_pipeline.settings import Settings
from vis_pipeline.spool import Spool, spool_folder
from vis_pipeline.subscriptions import Upkept, upkeep

DRAIN_JOB = "drain_webhook_spool"
"""The job that drains the spool into the warehouse."""

DRAIN_OP = "drain_spool"
"""The job's one op (a job's op may not share its name)."""

DRAIN_SENSOR = "webhook_spool"
"""The sensor that asks for a drain when something is spooled."""

UPKEEP_SCHEDULE = "webhook_upkeep"
"""The schedule that renews, re-subscribes and catches up."""

_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def drained_metadata(drained: Drained) -> dict[str, object]:
    """What a drain run shows in Dagster: counts and days only."""
    return {
        "deliveries": drained.deliveries,
        "events": drained.events,
        "inserted": drained.inserted,
        "stale": drained.stale,
        "rejected": drained.rejected,
        "days": ", ".join(day.isoformat() for day in drained.days) or "none",
    }


def build_drain_job(settings: Settings) -> dg.JobDefinition:
    """The drain job: one op calling ``drain_spool`` on the settings' spool."""
    folder = spool_folder(settings.webhook_path)
    tz = settings.timezone

    @dg.op(name=DRAIN_OP, description="Spooled webhook deliveries -> vis.events; reports.")
    def drain(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> dict[str, object]:
        drained = drain_spool(Spool(folder), lambda: write_connection(warehouse), tz)
        metadata = drained_metadata(drained)
        context.log.info(", ".join(f"{key} {value}" for key, value in metadata.items()))
        context.add_output_metadata(metadata)
        return metadata

    @dg.job(name=DRAIN_JOB, tags=WAREHOUSE_WRITE_TAGS, description="Drain the webhook spool.")
    def drain_webhook_spool() -> None:
        drain()

    return drain_webhook_spool


def build_drain_sensor(settings: Settings) -> dg.SensorDefinition:
    """The sensor asking for a drain run when the spool holds something new.

    It names its job rather than holding it: Dagster rebuilds a sensor that holds a job
    needing resources, and warns about it on every load of the location.
    """
    folder = spool_folder(settings.webhook_path)

    @dg.sensor(
        name=DRAIN_SENSOR,
        job_name=DRAIN_JOB,
        minimum_interval_seconds=settings.drain_interval_seconds,
        description="Asks for a drain run when the webhook spool holds deliveries.",
    )
    def webhook_spool(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        pending = Spool(folder).pending_bytes()
        if not pending:
            return dg.SkipReason("nothing spooled")
        under_way = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=DRAIN_JOB, statuses=_UNFINISHED), limit=1
        )
        if under_way:
            return dg.SkipReason("a drain run is queued or running")
        return dg.RunRequest(tags={"vis/spooled_bytes": str(pending)})

    return webhook_spool


def gap_days(gap: tuple[int, int], tz: str, first_day: date) -> tuple[date, date]:
    """The local days of ``gap`` ([from, to] in epoch ms), from ``first_day`` on."""
    zone = ZoneInfo(tz)
    first, last = (datetime.fromtimestamp(ms / 1000, zone).date() for ms in gap)
    return max(first, first_day), max(last, first_day)


def catch_up_requests(done: Sequence[Upkept], tz: str, first_day: date) -> list[dg.RunRequest]:
    """One sync run per subscription that may have missed deliveries, over its gap's days."""
    requests = []
    for item in done:
        if item.gap is None:
            continue
        first, last = gap_days(item.gap, tz, first_day)
        key = f"catch-up-{item.webhook_id}-{item.gap[1]}"
        requests.append(dg.RunRequest(run_key=key, tags=range_tags(first, last)))
    return requests


def build_upkeep_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """The schedule keeping the recorded subscriptions alive, catching up where they lapsed."""
    home, tz, first_day = settings.webhook_path, settings.timezone, settings.start
    margin = timedelta(hours=settings.webhook_renew_hours)

    @dg.schedule(
        name=UPKEEP_SCHEDULE,
        job_name=SYNC_JOB,
        cron_schedule=settings.webhook_upkeep_cron,
        execution_timezone=tz,
        description="Renews the webhook before it expires, renews or re-subscribes one that "
        "failed, expired or was purged, and syncs the days it missed.",
    )
    def webhook_upkeep(
        context: dg.ScheduleEvaluationContext, vis: VISClientResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        with vis.get_client() as client:
            done = upkeep(client, home, context.scheduled_execution_time, margin)
        for item in done:
            if item.action != "healthy":
                context.log.info(f"webhook {item.webhook_id} {item.action} ({item.reason})")
        requests = catch_up_requests(done, tz, first_day)
        if requests:
            return requests
        return dg.SkipReason(f"{len(done)} subscriptions, none lapsed")

    return webhook_upkeep
