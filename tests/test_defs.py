"""The Dagster code location: what it defines, the daily schedule, runs that overlap, checks."""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from helpers import assert_same_events, expected_events, warehouse_events

from vis_pipeline.defs import build_definitions
from vis_pipeline.defs.assets import ACCOUNT, EVENTS, USERS
from vis_pipeline.defs.checks import TABLE_CHECKS, build_checks
from vis_pipeline.defs.jobs import SYNC_JOB, range_tags
from vis_pipeline.defs.schedules import scheduled_days
from vis_pipeline.settings import Settings
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import local_day_window
from vis_pipeline.warehouse import connect

REPO = Path(__file__).resolve().parent.parent
MONTH = SimulatorOptions(seed=3, start="2026-04-01", days=30, calls_per_day=60, users=4)


def settings_for(sim: SimulatorProcess, warehouse: Path, tz: str = "UTC") -> Settings:
    return Settings(
        base_url=sim.base_url,
        access_token=sim.token,
        warehouse=str(warehouse),
        timezone=tz,
        start_date="2026-01-01",
    )


def run_days(settings: Settings, first: date, last: date) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def(SYNC_JOB)
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(instance=instance, tags=range_tags(first, last))


def truth_between(sim: SimulatorProcess, first: date, last: date, tz: str = "UTC") -> list[dict]:
    start, _ = local_day_window(first, tz)
    _, end = local_day_window(last, tz)
    return sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))


@pytest.fixture(scope="module")
def month() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(MONTH) as sim:
        yield sim


def test_the_location_defines_assets_checks_job_and_schedule() -> None:
    defs = build_definitions(Settings())
    keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    assert {ACCOUNT, USERS, EVENTS} <= keys
    check_names = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert set(TABLE_CHECKS) | {"reconciled_with_api_count"} <= check_names
    assert defs.resolve_job_def(SYNC_JOB) is not None
    assert defs.resolve_schedule_def("daily_sync").execution_timezone == "UTC"


def test_dagster_validates_the_workspace(dagster_home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("tick", "tz", "expected"),
    [
        (datetime(2026, 3, 9, 4, 15, tzinfo=UTC), "America/New_York", ("2026-03-06", "2026-03-08")),
        (datetime(2026, 3, 9, 0, 15, tzinfo=UTC), "UTC", ("2026-03-06", "2026-03-08")),
        (datetime(2026, 1, 2, 0, 15, tzinfo=UTC), "UTC", ("2026-01-01", "2026-01-01")),
    ],
)
def test_the_schedule_syncs_yesterday_and_the_days_before_it(
    tick: datetime, tz: str, expected: tuple[str, str]
) -> None:
    first, last = scheduled_days(tick, tz, resync_days=2, first_day=date(2026, 1, 1))
    assert (first.isoformat(), last.isoformat()) == expected


def test_late_updates_replace_live_calls_through_the_schedules_run(
    dagster_home: Path, warehouse_path: Path
) -> None:
    # "now" in the afternoon of the last day: its calls are partly live, some not yet visible.
    options = SimulatorOptions(
        seed=21,
        start="2026-05-04",
        days=3,
        calls_per_day=400,
        users=4,
        now="2026-05-06T15:00:00.000Z",
    )
    with SimulatorProcess(options) as sim:
        settings = settings_for(sim, warehouse_path)
        first, last = date(2026, 5, 4), date(2026, 5, 6)
        assert run_days(settings, first, last).success
        before = warehouse_events(warehouse_path)
        assert (~before["is_final"]).sum() > 0, "the simulator should have live calls at 'now'"

        sim.control.advance(timedelta(hours=12).total_seconds())
        schedule = build_definitions(settings).resolve_schedule_def("daily_sync")
        tick = datetime(2026, 5, 7, 0, 15, tzinfo=UTC)
        with dg.DagsterInstance.get() as instance:
            context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
            request = schedule.evaluate_tick(context).run_requests[0]
            job = build_definitions(settings).resolve_job_def(SYNC_JOB)
            assert job.execute_in_process(instance=instance, tags=request.tags).success
        truth = truth_between(sim, first, last)
    after = warehouse_events(warehouse_path)
    assert after["is_final"].all()
    assert len(after) >= len(before)
    assert_same_events(after, expected_events(truth, "UTC"))


def _run_partitions(args: tuple[str, str, str, str, list[str]]) -> list[bool]:
    base_url, token, warehouse, home, days = args
    import os

    os.environ["DAGSTER_HOME"] = home
    settings = Settings(
        base_url=base_url, access_token=token, warehouse=warehouse, start_date="2026-01-01"
    )
    outcomes = []
    for day in days:
        result = run_days(settings, date.fromisoformat(day), date.fromisoformat(day))
        outcomes.append(result.success)
    return outcomes


def test_a_backfill_of_30_separate_runs_has_no_lock_errors(
    month: SimulatorProcess, dagster_home: Path, warehouse_path: Path
) -> None:
    first = date.fromisoformat(MONTH.start)
    days = [(first + timedelta(days=i)).isoformat() for i in range(MONTH.days)]
    shares = [days[i::3] for i in range(3)]
    with dg.DagsterInstance.get():
        pass  # create the instance's storage once, as a deployment has it before any run
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        outcomes = pool.map(
            _run_partitions,
            [
                (month.base_url, month.token, str(warehouse_path), str(dagster_home), share)
                for share in shares
            ],
        )
    assert all(all(share) for share in outcomes)
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_run_records()) == MONTH.days
    truth = truth_between(month, first, first + timedelta(days=MONTH.days - 1))
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, "UTC"))


def test_each_table_check_fails_on_a_corrupted_copy(
    month: SimulatorProcess, dagster_home: Path, warehouse_path: Path, tmp_path: Path
) -> None:
    settings = settings_for(month, warehouse_path)
    first = date.fromisoformat(MONTH.start)
    assert run_days(settings, first, first + timedelta(days=1)).success
    checks = {check.check_key.name: check for check in build_checks()}
    one = "(SELECT min(event_id) FROM vis.events WHERE end_time IS NOT NULL)"
    corruptions = {
        "unique_event_id": "CREATE TABLE vis.loose AS SELECT * FROM vis.events; "
        "DROP TABLE vis.events; ALTER TABLE vis.loose RENAME TO events; "
        f"INSERT INTO vis.events SELECT * FROM vis.events WHERE event_id = {one};",
        "call_fields_match_state": f"UPDATE vis.events SET end_time = NULL WHERE event_id = {one};",
        "call_times_in_order": "UPDATE vis.events SET end_time = start_time - INTERVAL 1 SECOND "
        f"WHERE event_id = {one};",
        "no_final_regressed": "UPDATE vis.events SET state = 'RINGING', is_final = false "
        f"WHERE event_id = {one};",
        "raw_matches_events": f"DELETE FROM raw.events WHERE event_id = {one};",
    }
    for name, corruption in corruptions.items():
        clean = checks[name](warehouse=DuckDBResource(database=str(warehouse_path)))
        assert clean.passed, name
        copy = tmp_path / f"{name}.duckdb"
        shutil.copy(warehouse_path, copy)
        with connect(copy) as conn:
            conn.execute(corruption)
        broken = checks[name](warehouse=DuckDBResource(database=str(copy)))
        assert not broken.passed, name


def test_the_run_reports_rejected_records_and_loads_the_valid_ones(
    dagster_home: Path, warehouse_path: Path
) -> None:
    options = SimulatorOptions(seed=8, start="2026-06-01", days=1, calls_per_day=120, users=3)
    with SimulatorProcess(options) as sim:
        valid = sim.control.truth()
        broken = [
            {**valid[0], "id": 9_100_000_000_001, "direction": "SIDEWAYS"},
            {k: v for k, v in {**valid[1], "id": 9_100_000_000_002}.items() if k != "userId"},
        ]
        sim.control.inject(broken)
        day = date(2026, 6, 1)
        result = run_days(settings_for(sim, warehouse_path), day, day)
    assert result.success
    (materialisation,) = [
        m for m in result.asset_materializations_for_node("vis__events") if m.partition
    ]
    assert materialisation.metadata["rejected"].value == len(broken)
    assert materialisation.metadata["loaded"].value == len(
        [e for e in valid if e["startTime"].startswith("2026-06-01")]
    )
    with connect(warehouse_path, read_only=True) as conn:
        reasons = conn.execute(
            "SELECT event_id, reason FROM vis.rejected_events ORDER BY event_id"
        ).fetchall()
    assert [row[0] for row in reasons] == [record["id"] for record in broken]
    assert "direction" in reasons[0][1] and "userId" in reasons[1][1]
