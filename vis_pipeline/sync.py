"""Syncing local days of events from the API into the warehouse: plain functions, no Dagster.

The Dagster events asset and the benchmark's library path both call :func:`sync_days`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from time import monotonic
from zoneinfo import ZoneInfo

import duckdb

from vis_pipeline.batch import NormalizedBatch
from vis_pipeline.errors import VISDaysFailed
from vis_pipeline.extract import WindowExtractor, WindowFailure, WindowResult
from vis_pipeline.extract_process import ExtractionProcess
from vis_pipeline.progress import PROGRESS_LOGGER
from vis_pipeline.warehouse import (
    WindowSync,
    days_landed_since_sync,
    latest_syncs,
    load_threads,
    load_window,
    record_failed,
    record_settled,
    retry_on_conflict,
    settled_windows,
)

PROGRESS = logging.getLogger(PROGRESS_LOGGER)

OpenWarehouse = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
"""Opens a write connection to the warehouse for the run (and closes it at the end)."""


@dataclass(frozen=True)
class DaySync:
    """What syncing one local day did."""

    local_date: date
    status: str
    api_count: int
    loaded: int
    rejected: int
    pages: int
    requests: int
    retries: int
    seconds: float
    repair_requests: int = 0
    """Requests spent repairing pieces of the day that fell short of their count."""
    error: str | None = None
    """Why the day failed (status 'failed'): nothing of it was loaded."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly copy."""
        return {**asdict(self), "local_date": self.local_date.isoformat()}


def raise_for_failed(synced: Sequence[DaySync]) -> None:
    """Raise VISDaysFailed when any day of ``synced`` failed."""
    failed = [
        (item.local_date, item.error or "failed") for item in synced if item.status == "failed"
    ]
    if failed:
        raise VISDaysFailed(failed)


def local_day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """The instants [start, end) of a local calendar day (23 or 25 hours on a DST change)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def sync_days(
    extractor: WindowExtractor,
    open_warehouse: OpenWarehouse,
    days: Sequence[date],
    tz: str,
    *,
    full: bool = False,
    run_id: str | None = None,
) -> list[DaySync]:
    """Sync each local day of ``days``: settled days cost one count, the rest are fetched.

    A day whose events cannot be read whole (the API's count is never met) is recorded as
    failed and the run goes on with the other days; see :func:`raise_for_failed`.
    One connection serves the whole run (opening and closing a DuckDB file per day costs a
    checkpoint each time); each fetched day is still its own transaction, so a run killed
    mid-way leaves whole days behind it and re-running is always safe.
    """
    windows = {day: local_day_window(day, tz) for day in days}
    # The extraction process starts first: its start-up overlaps opening the warehouse.
    with (
        _window_source(extractor) as source,
        open_warehouse() as conn,
        load_threads(conn),
    ):
        settled = [] if full else _settled_days(extractor, conn, windows, run_id)
        settled_days = {item.local_date for item in settled}
        to_fetch = [day for day in days if day not in settled_days]
        # Normalising runs on the extraction's side, so this thread only writes: a window is
        # loaded while the next one is fetched and normalised.
        prepared = source([windows[day] for day in to_fetch], partial(_normalize_window, tz=tz))
        progress = _Progress(len(days), len(settled))
        loaded = [
            progress.done(_load_day(conn, day, ready, run_id))
            for day, ready in zip(to_fetch, prepared, strict=True)
        ]
    return sorted(settled + loaded, key=lambda item: item.local_date)


class _Progress:
    """Says after each day how far the sync is (see vis_pipeline.progress; quiet by default)."""

    def __init__(self, days: int, settled: int) -> None:
        self._days = days
        self._settled = settled
        self._fetched = 0
        self._events = 0
        self._began = monotonic()

    def done(self, day: DaySync) -> DaySync:
        """Count ``day`` as finished and say so; returns it."""
        self._fetched += 1
        self._events += day.loaded
        elapsed = max(monotonic() - self._began, 1e-6)
        finished = self._settled + self._fetched
        eta = elapsed / self._fetched * (self._days - finished)
        PROGRESS.info(
            "%d/%d days, %s events, %s events/s, about %d:%02d left (%s %s)",
            finished,
            self._days,
            f"{self._events:,}",
            f"{self._events / elapsed:,.0f}",
            eta // 60,
            eta % 60,
            day.local_date,
            day.status,
        )
        return day


WindowSource = Callable[
    [list[tuple[datetime, datetime]], Callable[[WindowResult], "_NormalizedWindow"]],
    Iterator["_NormalizedWindow"],
]
"""Extracts windows in order, passing each result through a function (``iter_windows``)."""


@contextmanager
def _window_source(extractor: WindowExtractor) -> Iterator[WindowSource]:
    """Where windows are extracted: a child process, started now, when the client can be
    rebuilt there; else this process (a client on a caller's own transport).

    The HTTP work and the loading then each have an interpreter, and a GIL, of their own.
    """
    settings = extractor.client.settings
    if settings is None:
        yield extractor.iter_windows
        return
    with ExtractionProcess(settings, extractor.options) as process:
        yield process.iter_windows


@dataclass(frozen=True)
class _NormalizedWindow:
    """A fetched window ready to load: its extraction stats and its normalised batch."""

    result: WindowResult
    batch: NormalizedBatch


def _normalize_window(result: WindowResult, tz: str) -> _NormalizedWindow:
    """Normalise a fetched window; its raw records are dropped once they are in the batch."""
    # Imported here: pandas takes a third of a second to import, which a sync with nothing to
    # fetch never needs, and which a sync that fetches pays while its first window downloads.
    from vis_pipeline.normalize import normalize_events

    batch = normalize_events(result.events, result.rejected, tz, datetime.now(UTC))
    return _NormalizedWindow(replace(result, events=[], rejected=[]), batch)


def _load_day(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    ready: _NormalizedWindow | WindowFailure,
    run_id: str | None,
) -> DaySync:
    """Write one normalised day in one transaction (or record that it failed)."""
    if isinstance(ready, WindowFailure):
        return _record_failed_day(conn, day, ready, run_id)
    result, batch = ready.result, ready.batch
    stats = result.stats
    window = WindowSync(
        local_date=day,
        window_start=result.start,
        window_end=result.end,
        api_count=stats.window_count,
        api_margin_count=stats.api_count,
        pages=stats.pages,
        requests=stats.requests,
        retries=stats.retries,
        seconds=stats.seconds,
        run_id=run_id,
    )
    # Writers on a PostgreSQL catalog run at once: a day whose commit conflicts with another
    # writer's is loaded again, whole, on the snapshot that writer made.
    load = retry_on_conflict(lambda: load_window(conn, batch, window))
    return DaySync(
        local_date=day,
        status="loaded",
        api_count=stats.window_count,
        loaded=load.loaded,
        rejected=load.rejected,
        pages=stats.pages,
        requests=stats.requests,
        retries=stats.retries,
        seconds=stats.seconds,
        repair_requests=stats.repair_requests,
    )


def _record_failed_day(
    conn: duckdb.DuckDBPyConnection, day: date, failure: WindowFailure, run_id: str | None
) -> DaySync:
    """Append the day's 'failed' sync row; what the warehouse held of it stays as it was."""
    error = failure.error
    record_failed(
        conn,
        WindowSync(
            local_date=day,
            window_start=failure.start,
            window_end=failure.end,
            api_count=error.api_count,
            pages=0,
            requests=0,
            retries=0,
            seconds=0.0,
            run_id=run_id,
        ),
    )
    return DaySync(
        local_date=day,
        status="failed",
        api_count=error.api_count,
        loaded=0,
        rejected=0,
        pages=0,
        requests=0,
        retries=0,
        seconds=0.0,
        error=str(error),
    )


def _settled_days(
    extractor: WindowExtractor,
    conn: duckdb.DuckDBPyConnection,
    windows: dict[date, tuple[datetime, datetime]],
    run_id: str | None,
) -> list[DaySync]:
    """The days whose API count and stored events show nothing new, recorded as settled.

    A day holding events landed by webhooks since its last sync is fetched again whatever the
    counts say, so the webhooks' rows are always checked against the API. Only days synced
    before can be settled, so only they cost a count request; the requests go
    out together and the warehouse is asked in a fixed number of queries.
    """
    previous = latest_syncs(conn, list(windows))
    counts = extractor.count_windows(windows[day] for day in previous)
    settled = settled_windows(conn, previous, dict(zip(previous, counts, strict=True)))
    # Events landed by webhooks since a day's last sync were never checked against the count.
    for day in days_landed_since_sync(conn, list(settled)):
        del settled[day]
    record_settled(
        conn,
        [
            replace(previous, pages=0, requests=1, retries=0, seconds=0.0, run_id=run_id)
            for previous in settled.values()
        ],
    )
    return [
        DaySync(
            local_date=day,
            status="settled",
            api_count=previous.api_count,
            loaded=0,
            rejected=0,
            pages=0,
            requests=1,
            retries=0,
            seconds=0.0,
        )
        for day, previous in settled.items()
    ]
