"""Warehouse maintenance: after a month of daily syncs, compaction leaves fewer files and every
query answers as before; it waits for a writer; readers read through it; the Dagster job."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pandas as pd
import pytest
from duckdb import sqltypes
from helpers import (
    assert_same_events,
    copy_warehouse,
    expected_events,
    opener,
    warehouse_events,
)

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation
from vis_pipeline.cli import main
from vis_pipeline.client import VISClient
from vis_pipeline.defs import build_definitions
from vis_pipeline.defs.assets import WAREHOUSE_WRITE_TAGS
from vis_pipeline.defs.maintenance import MAINTENANCE_JOB, MAINTENANCE_OP, MAINTENANCE_SCHEDULE
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.maintenance import (
    Compaction,
    catalog_file_count,
    compact,
    compact_warehouse,
    disk_file_count,
)
from vis_pipeline.reports import REPORTS, materialize_reports, read_report
from vis_pipeline.settings import DEFAULTS, Settings, SettingsError
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import days_between, local_day_window, sync_days

TZ = "America/New_York"
MONTH = SimulatorOptions(seed=31, start="2026-03-01", days=30, calls_per_day=200, users=5, tz=TZ)
"""Thirty local days over the spring clock change; weekdays write files, quiet weekend days
stay inside the catalog (data inlining)."""

FIRST = date.fromisoformat(MONTH.start)
LAST = FIRST + timedelta(days=MONTH.days - 1)
DAYS = days_between(FIRST, LAST)

DEFAULT_RETENTION = timedelta(days=DEFAULTS.snapshot_retention_days)
PER_DAY = "SELECT local_date, count(*) FROM vis.events GROUP BY local_date ORDER BY 1"
"""Events per local day."""

MEAN_DIGIT = 0.0015
"""How far two reads of one figure may differ: one unit of its last (third) decimal."""

WAIT_SECONDS = 30.0
"""Bound on every wait of a test for another thread."""


@dataclass(frozen=True)
class Month:
    """A warehouse synced one day at a time for 30 days, and what it must hold."""

    path: Path
    expected: pd.DataFrame
    sim: SimulatorProcess


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    """30 daily syncs (one ``sync_days`` call per day), the month's reports, then the last
    week's again (as a re-sync recomputes them): the warehouse a month of the daily schedule
    leaves. Tests compact copies of it."""
    path = tmp_path_factory.mktemp("month") / "warehouse.sqlite"
    with SimulatorProcess(MONTH) as sim:
        with in_process_extractor(sim) as extractor:
            for day in DAYS:
                sync_days(extractor, opener(path), [day], TZ)
        with wh.open_writer(path) as conn:
            materialize_reports(conn, FIRST, LAST, TZ)
            materialize_reports(conn, LAST - timedelta(days=6), LAST, TZ)
        start, _ = local_day_window(FIRST, TZ)
        _, end = local_day_window(LAST, TZ)
        truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
        yield Month(path, expected_events(truth, TZ), sim)


@contextmanager
def in_process_extractor(sim: SimulatorProcess) -> Iterator[WindowExtractor]:
    """An extractor that fetches in this process (a client on its own transport): the same
    result as the extraction process, without starting one per day."""
    with (
        VISClient(sim.base_url, sim.token, transport=httpx.HTTPTransport()) as client,
        WindowExtractor(client) as extractor,
    ):
        yield extractor


def copy_of(month: Month, tmp_path: Path) -> WarehouseLocation:
    return WarehouseLocation.parse(copy_warehouse(month.path, tmp_path / "copy.sqlite"))


def answers(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What analysts read: counts per day and table, raw payloads, every report's rows (as
    stored), and the figures computed from the events."""
    raw = "SELECT event_id, md5(payload::VARCHAR), last_seen_at FROM raw.events ORDER BY 1"
    return {
        "per_day": conn.execute(PER_DAY).fetchall(),
        "raw": conn.execute(raw).fetchall(),
        "status": wh.status_summary(conn),
        "reports": {name: read_report(conn, name, FIRST, LAST) for name in REPORTS},
        "figures": figures(conn),
    }


def figures(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """vis.call_figures of the month by day, direction and local hour, and as one row."""
    days = {"first": FIRST, "last": LAST, "tz": TZ}
    by_hour = (
        "SELECT * FROM vis.call_figures($first, $last, tz := $tz, by_direction := true, "
        "by_hour := true) ORDER BY local_date, direction, local_hour"
    )
    whole = "SELECT * FROM vis.call_figures($first, $last, tz := $tz, by_day := false)"
    return conn.execute(by_hour, days).fetchall() + conn.execute(whole, days).fetchall()


def assert_same_answers(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal, but for the last digit of a mean: a mean of doubles depends on the order rows
    are summed in, which DuckDB's threads vary from one read of the same data to the next."""
    exact = ("per_day", "raw", "status")
    assert {k: got[k] for k in exact} == {k: want[k] for k in exact}
    assert got["reports"].keys() == want["reports"].keys()
    for name, rows in got["reports"].items():
        pd.testing.assert_frame_equal(rows, want["reports"][name], obj=name)
    assert len(got["figures"]) == len(want["figures"])
    for got_row, want_row in zip(got["figures"], want["figures"], strict=True):
        for value, wanted in zip(got_row, want_row, strict=True):
            if isinstance(value, float) and isinstance(wanted, float):
                assert value == pytest.approx(wanted, abs=MEAN_DIGIT)
            else:
                assert value == wanted


def read_answers(location: WarehouseLocation) -> dict[str, Any]:
    with wh.connect(location, read_only=True) as conn:
        return answers(conn)


def counted(location: WarehouseLocation) -> tuple[int, int]:
    """(files the current snapshot reads, Parquet files on disk), counted by the test."""
    with wh.connect(location, read_only=True) as conn:
        in_catalog = catalog_file_count(conn)
    folder = Path(location.data_path)
    return in_catalog, len(list(folder.rglob("*.parquet")))


def test_compaction_after_30_daily_syncs_leaves_fewer_files_and_the_same_answers(
    month: Month, tmp_path: Path
) -> None:
    location = copy_of(month, tmp_path)
    events_before, answers_before = warehouse_events(location), read_answers(location)
    catalog_before, disk_before = counted(location)
    assert len(answers_before["reports"]["daily_call_volume"]), "the reports were materialised"

    # No retention: every file the last snapshot does not read is deleted at once.
    done = compact_warehouse(location, timedelta(0))

    catalog_after, disk_after = counted(location)
    assert (done.files_before, done.disk_files_before) == (catalog_before, disk_before)
    assert (done.files_after, done.disk_files_after) == (catalog_after, disk_after)
    assert catalog_before > catalog_after
    assert disk_before > disk_after
    # Nothing is left on disk that the current snapshot does not read.
    assert disk_after == catalog_after
    assert done.files_merged >= catalog_before - catalog_after
    assert done.snapshots_expired >= len(DAYS)
    assert done.files_deleted > 0
    # Every query answers as before (a mean to its last digit), and the warehouse is still
    # the API's truth.
    events_after = warehouse_events(location)
    pd.testing.assert_frame_equal(events_after, events_before)
    assert_same_answers(read_answers(location), answers_before)
    assert_same_events(events_after, month.expected)
    with wh.connect(location, read_only=True) as conn:
        assert all(check.passed for check in wh.run_checks(conn))


def test_with_the_retention_old_files_stay_for_readers_until_it_has_passed(
    month: Month, tmp_path: Path
) -> None:
    location = copy_of(month, tmp_path)
    expected = read_answers(location)
    _, disk_before = counted(location)
    reader = wh.connect(location, read_only=True)  # opened and read before, read after
    try:
        assert reader.execute(PER_DAY).fetchall() == expected["per_day"]
        done = compact_warehouse(location, DEFAULT_RETENTION)
        assert done.files_before > done.files_after
        # Snapshots are younger than the retention: none expires, no file read lately goes.
        assert done.snapshots_expired == 0
        assert done.files_deleted == 0
        assert done.disk_files_after is not None and done.disk_files_after >= disk_before
        assert_same_answers(answers(reader), expected)
    finally:
        reader.close()
    # A retention later, the files nothing reads any more are deleted.
    with wh.open_writer(location) as conn:
        later = compact(conn, DEFAULT_RETENTION, now=datetime.now(UTC) + DEFAULT_RETENTION)
    assert later.files_deleted > 0
    assert later.snapshots_expired > 0
    assert later.disk_files_after == later.files_after == done.files_after
    assert_same_answers(read_answers(location), expected)


@pytest.mark.parametrize("retention", [DEFAULT_RETENTION, timedelta(0)], ids=["7d", "none"])
def test_a_query_under_way_reads_through_a_compaction_thanks_to_the_retention(
    month: Month, tmp_path: Path, retention: timedelta
) -> None:
    """A reader's query that started before the merge finishes on the files it planned on:
    they stay on disk for the retention. Without one, they are gone under it."""
    location = copy_of(month, tmp_path)
    assert _journal_mode(location) == "wal"  # set by the writers: a reader never blocks them
    reader = wh.connect(location, read_only=True)
    expected = reader.execute(PER_DAY).fetchall()
    reader.execute("SET threads = 1")  # one scan, file after file: the gate holds it mid-way
    gate = _Gate()
    reader.create_function("gate", gate, [sqltypes.BIGINT], sqltypes.BOOLEAN)
    query = (
        "SELECT local_date, count(*) FROM vis.events WHERE gate(event_id) "
        "GROUP BY local_date ORDER BY 1"
    )
    result: list[Any] = []

    def read() -> None:
        try:
            result.append(reader.execute(query).fetchall())
        except duckdb.Error as exc:
            result.append(exc)

    thread = threading.Thread(target=read)
    try:
        thread.start()
        assert gate.reached.wait(WAIT_SECONDS), "the query never started reading"
        done = compact_warehouse(location, retention)
        assert done.files_merged > 0
    finally:
        gate.opened.set()
        thread.join(WAIT_SECONDS)
        reader.close()
    assert not thread.is_alive()
    if retention:
        assert result == [expected]
    else:
        (error,) = result
        assert isinstance(error, duckdb.IOException), error


def _journal_mode(location: WarehouseLocation) -> str:
    assert location.catalog_path is not None
    with closing(sqlite3.connect(location.catalog_path)) as catalog:
        return str(catalog.execute("PRAGMA journal_mode").fetchone()[0]).lower()


class _Gate:
    """A SQL function that holds the first batch of rows until the test opens it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __call__(self, event_id: int) -> bool:
        self.reached.set()
        self.opened.wait(WAIT_SECONDS)
        return True


def test_maintenance_waits_for_a_writer_holding_the_lock(
    month: Month, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    location = copy_of(month, tmp_path)
    caplog.set_level(logging.WARNING, logger="vis_pipeline.locking")
    outcome: list[Compaction | BaseException] = []

    def maintain() -> None:
        try:
            outcome.append(compact_warehouse(location, timedelta(0)))
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=maintain)
    with wh.open_writer(location) as conn:
        snapshots = _snapshot_count(conn)
        thread.start()
        _wait_for(lambda: _waiting(caplog), "maintenance never waited for the lock")
        assert not outcome, "maintenance ran beside a writer"
        assert _snapshot_count(conn) == snapshots
        # The writer goes on with its work: a day synced again (a new file, deleted rows).
        with in_process_extractor(month.sim) as extractor:
            sync_days(extractor, _this(conn), [DAYS[-1]], TZ, full=True)
        files_when_released = catalog_file_count(conn)
        assert not outcome
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive(), "maintenance did not end once the writer had"
    (done,) = outcome
    assert isinstance(done, Compaction), done
    # It counted the files as the writer left them: it started after the writer's commit.
    assert done.files_before == files_when_released
    assert done.files_after < done.files_before
    assert_same_events(warehouse_events(location), month.expected)


def _snapshot_count(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("SELECT count(*) FROM ducklake_snapshots('warehouse')").fetchall()[0][0]


def _waiting(caplog: pytest.LogCaptureFixture) -> bool:
    return any("waiting for the warehouse" in r.getMessage() for r in list(caplog.records))


def _wait_for(condition: Any, message: str) -> None:
    done = threading.Event()
    deadline = datetime.now(UTC) + timedelta(seconds=WAIT_SECONDS)
    while not condition():
        assert datetime.now(UTC) < deadline, message
        done.wait(0.05)


def _this(conn: duckdb.DuckDBPyConnection) -> Any:
    """An opener handing the sync the connection already held (and leaving it open)."""

    @contextmanager
    def open_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
        yield conn

    return open_warehouse


def test_the_dagster_job_compacts_with_the_writers_tag_and_shows_the_figures(
    month: Month, tmp_path: Path
) -> None:
    location = copy_of(month, tmp_path)
    settings = Settings(warehouse=location.catalog, timezone=TZ, maintenance_cron="45 2 * * 0")
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(MAINTENANCE_JOB).execute_in_process(instance=instance)
    assert result.success
    assert WAREHOUSE_WRITE_TAGS.items() <= result.dagster_run.tags.items()
    (output,) = [e for e in result.events_for_node(MAINTENANCE_OP) if e.is_successful_output]
    metadata = {key: value.value for key, value in output.step_output_data.metadata.items()}
    assert metadata["files_before"] > metadata["files_after"]
    assert {"disk_files_before", "snapshots_expired", "files_deleted", "seconds"} <= set(metadata)
    schedule = defs.resolve_schedule_def(MAINTENANCE_SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("45 2 * * 0", TZ)
    assert schedule.job_name == MAINTENANCE_JOB
    assert_same_events(warehouse_events(location), month.expected)


def test_the_retention_is_at_least_a_day() -> None:
    assert DEFAULTS.snapshot_retention_days == 7
    with pytest.raises(SettingsError, match="VIS_SNAPSHOT_RETENTION_DAYS"):
        Settings(snapshot_retention_days=0)
    with pytest.raises(ValueError, match="negative"):
        compact(duckdb.connect(), timedelta(days=-1))


def test_a_data_folder_not_yet_written_counts_no_file(tmp_path: Path) -> None:
    assert disk_file_count(tmp_path / "absent") == 0
    assert disk_file_count(None) is None


def test_the_command_line_compacts_now_and_says_what_it_did(
    month: Month, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    location = copy_of(month, tmp_path)
    catalog_before, _ = counted(location)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIS_WAREHOUSE", str(location.catalog_path))
    monkeypatch.setenv("VIS_ACCESS_TOKEN", "unused-by-compaction")
    assert main(["warehouse", "compact"]) == 0
    catalog_after, _ = counted(location)
    assert catalog_after < catalog_before
    assert f"{catalog_before} -> {catalog_after}" in capsys.readouterr().out
    assert_same_events(warehouse_events(location), month.expected)
