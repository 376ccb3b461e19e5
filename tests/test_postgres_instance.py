"""The Dagster instance on PostgreSQL: a sync, a schedule tick and the UI's GraphQL, for real.

The test starts a PostgreSQL server of its own (Debian's server binaries, a throwaway cluster
on 127.0.0.1 and a free port, a password that is really checked) and an instance configured by
the committed ``dagster_home/dagster-postgres.yaml``, whose connection comes from the
``DAGSTER_PG_*`` variables. The CLI syncs some days, the daemon ticks the schedule for others,
and the webserver's GraphQL must show both runs; the database itself must hold them, and the
warehouse must equal the simulator's truth. Skipped, with the reason, where no server exists.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster_processes import (
    REPO,
    SCHEDULE,
    GraphQL,
    PostgresServer,
    clean_environment,
    daemon,
    free_port,
    migrate_instance,
    seed_home,
    wait_for,
    webserver,
)
from helpers import assert_same_events, expected_events, warehouse_events

from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

POSTGRES_SETTINGS = REPO / "dagster_home" / "dagster-postgres.yaml"
SQLITE_SETTINGS = REPO / "dagster_home" / "dagster.yaml"
DAYS = 6
RESYNC_DAYS = 2
STARTUP_TIMEOUT = 90.0
TICK_TIMEOUT = 150.0


def test_the_postgres_instance_keeps_the_run_queue_of_the_default_one() -> None:
    postgres = yaml.safe_load(POSTGRES_SETTINGS.read_text())
    sqlite = yaml.safe_load(SQLITE_SETTINGS.read_text())
    assert postgres["run_coordinator"] == sqlite["run_coordinator"]
    assert set(postgres["storage"]) == {"postgres"}
    connection = postgres["storage"]["postgres"]["postgres_db"]
    # Every part of the connection comes from the environment, none is written in the file.
    credentials = {name: value for name, value in connection.items() if name != "scheme"}
    assert all(set(value) == {"env"} for value in credentials.values()), connection


def today() -> date:
    return datetime.now(UTC).date()


@pytest.mark.slow
def test_a_sync_a_schedule_tick_and_the_ui_graphql_on_postgres(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    began = time.monotonic()
    first_day = today() - timedelta(days=DAYS)
    days = [first_day + timedelta(days=n) for n in range(DAYS)]
    options = SimulatorOptions(seed=23, start=first_day.isoformat(), days=DAYS, calls_per_day=150)
    with SimulatorProcess(options) as sim:
        warehouse = tmp_path / "warehouse.sqlite"
        env = clean_environment(
            **postgres.environment(),
            VIS_BASE_URL=sim.base_url,
            VIS_ACCESS_TOKEN=sim.token,
            VIS_START_DATE=first_day.isoformat(),
            VIS_WAREHOUSE=str(warehouse),
            VIS_RESYNC_DAYS=str(RESYNC_DAYS),
            VIS_SCHEDULE_CRON="* * * * *",
        )
        home = seed_home(tmp_path / "dagster_home", POSTGRES_SETTINGS.read_text())
        migrate_instance(home, env)
        port = free_port()
        logs = tmp_path / "logs"
        with (
            daemon(home, tmp_path, env, logs) as daemon_process,
            webserver(home, tmp_path, env, logs, port) as web,
        ):
            services = [daemon_process, web]
            graphql = GraphQL(f"http://127.0.0.1:{port}")
            wait_for(
                graphql.location_loaded,
                timeout=STARTUP_TIMEOUT,
                what="the webserver to load the code location",
                services=services,
            )
            turned_on = time.time()
            state = graphql.start_schedule(SCHEDULE)
            try:
                # While the daemon waits for the minute, the CLI syncs the oldest days.
                cli_run = sync_with_the_cli(env, home, tmp_path, days[0], days[1])
                scheduled = wait_for(
                    lambda: scheduled_run(graphql, turned_on),
                    timeout=TICK_TIMEOUT,
                    what="the daemon to tick the schedule and its run to finish",
                    services=services,
                )
            finally:
                graphql.stop_schedule(state)
            assert scheduled["status"] == "SUCCESS", "\n".join(s.log_tail() for s in services)

            # The UI's GraphQL shows both runs, and the tick with the days it asked for.
            statuses = {run["runId"]: run["status"] for run in graphql.runs()}
            assert statuses[cli_run] == "SUCCESS"
            ticks = graphql.schedule(SCHEDULE)["scheduleState"]["ticks"]
            [tick] = [tick for tick in ticks if scheduled["runId"] in tick["runIds"]]
            yesterday = datetime.fromtimestamp(tick["timestamp"], UTC).date() - timedelta(days=1)
            tick_days = [yesterday - timedelta(days=n) for n in range(RESYNC_DAYS, -1, -1)]
            assert scheduled["tags"]["dagster/asset_partition_range_start"] == str(tick_days[0])
            assert scheduled["tags"]["dagster/asset_partition_range_end"] == str(tick_days[-1])
            graphql.close()

        # The database holds both runs; nothing went to SQLite files in DAGSTER_HOME.
        assert postgres_runs(postgres) >= {(cli_run, "SUCCESS"), (scheduled["runId"], "SUCCESS")}
        assert not list(home.rglob("*.db")), "the instance wrote SQLite storage"
        synced = sorted({days[0], days[1], *tick_days})
        events = warehouse_events(warehouse)
        assert_same_events(
            events[events["local_date"].isin(synced)].reset_index(drop=True),
            expected_events(truth_of_days(sim, synced), "UTC"),
        )
    print(f"postgres: sync, tick and GraphQL in {time.monotonic() - began:.0f} s")


def sync_with_the_cli(env: dict[str, str], home: Path, cwd: Path, first: date, last: date) -> str:
    """``vis-pipeline sync`` of ``first``..``last`` on the Postgres instance; the run's id."""
    command = [sys.executable, "-m", "vis_pipeline.cli", "sync"]
    command += ["--from", first.isoformat(), "--to", last.isoformat()]
    done = subprocess.run(
        command,
        env={**env, "DAGSTER_HOME": str(home)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The last line reads "run <id>: <n> days".
    return done.stdout.strip().splitlines()[-1].split()[1].rstrip(":")


def scheduled_run(graphql: GraphQL, since: float) -> dict | None:
    """The schedule's run once it has finished, if the daemon launched one after ``since``."""
    for run in graphql.runs():
        scheduled = run["tags"].get("dagster/schedule_name") == SCHEDULE
        if scheduled and run["creationTime"] >= since and run["endTime"] is not None:
            return run
    return None


def postgres_runs(postgres: PostgresServer) -> set[tuple[str, str]]:
    """(run id, status) of every run the database holds, read with SQL."""
    connection = postgres.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT run_id, status FROM runs")
            return {(str(run_id), str(status)) for run_id, status in cursor.fetchall()}
    finally:
        connection.close()


def truth_of_days(sim: SimulatorProcess, days: list[date]) -> list[dict]:
    """The simulator's events of these UTC days."""
    records: list[dict] = []
    for day in days:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        records += sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return records
