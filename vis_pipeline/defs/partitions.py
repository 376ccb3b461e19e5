"""Daily partitions: one per local day in the reporting time zone."""

from __future__ import annotations

import dagster as dg

from vis_pipeline.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Local days from VIS_START_DATE up to and including today (still in progress)."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.start_date, timezone=settings.timezone, end_offset=1
    )
