"""The run-failure sensor: a failed sync is logged and, when VIS_ALERT_WEBHOOK_URL is set,
POSTed there as a small JSON object.

What the alert says (:func:`failure_alert`) is a plain function of the run's facts; the sensor
only gathers them from Dagster's records and sends the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from urllib.parse import urlsplit

import dagster as dg
import httpx

# Not exported at Dagster's top level: the error a step failure event carries.
from dagster._utils.error import SerializableErrorInfo

from vis_pipeline.defs.assets import EVENTS
from vis_pipeline.defs.jobs import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from vis_pipeline.sync import days_between

FAILURE_SENSOR = "sync_failure_alert"
"""Name of the sensor that reports failed sync runs."""

WEBHOOK_TIMEOUT_SECONDS = 10.0
"""How long the webhook may take to answer before the alert counts as undelivered."""


class AlertNotDelivered(RuntimeError):
    """The webhook refused the alert or could not be reached (the sensor's tick fails)."""


def days_of_run(tags: Mapping[str, str]) -> list[date]:
    """The local days a run was asked to sync, from its partition tags (none: unpartitioned)."""
    first = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
    last = tags.get(RANGE_END_TAG) or tags.get(PARTITION_TAG)
    if not first or not last:
        return []
    return days_between(date.fromisoformat(first), date.fromisoformat(last))


def innermost_message(error: SerializableErrorInfo) -> str:
    """The message that says what went wrong: the project's own error, else the root cause.

    Dagster wraps a step's exception in errors of its own; the VIS error names the failed days.
    """
    while error.cause is not None and not error.cls_name.startswith("VIS"):
        error = error.cause
    return error.message.strip()


def failure_alert(
    job_name: str,
    run_id: str,
    days: Sequence[date],
    materialized: Iterable[str],
    errors: Sequence[str],
) -> dict[str, object]:
    """The alert of a failed run: which days did not land and why, as JSON-ready values."""
    landed = set(materialized)
    return {
        "source": "vis-pipeline",
        "event": "run_failed",
        "job": job_name,
        "run_id": run_id,
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[-1].isoformat() if days else None,
        "days_not_landed": [day.isoformat() for day in days if day.isoformat() not in landed],
        "error": "; ".join(errors) or "the run failed before any step",
    }


def alert_line(alert: dict[str, object]) -> str:
    """The alert as one log line."""
    missing = alert["days_not_landed"] or "none"
    return (
        f"{alert['job']} run {alert['run_id']} failed; days not landed: {missing}; "
        f"error: {alert['error']}"
    )


def post_alert(url: str, alert: dict[str, object]) -> None:
    """POST ``alert`` as JSON to ``url``; AlertNotDelivered unless it answers 2xx.

    The message names the webhook's host only: a chat webhook's path is its credential.
    """
    host = urlsplit(url).netloc
    try:
        answer = httpx.post(url, json=alert, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise AlertNotDelivered(f"alert webhook at {host}: {type(exc).__name__}") from None
    if not answer.is_success:
        raise AlertNotDelivered(f"alert webhook at {host} answered {answer.status_code}")


def _materialized_days(context: dg.RunFailureSensorContext) -> list[str]:
    """The events partitions the failed run did materialise."""
    records = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    events = (record.event_log_entry.dagster_event for record in records)
    return [
        str(event.partition)
        for event in events
        if event is not None and event.asset_key == EVENTS and event.partition
    ]


def build_failure_sensor(
    webhook_url: str, monitored_jobs: Sequence[dg.UnresolvedAssetJobDefinition]
) -> dg.SensorDefinition:
    """The sensor that reports each failed run of ``monitored_jobs`` (empty URL: log only)."""
    where = "logs it and POSTs it to VIS_ALERT_WEBHOOK_URL" if webhook_url else "logs it"

    @dg.run_failure_sensor(
        name=FAILURE_SENSOR,
        monitored_jobs=list(monitored_jobs),
        description=f"When a sync run fails, {where}: the days that did not land and why.",
    )
    def sync_failure_alert(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        errors = [
            f"{event.step_key}: {innermost_message(event.step_failure_data.error)}"
            for event in context.get_step_failure_events()
            if event.step_failure_data.error is not None
        ]
        alert = failure_alert(
            run.job_name, run.run_id, days_of_run(run.tags), _materialized_days(context), errors
        )
        context.log.error(alert_line(alert))
        if webhook_url:
            post_alert(webhook_url, alert)

    return sync_failure_alert
