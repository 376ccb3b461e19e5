"""The Dagster code location: what it defines, each day's own partition figures and checks, the
daily schedule, runs that overlap, a failed day, the failure sensor and the freshness check."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.definitions.sensor_definition import SensorExecutionData
from helpers import assert_same_events, copy_warehouse, expected_events, warehouse_events

from vis_pipeline.defs import build_definitions
from vis_pipeline.defs.assets import ACCOUNT, EVENTS, USERS
from vis_pipeline.defs.checks import RECONCILED, TABLE_CHECKS
from vis_pipeline.defs.daily_sync import SYNC_OP
from vis_pipeline.defs.freshness import FRESHNESS, FRESHNESS_SENSOR, freshness_of
from vis_pipeline.defs.jobs import SYNC_JOB, range_tags
from vis_pipeline.defs.reports import REPORT_TABLES
from vis_pipeline.defs.schedules import scheduled_days
from vis_pipeline.defs.sensors import FAILURE_SENSOR
from vis_pipeline.reports import REPORTS
from vis_pipeline.settings import Settings
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import days_between, local_day_window
from vis_pipeline.warehouse import connect

REPO = Path(__file__).resolve().parent.parent
MONTH = SimulatorOptions(seed=3, start="2026-04-01", days=30, calls_per_day=60, users=4)
FIVE_DAYS = SimulatorOptions(
    seed=4, start="2026-05-08", days=5, calls_per_day=120, users=5, now="2026-05-12T15:00:00.000Z"
)
"""Friday to Tuesday: quieter weekend days, and a last day still under way (live calls, fewer
visible), so each day has a size of its own."""


def settings_for(sim: SimulatorProcess, warehouse: Path, tz: str = "UTC") -> Settings:
    return Settings(
        base_url=sim.base_url,
        access_token=sim.token,
        warehouse=str(warehouse),
        timezone=tz,
        start_date="2026-01-01",
    )


def run_days(
    settings: Settings,
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def(SYNC_JOB)
    if instance is not None:
        return job.execute_in_process(
            instance=instance, tags=range_tags(first, last), raise_on_error=raise_on_error
        )
    with dg.DagsterInstance.get() as current:
        return job.execute_in_process(
            instance=current, tags=range_tags(first, last), raise_on_error=raise_on_error
        )


def run_checks(
    settings: Settings,
    names: set[str],
    instance: dg.DagsterInstance,
    days: tuple[date, date] | None = None,
) -> dg.ExecuteInProcessResult:
    """A run of only these checks of vis/events, as the UI's "Execute" starts one."""
    job = build_definitions(settings).resolve_job_def(SYNC_JOB)
    subset = job.get_subset(
        asset_selection=set(), asset_check_selection={dg.AssetCheckKey(EVENTS, n) for n in names}
    )
    tags = range_tags(*days) if days else None
    return subset.execute_in_process(instance=instance, tags=tags)


def truth_between(sim: SimulatorProcess, first: date, last: date, tz: str = "UTC") -> list[dict]:
    start, _ = local_day_window(first, tz)
    _, end = local_day_window(last, tz)
    return sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))


def latest_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey, days: list[date]
) -> dict[date, dict[str, object]]:
    """Each day's latest materialisation's metadata, as the UI shows a partition."""
    latest = {}
    for day in days:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
        ).records
        if records:
            metadata = records[0].asset_materialization.metadata
            latest[day] = {name: value.value for name, value in metadata.items()}
    return latest


def check_status_by_day(instance: dg.DagsterInstance, name: str) -> dict[str, tuple[str, bool]]:
    """Each partition's latest result of a check, and whether it checked the latest
    materialisation, as the UI's partition bar of the check reads them."""
    infos = instance.event_log_storage.get_asset_check_partition_info(
        [dg.AssetCheckKey(EVENTS, name)]
    )
    return {
        str(info.partition_key): (info.latest_execution_status.value, info.is_current)
        for info in infos
    }


@pytest.fixture(scope="module")
def month() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(MONTH) as sim:
        yield sim


@pytest.fixture
def vis_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulators' token where the resources read it: only from the environment."""
    monkeypatch.setenv("VIS_ACCESS_TOKEN", MONTH.token)


@dataclass(frozen=True)
class SyncedDays:
    """Five days synced in one run, shared by the tests that read or corrupt them."""

    sim: SimulatorProcess
    settings: Settings
    home: Path
    days: list[date]
    truth: pd.DataFrame
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def five_days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncedDays]:
    work = tmp_path_factory.mktemp("five_days")
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    days = days_between(date(2026, 5, 8), date(2026, 5, 12))
    with SimulatorProcess(FIVE_DAYS) as sim, pytest.MonkeyPatch.context() as patch:
        # For the module: the instance settings read DAGSTER_HOME, the resources the token.
        patch.setenv("DAGSTER_HOME", str(home))
        patch.setenv("VIS_ACCESS_TOKEN", sim.token)
        settings = settings_for(sim, work / "warehouse.sqlite")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = run_days(settings, days[0], days[-1], instance)
        truth = expected_events(truth_between(sim, days[0], days[-1]), "UTC")
        yield SyncedDays(sim, settings, home, days, truth, result)


def test_the_location_defines_assets_checks_job_schedule_and_sensors() -> None:
    defs = build_definitions(Settings())
    keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    assert {ACCOUNT, USERS, EVENTS, REPORT_TABLES} <= keys
    check_names = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert set(TABLE_CHECKS) | {RECONCILED, FRESHNESS} <= check_names
    assert defs.resolve_job_def(SYNC_JOB) is not None
    assert defs.resolve_schedule_def("daily_sync").execution_timezone == "UTC"
    assert {FRESHNESS_SENSOR, FAILURE_SENSOR} <= {
        s.name for s in defs.get_repository_def().sensor_defs
    }


def test_dagster_validates_the_workspace(dagster_home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_events_partition_carries_its_own_days_figures(five_days: SyncedDays) -> None:
    truth = five_days.truth
    sizes = truth.groupby("local_date").size()
    assert sizes.nunique() == len(five_days.days), "the five days should differ in size"
    with dg.DagsterInstance.from_config(str(five_days.home)) as instance:
        latest = latest_metadata(instance, EVENTS, five_days.days)
    assert set(latest) == set(five_days.days)
    for day in five_days.days:
        of_day = truth[truth["local_date"] == day]
        figures = latest[day]
        assert figures["status"] == "loaded", day
        assert figures["api_count"] == figures["loaded"] == figures["held"] == len(of_day), day
        assert figures["live_calls"] == int((~of_day["is_final"]).sum()), day
        assert figures["rejected"] == 0 and figures["requests"] >= figures["pages"] >= 1, day
    assert latest[five_days.days[-1]]["live_calls"] > 0, "the last day should still have live calls"
    # The run's range appears once, on its last day, and is named as the run's.
    assert latest[five_days.days[-1]]["run/days"] == len(five_days.days)
    assert all("run/days" not in latest[day] for day in five_days.days[:-1])


def test_each_report_partition_carries_its_own_days_row_counts(five_days: SyncedDays) -> None:
    truth = five_days.truth
    with dg.DagsterInstance.from_config(str(five_days.home)) as instance:
        latest = latest_metadata(instance, REPORT_TABLES, five_days.days)
    assert set(latest) == set(five_days.days)
    with connect(Path(five_days.settings.warehouse), read_only=True) as conn:
        for day in five_days.days:
            of_day = truth[truth["local_date"] == day]
            # Independent of the report SQL: one row per direction, and per user and direction.
            assert latest[day]["daily_call_volume/rows"] == of_day["direction"].nunique()
            by_user = of_day[["user_id", "direction"]].drop_duplicates()
            assert latest[day]["daily_call_volume_by_user/rows"] == len(by_user)
            for name, spec in REPORTS.items():
                (held,) = conn.execute(
                    f"SELECT count(*) FROM {spec.table} WHERE local_date = ?", [day]
                ).fetchone()
                assert latest[day][f"{name}/rows"] == held, (day, name)
    last = latest[five_days.days[-1]]
    assert last["run/first_day"] == five_days.days[0].isoformat()
    assert last["run/missed_calls/chart"].startswith("![chart](data:image/svg+xml;base64,")
    assert all("run/first_day" not in latest[day] for day in five_days.days[:-1])


def test_each_day_has_its_own_count_check_result(five_days: SyncedDays) -> None:
    evaluations = five_days.result.get_asset_check_evaluations()
    per_day = {e.partition: e.passed for e in evaluations if e.check_name == RECONCILED}
    assert per_day == {day.isoformat(): True for day in five_days.days}
    with dg.DagsterInstance.from_config(str(five_days.home)) as instance:
        status = check_status_by_day(instance, RECONCILED)
    assert status == {day.isoformat(): ("SUCCEEDED", True) for day in five_days.days}
    table_checks = {e.check_name: e.passed for e in evaluations if e.check_name in TABLE_CHECKS}
    assert table_checks == dict.fromkeys(TABLE_CHECKS, True)


def test_a_day_corrupted_by_hand_fails_its_own_check_and_no_other(
    five_days: SyncedDays, tmp_path: Path
) -> None:
    corrupted = copy_warehouse(Path(five_days.settings.warehouse), tmp_path / "corrupted.sqlite")
    bad = five_days.days[2]
    with connect(corrupted) as conn:
        conn.execute(
            "DELETE FROM vis.events WHERE event_id = "
            "(SELECT min(event_id) FROM vis.events WHERE local_date = ?)",
            [bad],
        )
    settings = replace(five_days.settings, warehouse=str(corrupted))
    days = (five_days.days[0], five_days.days[-1])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIS_ACCESS_TOKEN", five_days.sim.token)
        with dg.DagsterInstance.from_config(str(five_days.home)) as instance:
            result = run_checks(settings, {RECONCILED}, instance, days)
            status = check_status_by_day(instance, RECONCILED)
    verdicts = {e.partition: e.passed for e in result.get_asset_check_evaluations()}
    assert verdicts == {day.isoformat(): day != bad for day in five_days.days}
    assert status == {
        day.isoformat(): ("FAILED" if day == bad else "SUCCEEDED", True) for day in five_days.days
    }


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
    dagster_home: Path, warehouse_path: Path, vis_token: None
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
    month: SimulatorProcess, dagster_home: Path, warehouse_path: Path, vis_token: None
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
        # The workers end of themselves. Leaving the block on its own would SIGTERM them,
        # which a worker blocked on the pool's queue lock (held by one already gone) can sit
        # through: the test then hung in Pool.terminate.
        pool.close()
        pool.join()
    assert all(all(share) for share in outcomes)
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_run_records()) == MONTH.days
    truth = truth_between(month, first, first + timedelta(days=MONTH.days - 1))
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, "UTC"))


def test_each_table_check_fails_on_a_corrupted_copy(
    month: SimulatorProcess,
    dagster_home: Path,
    warehouse_path: Path,
    tmp_path: Path,
    vis_token: None,
) -> None:
    settings = settings_for(month, warehouse_path)
    first = date.fromisoformat(MONTH.start)
    result = run_days(settings, first, first + timedelta(days=1))
    clean = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(clean[name] for name in TABLE_CHECKS)
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
    with dg.DagsterInstance.get() as instance:
        for name, corruption in corruptions.items():
            copy = copy_warehouse(warehouse_path, tmp_path / f"{name}.sqlite")
            with connect(copy) as conn:
                conn.execute(corruption)
            # Run alone, as from the UI: the table checks need no partition.
            broken = run_checks(replace(settings, warehouse=str(copy)), set(TABLE_CHECKS), instance)
            verdicts = {e.check_name: e.passed for e in broken.get_asset_check_evaluations()}
            assert verdicts.keys() == TABLE_CHECKS.keys() and not verdicts[name], name


def test_the_run_reports_rejected_records_and_loads_the_valid_ones(
    dagster_home: Path, warehouse_path: Path, vis_token: None
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
        m for m in result.asset_materializations_for_node(SYNC_OP) if m.asset_key == EVENTS
    ]
    assert materialisation.partition == day.isoformat()
    of_day = len([e for e in valid if e["startTime"].startswith("2026-06-01")])
    figures = {name: value.value for name, value in materialisation.metadata.items()}
    assert figures["rejected"] == len(broken)
    assert figures["loaded"] == of_day
    # The API counts the rejected records too, and the warehouse keeps their ids.
    assert figures["api_count"] == figures["held"] == of_day + len(broken)
    with connect(warehouse_path, read_only=True) as conn:
        reasons = conn.execute(
            "SELECT event_id, reason FROM vis.rejected_events ORDER BY event_id"
        ).fetchall()
    assert [row[0] for row in reasons] == [record["id"] for record in broken]
    assert "direction" in reasons[0][1] and "userId" in reasons[1][1]


class _Receiver(BaseHTTPRequestHandler):
    """A webhook on loopback that keeps every JSON body POSTed to it."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP receiver: its URL and what it received."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/vis", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_day_leaves_the_others_materialised_and_the_sensor_posts_the_failure(
    dagster_home: Path,
    warehouse_path: Path,
    vis_token: None,
    webhook: tuple[str, list[dict]],
) -> None:
    url, received = webhook
    options = SimulatorOptions(seed=5, start="2026-06-01", days=3, calls_per_day=50, users=3)
    days = days_between(date(2026, 6, 1), date(2026, 6, 3))
    bad = days[1]
    with SimulatorProcess(options) as sim:
        truth = expected_events(sim.control.truth(), "UTC")
        # The same id twice, mid-day: the API counts one event more than can ever be listed, so
        # the day cannot be read whole (its neighbours' edge margins stay clear of it).
        of_bad = [r for r in sim.control.truth() if r["startTime"].startswith(bad.isoformat())]
        sim.control.inject([dict(of_bad[len(of_bad) // 2])])
        settings = replace(
            settings_for(sim, warehouse_path), alert_webhook_url=url, repair_budget=20
        )
        sensor = build_definitions(settings).get_repository_def().get_sensor_def(FAILURE_SENSOR)
        with dg.DagsterInstance.get() as instance:
            # The sensor's first tick only sets its cursor, as it does when first turned on.
            cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).cursor
            result = run_days(settings, days[0], days[-1], instance, raise_on_error=False)
            tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
            events = latest_metadata(instance, EVENTS, days)
            reports = latest_metadata(instance, REPORT_TABLES, days)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert f"day {bad.isoformat()} failed" in str(failure.step_failure_data.error)
    good = [day for day in days if day != bad]
    assert set(events) == set(reports) == set(good)
    for day in good:
        count = int((truth["local_date"] == day).sum())
        assert events[day]["api_count"] == events[day]["loaded"] == count, day
    verdicts = {e.partition: e.passed for e in result.get_asset_check_evaluations() if e.partition}
    assert verdicts == {day.isoformat(): day != bad for day in days}
    assert tick.dagster_run_reactions and tick.dagster_run_reactions[0].error is None
    (alert,) = received
    assert alert["run_id"] == result.run_id and alert["job"] == SYNC_JOB
    assert alert["days_not_landed"] == [bad.isoformat()]
    assert (alert["first_day"], alert["last_day"]) == (days[0].isoformat(), days[-1].isoformat())
    assert f"day {bad.isoformat()} failed" in alert["error"]


def test_the_failure_sensor_fails_its_tick_when_the_webhook_refuses(
    month: SimulatorProcess, dagster_home: Path, warehouse_path: Path, vis_token: None
) -> None:
    settings = replace(
        settings_for(month, warehouse_path),
        base_url="http://127.0.0.1:9/unreachable",
        alert_webhook_url=month.base_url + "/no-such-hook",
        max_retries=0,
    )
    sensor = build_definitions(settings).get_repository_def().get_sensor_def(FAILURE_SENSOR)
    day = date.fromisoformat(MONTH.start)
    with dg.DagsterInstance.get() as instance:
        cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).cursor
        assert not run_days(settings, day, day, instance, raise_on_error=False).success
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    (reaction,) = tick.dagster_run_reactions
    assert reaction.error is not None and "AlertNotDelivered" in reaction.error.to_string()
    assert "no-such-hook" not in reaction.error.message, "the webhook's path may be a secret"


@pytest.mark.parametrize(
    ("now", "tz", "hour", "due"),
    [
        (datetime(2026, 5, 12, 8, 59, tzinfo=UTC), "UTC", 9, date(2026, 5, 10)),
        (datetime(2026, 5, 12, 9, 0, tzinfo=UTC), "UTC", 9, date(2026, 5, 11)),
        # 09:30 local in New York is 13:30 UTC: yesterday is due.
        (datetime(2026, 5, 12, 13, 30, tzinfo=UTC), "America/New_York", 9, date(2026, 5, 11)),
        # 23:30 local on the 11th (03:30 UTC on the 12th): the 10th is the latest day due.
        (datetime(2026, 5, 12, 3, 30, tzinfo=UTC), "America/New_York", 9, date(2026, 5, 10)),
        (datetime(2026, 5, 12, 0, 0, tzinfo=UTC), "UTC", 0, date(2026, 5, 11)),
    ],
)
def test_the_day_due_follows_the_local_deadline_hour(
    now: datetime, tz: str, hour: int, due: date
) -> None:
    verdict = freshness_of(now, tz, hour, date(2026, 1, 1), landed=lambda day: False)
    assert verdict.due == due and not verdict.passed
    assert freshness_of(now, tz, hour, due + timedelta(days=1), landed=lambda day: False).passed


def test_the_freshness_check_flags_a_missing_yesterday_until_it_lands(
    dagster_home: Path, warehouse_path: Path, vis_token: None
) -> None:
    today = datetime.now(UTC).date()
    yesterday, before = today - timedelta(days=1), today - timedelta(days=2)
    options = SimulatorOptions(
        seed=9,
        start=before.isoformat(),
        days=2,
        calls_per_day=40,
        users=3,
        now=f"{today.isoformat()}T00:30:00.000Z",
    )
    with SimulatorProcess(options) as sim:
        # Hour 0: yesterday is due from midnight on, whenever the test runs.
        settings = replace(
            settings_for(sim, warehouse_path), start_date=before.isoformat(), freshness_hour=0
        )
        sensor = build_definitions(settings).get_repository_def().get_sensor_def(FRESHNESS_SENSOR)
        with dg.DagsterInstance.get() as instance:
            assert run_days(settings, before, before, instance).success
            missing = tick_like_the_daemon(sensor, instance, cursor=None)
            unchanged = tick_like_the_daemon(sensor, instance, cursor=missing.cursor)
            landed_run = run_days(settings, yesterday, yesterday, instance)
            landed = tick_like_the_daemon(sensor, instance, cursor=missing.cursor)
            history = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(EVENTS, FRESHNESS), limit=10
            )
    (flagged,) = missing.asset_events
    assert not flagged.passed and yesterday.isoformat() in flagged.description
    assert not unchanged.asset_events, "an unchanged verdict is not recorded again"
    in_run = [e for e in landed_run.get_asset_check_evaluations() if e.check_name == FRESHNESS]
    assert [e.passed for e in in_run] == [True]
    (cleared,) = landed.asset_events
    assert cleared.passed and yesterday.isoformat() in cleared.description
    # Newest first: the sensor's pass, the landing run's, the sensor's flag, and the first run's
    # own verdict (yesterday was already due and missing then).
    assert [record.status.value for record in history] == [
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "FAILED",
    ]


def tick_like_the_daemon(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None
) -> SensorExecutionData:
    """One tick of ``sensor``; its check results recorded as the sensor daemon records them."""
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    for event in data.asset_events:
        instance.report_runless_asset_event(event)
    return data
