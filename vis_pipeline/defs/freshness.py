"""Freshness: has yesterday's local day landed by the configured hour (VIS_FRESHNESS_HOUR)?

The rule is a plain function, :func:`freshness_of`. Dagster evaluates it in two places: in the
daily sync op whenever the check is selected (every sync run), and in a sensor between runs,
which records a result only when the verdict changes: a check evaluation reported without a run,
one event per change, so a missing day is flagged even when no run happens at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import dagster as dg

from vis_pipeline.defs.assets import EVENTS

FRESHNESS = "yesterday_landed"
"""Name of the freshness check of vis/events."""

FRESHNESS_SENSOR = "freshness_of_events"
"""Name of the sensor that evaluates the freshness check between runs."""

FRESHNESS_INTERVAL_SECONDS = 600
"""How often the sensor looks (a deadline is noticed within ten minutes)."""


@dataclass(frozen=True)
class Freshness:
    """The freshness verdict at one instant."""

    due: date | None
    """The latest local day that should have landed; None before the first day is due."""
    deadline: datetime
    """When ``due`` was due: the configured hour, local, on the day after it."""
    landed: bool
    """Whether ``due`` has a materialisation."""

    @property
    def passed(self) -> bool:
        """Fresh: the due day landed, or no day is due yet."""
        return self.landed or self.due is None

    @property
    def description(self) -> str:
        """The verdict in one sentence."""
        deadline = self.deadline.strftime("%Y-%m-%d %H:%M %Z")
        if self.due is None:
            return f"no day was due by {deadline} (before the first partition)"
        state = "has landed" if self.landed else "has NOT landed"
        return f"{self.due.isoformat()} {state}; it was due by {deadline}"

    @property
    def state(self) -> str:
        """What the sensor remembers between ticks, to report only a change."""
        return f"{self.due}:{self.passed}"


def due_day(now: datetime, tz: str, hour: int) -> tuple[date, datetime]:
    """The latest local day due by ``now``, and its deadline.

    Yesterday once today's deadline hour has passed; before it, the day before yesterday
    (yesterday is not late yet).
    """
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    deadline = datetime.combine(today, time(hour), zone)
    if now < deadline:
        deadline = datetime.combine(today - timedelta(days=1), time(hour), zone)
    return deadline.date() - timedelta(days=1), deadline


def freshness_of(
    now: datetime, tz: str, hour: int, first_day: date, landed: Callable[[date], bool]
) -> Freshness:
    """The verdict at ``now``; ``landed`` says whether a local day has been materialised."""
    due, deadline = due_day(now, tz, hour)
    if due < first_day:
        return Freshness(None, deadline, landed=False)
    return Freshness(due, deadline, landed(due))


def freshness_spec(tz: str, hour: int) -> dg.AssetCheckSpec:
    """The freshness check: one result for the asset, not per day."""
    return dg.AssetCheckSpec(
        FRESHNESS,
        asset=EVENTS,
        description=f"Yesterday's local day ({tz}) has landed by {hour:02d}:00 local time.",
    )


def partition_landed(instance: dg.DagsterInstance, day: date) -> bool:
    """Whether the events partition of ``day`` has been materialised (one indexed query)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=EVENTS, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return bool(records)


def freshness_now(instance: dg.DagsterInstance, tz: str, hour: int, first_day: date) -> Freshness:
    """The verdict now, from what ``instance`` has recorded."""
    return freshness_of(datetime.now(UTC), tz, hour, first_day, partial(partition_landed, instance))


def _metadata(verdict: Freshness) -> dict[str, object]:
    return {
        "due_day": verdict.due.isoformat() if verdict.due else None,
        "deadline": dg.MetadataValue.timestamp(verdict.deadline),
    }


def freshness_result(verdict: Freshness) -> dg.AssetCheckResult:
    """The verdict as the result of a check run inside a run."""
    return dg.AssetCheckResult(
        asset_key=EVENTS,
        check_name=FRESHNESS,
        passed=verdict.passed,
        description=verdict.description,
        metadata=_metadata(verdict),
    )


def freshness_evaluation(verdict: Freshness) -> dg.AssetCheckEvaluation:
    """The verdict as a check evaluation a sensor reports without a run."""
    return dg.AssetCheckEvaluation(
        asset_key=EVENTS,
        check_name=FRESHNESS,
        passed=verdict.passed,
        description=verdict.description,
        metadata=_metadata(verdict),
    )


def build_freshness_sensor(tz: str, hour: int, first_day: date) -> dg.SensorDefinition:
    """A sensor that records the freshness check's verdict whenever it changes."""

    @dg.sensor(
        name=FRESHNESS_SENSOR,
        minimum_interval_seconds=FRESHNESS_INTERVAL_SECONDS,
        description=f"Checks every {FRESHNESS_INTERVAL_SECONDS // 60} minutes that yesterday's "
        f"local day has landed by {hour:02d}:00 ({tz}); records the {FRESHNESS} check when "
        "its verdict changes.",
    )
    def freshness_of_events(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        verdict = freshness_now(context.instance, tz, hour, first_day)
        if verdict.state == context.cursor:
            return dg.SensorResult(skip_reason=f"unchanged: {verdict.description}")
        return dg.SensorResult(asset_events=[freshness_evaluation(verdict)], cursor=verdict.state)

    return freshness_of_events
