"""The Dagster daemon for real: a schedule tick and overlapping backfills, through the run queue.

``dagster-daemon run`` and ``dagster-webserver`` run as the processes a deployment runs, on a
temporary DAGSTER_HOME with the project's instance settings (the queue and its ``vis/warehouse``
limit), against a simulator. The schedule's cron is a setting, so here it ticks every minute;
the schedule is turned on and the backfills launched through the webserver's GraphQL, as the UI
does. What the runs wrote is compared with the simulator's truth, and the days a tick must sync
are computed here from the tick's instant, without the project's code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from dagster_processes import (
    SCHEDULE,
    GraphQL,
    Service,
    clean_environment,
    daemon,
    event_time,
    event_types,
    free_port,
    migrate_instance,
    seed_home,
    wait_for,
    webserver,
)
from helpers import assert_same_events, expected_events, warehouse_events

from vis_pipeline import warehouse as wh
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

pytestmark = pytest.mark.slow

TZ = "Asia/Kathmandu"
"""A zone whose local days never start at a UTC midnight (UTC+05:45, no daylight saving)."""

UTC_OFFSET = timedelta(hours=5, minutes=45)
"""Kathmandu's offset, written down here so the tick's local day is computed without zoneinfo."""

RESYNC_DAYS = 2
DAYS = 5
STARTUP_TIMEOUT = 90.0
TICK_TIMEOUT = 150.0
"""A tick comes at the next minute, then the queue, then the run: well under this."""
BACKFILL_TIMEOUT = 180.0
LOCK_ERRORS = ("Could not set lock", "WarehouseBusy", "Conflicting lock")
"""What DuckDB and the project's lock say when two writers collide."""


@dataclass
class Deployment:
    """The daemon, the webserver and the simulator they sync from."""

    sim: SimulatorProcess
    warehouse: Path
    graphql: GraphQL
    services: list[Service]
    first_day: date


def today_in_kathmandu() -> date:
    return (datetime.now(UTC) + UTC_OFFSET).date()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("daemon")
    first_day = today_in_kathmandu() - timedelta(days=DAYS)
    options = SimulatorOptions(
        seed=17, start=first_day.isoformat(), days=DAYS, calls_per_day=150, users=4, tz=TZ
    )
    with SimulatorProcess(options) as sim:
        warehouse = folder / "warehouse.sqlite"
        env = clean_environment(
            VIS_BASE_URL=sim.base_url,
            VIS_ACCESS_TOKEN=sim.token,
            VIS_TIMEZONE=TZ,
            VIS_START_DATE=first_day.isoformat(),
            VIS_WAREHOUSE=str(warehouse),
            VIS_RESYNC_DAYS=str(RESYNC_DAYS),
            VIS_SCHEDULE_CRON="* * * * *",
        )
        home = seed_home(folder / "dagster_home")
        migrate_instance(home, env)
        port = free_port()
        logs = folder / "logs"
        with (
            daemon(home, folder, env, logs) as daemon_process,
            webserver(home, folder, env, logs, port) as web,
        ):
            graphql = GraphQL(f"http://127.0.0.1:{port}")
            services = [daemon_process, web]
            wait_for(
                graphql.location_loaded,
                timeout=STARTUP_TIMEOUT,
                what="the webserver to load the code location",
                services=services,
            )
            yield Deployment(sim, warehouse, graphql, services, first_day)
            graphql.close()


def truth_of_days(sim: SimulatorProcess, first: date, last: date) -> pd.DataFrame:
    """What ``vis.events`` must hold for local days ``first``..``last``, from the simulator."""
    start = datetime.combine(first, clock(0), ZoneInfo(TZ))
    end = datetime.combine(last + timedelta(days=1), clock(0), ZoneInfo(TZ))
    truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return expected_events(truth, TZ)


def events_of_days(warehouse: Path, days: set[date]) -> pd.DataFrame:
    events = warehouse_events(warehouse)
    return events[events["local_date"].isin(days)].reset_index(drop=True)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def days_of_run(warehouse: Path, run_id: str) -> set[date]:
    """The local days whose sync the run recorded in the warehouse."""
    with wh.connect(warehouse, read_only=True) as conn:
        return {date.fromisoformat(str(day["local_date"])) for day in wh.run_days(conn, run_id)}


def assert_no_lock_error(deployment: Deployment, run_id: str) -> None:
    events = deployment.graphql.run_events(run_id)
    assert "ExecutionStepFailureEvent" not in event_types(events)
    messages = [str(event.get("message") or "") for event in events]
    collisions = [m for m in messages if any(error in m for error in LOCK_ERRORS)]
    assert not collisions, collisions


def scheduled_run(deployment: Deployment, since: float) -> dict | None:
    """The schedule's run once it has finished, if the daemon launched one after ``since``."""
    for run in deployment.graphql.runs():
        scheduled = run["tags"].get("dagster/schedule_name") == SCHEDULE
        if scheduled and run["creationTime"] >= since and run["endTime"] is not None:
            return run
    return None


def test_the_daemon_ticks_the_schedule_and_its_queued_run_syncs_the_right_local_days(
    deployment: Deployment,
) -> None:
    began = time.monotonic()
    turned_on = time.time()
    state = deployment.graphql.start_schedule(SCHEDULE)
    try:
        run = wait_for(
            lambda: scheduled_run(deployment, turned_on),
            timeout=TICK_TIMEOUT,
            what="the daemon to tick the schedule and the queued run to finish",
            services=deployment.services,
        )
    finally:
        deployment.graphql.stop_schedule(state)
    assert run["status"] == "SUCCESS", "\n".join(s.log_tail() for s in deployment.services)

    # The tick: the minute after the schedule was turned on (not a catch-up of older ones).
    ticks = deployment.graphql.schedule(SCHEDULE)["scheduleState"]["ticks"]
    [tick_time] = [t["timestamp"] for t in ticks if run["runId"] in t["runIds"]]
    tick = datetime.fromtimestamp(tick_time, UTC)
    assert tick.second == 0 and tick_time >= turned_on - 60
    # Independently: the local day of the tick, by Kathmandu's fixed offset.
    yesterday = (tick.astimezone(UTC) + UTC_OFFSET).date() - timedelta(days=1)
    first = max(deployment.first_day, yesterday - timedelta(days=RESYNC_DAYS))
    assert run["tags"]["dagster/asset_partition_range_start"] == first.isoformat()
    assert run["tags"]["dagster/asset_partition_range_end"] == yesterday.isoformat()
    assert run["tags"]["vis/warehouse"] == "write"

    # Put in the queue by the scheduler, started from it by the queue's daemon.
    kinds = event_types(deployment.graphql.run_events(run["runId"]))
    assert {"RunEnqueuedEvent", "RunStartingEvent", "RunSuccessEvent"} <= set(kinds)
    assert_no_lock_error(deployment, run["runId"])

    days = set(days_between(first, yesterday))
    assert days_of_run(deployment.warehouse, run["runId"]) == days
    assert_same_events(
        events_of_days(deployment.warehouse, days), truth_of_days(deployment.sim, first, yesterday)
    )
    print(f"schedule tick to synced run: {time.monotonic() - began:.0f} s")


def test_two_overlapping_backfills_wait_in_the_queue_and_run_one_at_a_time(
    deployment: Deployment,
) -> None:
    began = time.monotonic()
    days = days_between(deployment.first_day, deployment.first_day + timedelta(days=DAYS - 1))
    ranges = [days[0:3], days[1:4]]
    # One from the sync job's page (its runs carry the job's vis/warehouse tag), one from the
    # events asset's page (Dagster's own asset job, with no tag of ours): the instance's limits
    # must hold both. Back to back, so the backfill daemon (every 30 s) turns both into runs in
    # one pass and the second run is queued while the first one writes.
    keys = [[day.isoformat() for day in backfill_days] for backfill_days in ranges]
    backfills = [
        deployment.graphql.launch_job_backfill(keys[0]),
        deployment.graphql.launch_asset_backfill(["vis", "events"], keys[1]),
    ]

    def finished_runs() -> list[dict] | None:
        runs = [run for run in deployment.graphql.runs() if run["tags"].get("dagster/backfill")]
        mine = [run for run in runs if run["tags"]["dagster/backfill"] in backfills]
        done = len(mine) == len(backfills) and all(run["endTime"] for run in mine)
        return sorted(mine, key=lambda run: run["startTime"]) if done else None

    runs = wait_for(
        finished_runs,
        timeout=BACKFILL_TIMEOUT,
        what="both backfills' runs to finish",
        services=deployment.services,
    )
    assert [run["status"] for run in runs] == ["SUCCESS", "SUCCESS"]
    by_backfill = {run["tags"]["dagster/backfill"]: run for run in runs}
    assert by_backfill[backfills[0]]["tags"]["vis/warehouse"] == "write"
    assert "vis/warehouse" not in by_backfill[backfills[1]]["tags"]

    # One at a time: the second was queued while the first ran, and left the queue after it.
    earlier, later = runs
    later_events = deployment.graphql.run_events(later["runId"])
    queued = event_time(later_events, "RunEnqueuedEvent")
    assert queued < earlier["endTime"], "the runs never waited for each other"
    assert earlier["endTime"] <= event_time(later_events, "RunStartingEvent")
    assert earlier["endTime"] <= later["startTime"]

    for backfill, backfill_days in zip(backfills, ranges, strict=True):
        run_id = by_backfill[backfill]["runId"]
        assert_no_lock_error(deployment, run_id)
        assert days_of_run(deployment.warehouse, run_id) == set(backfill_days)
    synced = days[0:4]
    assert_same_events(
        events_of_days(deployment.warehouse, set(synced)),
        truth_of_days(deployment.sim, synced[0], synced[-1]),
    )
    print(f"two backfills, queued and run in turn: {time.monotonic() - began:.0f} s")
