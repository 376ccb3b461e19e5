"""``vis-pipeline warehouse import``: an earlier version's single-file warehouse (or the folder
DuckDB's EXPORT DATABASE wrote of it) copied whole into the DuckLake, once.

The old file is built the way the earlier version built it: its schema files (a copy in
``tests/fixtures/``) run by DuckDB, filled from a real sync of the simulator, ``sync_id`` from
a sequence starting at 1. Every table of the imported lake is then compared row for row with
the old file, and its events with the simulator's truth.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster_processes import PostgresServer
from helpers import (
    Built,
    assert_same_events,
    build_warehouse,
    copy_warehouse,
    expected_events,
    make_event,
    opener,
    warehouse_events,
)

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation
from vis_pipeline.cli import main
from vis_pipeline.client import VISClient
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.sync import sync_days

FIRST, LAST = date(2026, 3, 2), date(2026, 3, 4)
TZ = "UTC"
OLD_SCHEMA = Path(__file__).parent / "fixtures" / "old_warehouse_schema.sql"
BAD_ID = 77_000_000_000_001
"""A record the API serves with a state no event has: quarantined in vis.rejected_events."""

OLD_TABLES = (
    "raw.events",
    "vis.events",
    "vis.users",
    "vis.accounts",
    "vis.user_directory",
    "vis.rejected_events",
    "vis.sync_windows",
    "vis.webhook_landings",
    "reports.daily_call_volume",
    "reports.missed_calls",
)

# The start of a file written by DuckDB 2.0.0 (the rest of its first 4 KB is zeros): its header
# says storage version 999, which DuckDB 1.5.5 refuses before reading anything else.
NEWER_HEADER = bytes.fromhex(
    "18804a6bc1866a684455434be7030000000000000000000000000000000000000000000000000000"
    "00000000000000000000000076322e302e3000000000000000000000000000000000000000000000"
    "00000000643534636262653364660000000000000000000000000000000000000000000000000000"
    "00000000b92ccc06582ac5132011187a3594249c"
)


@dataclass(frozen=True)
class Old:
    """An old warehouse file and the lake synced from the simulator it was filled from."""

    file: Path
    built: Built

    @property
    def truth(self) -> list[dict]:
        return [record for record in self.built.truth if record["id"] != BAD_ID]


@pytest.fixture(scope="module")
def old(simulator: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Old]:
    """A warehouse file of the earlier version holding three synced days, built once."""
    folder = tmp_path_factory.mktemp("old")
    simulator.control.inject([make_event(BAD_ID, "2026-03-03T10:00:00.000Z", "NOT_A_STATE")])
    built = build_warehouse(
        simulator, folder / "lake" / "warehouse.sqlite", FIRST, LAST, TZ, plant=False
    )
    with wh.connect(built.path) as conn:
        wh.replace_user_directory(conn, {1: "Ann Example", 2: "Bo Example"}, datetime.now(UTC))
        wh.replace_account(
            conn, {"id": 7, "name": "Example Ltd", "status": "ACTIVE"}, datetime.now(UTC)
        )
        conn.execute(
            "INSERT INTO vis.webhook_landings SELECT event_id, local_date, state, is_final, 1, "
            "start_time, start_time, now() FROM vis.events ORDER BY event_id LIMIT 3"
        )
    file = folder / "warehouse.duckdb"
    write_old_file(built.path, file)
    yield Old(file, built)


def write_old_file(lake: Path, file: Path) -> None:
    """The lake's rows in a DuckDB file laid out by the earlier version's schema files."""
    with wh.connect(lake, read_only=True) as conn:
        conn.execute(f"ATTACH '{file}' AS old")
        conn.execute("USE old")
        conn.execute(OLD_SCHEMA.read_text(encoding="utf-8"))
        conn.execute("USE warehouse")
        for table in OLD_TABLES[:-2]:
            if table == "vis.sync_windows":
                # The earlier version numbered sync rows from a sequence: 1, 2, 3...
                conn.execute(
                    "INSERT INTO old.vis.sync_windows BY NAME SELECT * EXCLUDE (sync_id), "
                    "row_number() OVER (ORDER BY sync_id) AS sync_id FROM vis.sync_windows"
                )
            else:
                conn.execute(f"INSERT INTO old.{table} BY NAME SELECT * FROM {table}")
        # Report tables as the earlier version's reporting step made them: the semantic
        # layer's figures per day (and per direction).
        figures = f"vis.call_figures(DATE '{FIRST}', DATE '{LAST}', tz := '{TZ}'"
        conn.execute(
            "CREATE TABLE old.reports.daily_call_volume AS SELECT local_date, direction, "
            f"total_calls, answered_calls, missed_calls FROM {figures}, by_direction := true)"
        )
        conn.execute(
            "CREATE TABLE old.reports.missed_calls AS SELECT local_date, inbound_calls, "
            f"missed_calls, live_calls, missed_rate FROM {figures})"
        )
        conn.execute("CREATE TABLE old.main.scratch AS SELECT 42 AS answer")  # not the project's
        conn.execute("DETACH old")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working folder whose warehouse is ``data/warehouse.sqlite`` (not created yet)."""
    monkeypatch.chdir(tmp_path)
    for variable in ("VIS_WAREHOUSE", "VIS_WAREHOUSE_DATA", "VIS_ACCESS_TOKEN", "VIS_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("VIS_TIMEZONE", TZ)
    monkeypatch.setenv("VIS_START_DATE", "2026-01-01")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path / "data" / "warehouse.sqlite"


def rows_of(conn: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> list[tuple]:
    names = ", ".join(columns)
    return conn.execute(f"SELECT {names} FROM {table} ORDER BY ALL").fetchall()


def old_columns(file: Path, table: str) -> list[str]:
    schema, name = table.split(".")
    with duckdb.connect(str(file), read_only=True) as conn:
        return [row[0] for row in conn.execute(f"DESCRIBE {schema}.{name}").fetchall()]


def assert_same_tables(file: Path, lake: Path | WarehouseLocation) -> None:
    """Every table of the old file, row for row and column for column, in the lake."""
    with duckdb.connect(str(file), read_only=True) as old, wh.connect(lake, read_only=True) as new:
        old.execute("SET TimeZone = 'UTC'")
        for table in OLD_TABLES:
            columns = old_columns(file, table)
            assert rows_of(new, table, columns) == rows_of(old, table, columns), table
            assert rows_of(old, table, columns), f"{table} is empty: the test would prove little"


def test_an_old_file_is_imported_whole_and_equals_the_truth(
    old: Old, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["warehouse", "import", str(old.file)]) == 0
    out = capsys.readouterr().out
    for table in OLD_TABLES:
        assert table in out
    assert "main.scratch" in out  # said to be left out
    assert_same_tables(old.file, env)
    assert_same_events(warehouse_events(env), expected_events(old.truth, TZ))
    with wh.connect(env, read_only=True) as conn:
        rejected = conn.execute("SELECT event_id FROM vis.rejected_events").fetchall()
    assert rejected == [(BAD_ID,)]
    assert main(["status"]) == 0, capsys.readouterr().err


def test_rows_synced_after_the_import_sort_after_the_imported_ones(
    old: Old, simulator: SimulatorProcess, env: Path
) -> None:
    assert main(["warehouse", "import", str(old.file)]) == 0
    with VISClient(simulator.base_url, simulator.token) as client, WindowExtractor(client) as ex:
        sync_days(ex, opener(env), [LAST], TZ, full=True)
    with wh.connect(env, read_only=True) as conn:
        ordered = conn.execute(
            "SELECT sync_id, finished_at FROM vis.sync_windows ORDER BY sync_id"
        ).fetchall()
    # The imported ids are kept (1, 2, 3 from the old sequence); the new row, the clock's
    # nanoseconds, sorts after them as it was written after them.
    assert [sync_id for sync_id, _ in ordered[:-1]] == list(range(1, len(ordered)))
    assert ordered[-1][0] > 10**18
    assert ordered[-1][1] == max(finished for _, finished in ordered)
    assert_same_events(warehouse_events(env), expected_events(old.truth, TZ))


def test_an_export_folder_is_imported_the_same(
    old: Old, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "exported"
    with duckdb.connect(str(old.file), read_only=True) as conn:
        conn.execute(f"EXPORT DATABASE '{exported}' (FORMAT parquet)")
    moved = exported.rename(tmp_path / "moved-elsewhere")  # load.sql names the old place
    assert main(["warehouse", "import", str(moved)]) == 0, capsys.readouterr().err
    assert_same_tables(old.file, env)
    assert_same_events(warehouse_events(env), expected_events(old.truth, TZ))


def test_a_csv_export_is_refused_saying_to_export_parquet(
    old: Old, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "exported"
    with duckdb.connect(str(old.file), read_only=True) as conn:
        conn.execute(f"EXPORT DATABASE '{exported}'")
    assert main(["warehouse", "import", str(exported)]) == 1
    assert "FORMAT parquet" in capsys.readouterr().err
    assert not env.exists()


def test_a_warehouse_holding_events_is_refused_unless_forced(
    old: Old, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_warehouse(old.built.path, env)
    with wh.connect(env, read_only=True) as conn:
        held = conn.execute("SELECT count(*), max(sync_id) FROM vis.sync_windows").fetchall()
    assert main(["warehouse", "import", str(old.file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds" in err and "--force" in err
    with wh.connect(env, read_only=True) as conn:
        assert (
            conn.execute("SELECT count(*), max(sync_id) FROM vis.sync_windows").fetchall() == held
        )

    assert main(["warehouse", "import", "--force", str(old.file)]) == 0
    assert "replacing" in capsys.readouterr().out
    assert_same_tables(old.file, env)
    assert_same_events(warehouse_events(env), expected_events(old.truth, TZ))


def test_a_file_that_is_not_a_warehouse_is_refused_in_one_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "warehouse.duckdb"
    garbage.write_bytes(bytes(range(256)) * 64)
    assert main(["warehouse", "import", str(garbage)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a DuckDB database file" in err
    assert not env.exists()  # no warehouse was started for nothing

    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as conn:
        conn.execute("CREATE TABLE things AS SELECT 1 AS thing")
    assert main(["warehouse", "import", str(other)]) == 1
    assert "not a vis-pipeline warehouse" in capsys.readouterr().err


def test_a_file_of_a_newer_duckdb_says_how_to_export_it(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = tmp_path / "warehouse.duckdb"
    newer.write_bytes(NEWER_HEADER.ljust(4096, b"\0"))
    assert struct.unpack("<Q", NEWER_HEADER[12:20]) == (999,)
    assert main(["warehouse", "import", str(newer)]) == 1
    err = capsys.readouterr().err
    assert "newer DuckDB" in err
    export = tmp_path / "warehouse-export"
    assert f"EXPORT DATABASE '{export}' (FORMAT parquet)" in err
    assert f"vis-pipeline warehouse import {export}" in err
    assert "Traceback" not in err and not env.exists()


def test_a_sync_beside_an_old_file_says_to_import_it_first(
    old: Old, env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env.parent.mkdir(parents=True)
    shutil.copy(old.file, env.with_name("warehouse.duckdb"))
    monkeypatch.setenv("VIS_ACCESS_TOKEN", "a-token")
    assert main(["sync", "--from", str(FIRST), "--to", str(LAST)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "vis-pipeline warehouse import data/warehouse.duckdb" in err
    assert not env.exists() and not (env.parent.parent / "dagster_home").exists()
    assert main(["status"]) == 1
    assert "warehouse import data/warehouse.duckdb" in capsys.readouterr().err


def test_an_import_that_fails_midway_leaves_nothing_behind(
    old: Old, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = shutil.copy(old.file, tmp_path / "changed.duckdb")
    with duckdb.connect(str(changed)) as conn:  # a column no version of the lake has
        conn.execute("ALTER TABLE vis.users ADD COLUMN nickname VARCHAR")
    assert main(["warehouse", "import", str(changed)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "vis.users" in err and "nickname" in err
    with wh.connect(env, read_only=True) as conn:  # raw.events and vis.events went in first
        counts = wh.status_summary(conn)["counts"]
    assert set(counts.values()) == {0}, counts


def test_an_old_file_is_imported_into_a_postgresql_catalog(
    old: Old,
    env: Path,
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = postgres.connect("postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS "imported"')
            cursor.execute('CREATE DATABASE "imported"')
    finally:
        admin.close()
    catalog = f"ducklake:postgres:dbname=imported host=127.0.0.1 port={postgres.port} "
    catalog += f"user={postgres.USER}"
    monkeypatch.setenv("VIS_WAREHOUSE", catalog)
    monkeypatch.setenv("VIS_WAREHOUSE_DATA", str(tmp_path / "lake-data"))
    monkeypatch.setenv("PGPASSWORD", postgres.PASSWORD)
    assert main(["warehouse", "import", str(old.file)]) == 0
    out, err = capsys.readouterr()
    assert "vis.events" in out and postgres.PASSWORD not in out + err
    location = WarehouseLocation.parse(catalog, str(tmp_path / "lake-data"))
    assert_same_tables(old.file, location)
    assert main(["sql", "select count(*) as n from vis.calls"]) == 0
    assert str(len(old.truth)) in capsys.readouterr().out
