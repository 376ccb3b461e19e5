"""Where the warehouse is, and how a process's connections share one DuckDB per lake."""

from __future__ import annotations

import os
import select
import shutil
import signal
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from helpers import make_event

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation, set_aside
from vis_pipeline.normalize import normalize_events

DAY = date(2026, 3, 2)


def _load_events(path: Path, ids: list[int]) -> None:
    """A day holding events ``ids``, loaded by a writer connection of this process."""
    start = datetime(2026, 3, 2, tzinfo=UTC)
    events = [make_event(event_id, "2026-03-02T10:00:00.000Z") for event_id in ids]
    batch = normalize_events(events, [], "UTC", datetime(2026, 3, 3, tzinfo=UTC))
    window = wh.WindowSync(
        local_date=DAY,
        window_start=start,
        window_end=datetime(2026, 3, 3, tzinfo=UTC),
        api_count=len(ids),
        pages=1,
        requests=1,
        retries=0,
        seconds=0.0,
        run_id=None,
    )
    with wh.connect(path) as conn:
        wh.load_window(conn, batch, window)


def _event_ids(path: Path) -> list[int]:
    with wh.connect(path, read_only=True) as conn:
        return [
            row[0] for row in conn.execute("SELECT event_id FROM vis.events ORDER BY 1").fetchall()
        ]


def test_connections_of_a_process_share_one_duckdb_per_lake_and_mode(
    warehouse_path: Path,
) -> None:
    _load_events(warehouse_path, [1])
    with wh.connect(warehouse_path, read_only=True) as first:
        first.execute("CREATE TABLE memory.main.marker AS SELECT 42 AS answer")
        with wh.connect(warehouse_path, read_only=True) as second:
            # The same in-memory database: the lake was attached once, for both.
            assert second.execute("SELECT answer FROM memory.main.marker").fetchall() == [(42,)]
            assert second.execute("SELECT current_database()").fetchone() == ("warehouse",)
        # Writing is another mode: another DuckDB, where the reader's table is unknown.
        with wh.connect(warehouse_path) as writer, pytest.raises(duckdb.CatalogException):
            writer.execute("SELECT answer FROM memory.main.marker")


def test_closing_a_connection_leaves_the_others_of_the_process_working(
    warehouse_path: Path,
) -> None:
    _load_events(warehouse_path, [1, 2])
    kept = wh.connect(warehouse_path, read_only=True)
    wh.connect(warehouse_path, read_only=True).close()
    assert kept.execute("SELECT count(*) FROM vis.events").fetchone() == (2,)
    kept.close()


def test_a_connection_sees_what_another_connection_of_the_process_committed(
    warehouse_path: Path,
) -> None:
    _load_events(warehouse_path, [1])
    with wh.connect(warehouse_path, read_only=True) as reader:
        assert reader.execute("SELECT count(*) FROM vis.events").fetchone() == (1,)
        _load_events(warehouse_path, [1, 2, 3])
        assert reader.execute("SELECT count(*) FROM vis.events").fetchone() == (3,)


def test_a_catalog_set_aside_is_not_read_again_by_the_process(warehouse_path: Path) -> None:
    _load_events(warehouse_path, [1, 2])
    assert _event_ids(warehouse_path) == [1, 2]
    set_aside(WarehouseLocation.parse(warehouse_path))
    with pytest.raises(wh.WarehouseError, match="no warehouse"):
        _event_ids(warehouse_path)
    _load_events(warehouse_path, [7])
    assert _event_ids(warehouse_path) == [7]


def test_a_catalog_deleted_and_made_anew_at_the_same_path_is_attached_anew(
    warehouse_path: Path,
) -> None:
    _load_events(warehouse_path, [1, 2])
    assert _event_ids(warehouse_path) == [1, 2]
    shutil.rmtree(warehouse_path.parent)  # a new file there may even reuse the old inode
    _load_events(warehouse_path, [5])
    assert _event_ids(warehouse_path) == [5]


def test_a_new_warehouse_leaves_every_table_empty_and_with_statistics(
    warehouse_path: Path,
) -> None:
    with wh.connect(warehouse_path) as conn:
        tables = conn.execute(
            "SELECT table_id, schema_name || '.' || table_name FROM "
            "__ducklake_metadata_warehouse.ducklake_table AS t "
            "JOIN __ducklake_metadata_warehouse.ducklake_schema USING (schema_id) "
            "WHERE t.end_snapshot IS NULL"
        ).fetchall()
        with_statistics = {
            row[0]
            for row in conn.execute(
                "SELECT table_id FROM __ducklake_metadata_warehouse.ducklake_table_stats"
            ).fetchall()
        }
        counts = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for _, name in tables
        }
    assert {name for _, name in tables} >= {"vis.rejected_events", "vis.user_directory"}
    # DuckLake keeps statistics only for a table that once held a row; without them it asks
    # the catalog again at every statement naming the table.
    assert {table_id for table_id, _ in tables} <= with_statistics
    # The placeholder row that left them behind is gone, except where a table holds the
    # schema's own record.
    assert {name: n for name, n in counts.items() if n} == {"vis.schema_version": 1}


def test_a_catalog_restored_over_the_same_file_is_attached_anew(tmp_path: Path) -> None:
    here = tmp_path / "here" / "warehouse.sqlite"
    other = tmp_path / "other" / "warehouse.sqlite"
    _load_events(here, [1, 2])
    _load_events(other, [9])
    assert _event_ids(here) == [1, 2]
    # Restored in place: the same file (the same inode) now holds another lake.
    for catalog in (here, other):
        with closing(sqlite3.connect(catalog)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    inode = here.stat().st_ino
    shutil.copyfile(other, here)
    shutil.rmtree(here.with_name("warehouse-data"))
    shutil.copytree(other.with_name("warehouse-data"), here.with_name("warehouse-data"))
    assert here.stat().st_ino == inode
    assert _event_ids(here) == [9]


def test_a_forked_child_attaches_the_lake_anew_and_the_parent_goes_on(
    warehouse_path: Path,
) -> None:
    _load_events(warehouse_path, [1, 2, 3])
    assert _event_ids(warehouse_path) == [1, 2, 3]  # the parent's lake is attached
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never back into pytest
        try:
            os.write(write_end, str(len(_event_ids(warehouse_path))).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        answer = os.read(read_end, 64) if ready else b"no answer in 30 s"
    finally:
        os.close(read_end)
        if not ready:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert answer == b"3"
    assert _event_ids(warehouse_path) == [1, 2, 3]
