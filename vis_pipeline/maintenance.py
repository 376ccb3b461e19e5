"""Warehouse maintenance: fewer, larger Parquet files and a bounded history. Plain functions.

Every daily commit writes its own small files (one per table and month partition), and every
commit is a snapshot the catalog keeps. :func:`compact` runs DuckLake's own maintenance, in
the order its ``CHECKPOINT`` would but with the merge before the expiry, so files merged
today are deleted a retention later rather than a run later still:

1. flush the rows small commits kept inside the catalog (data inlining) out to Parquet;
2. rewrite files whose rows are mostly deleted;
3. merge the small files of each table and partition (snapshots keep reading their own rows
   of the merged file, so results and time travel are unchanged);
4. expire the snapshots older than the retention (the latest one always stays);
5. delete the files nothing has read for the retention, and files of commits that never
   happened (a writer killed before its commit) once older than the retention.

Readers are never disturbed: a query plans on the snapshot current when it starts, and the
files that snapshot reads stay on disk for the retention after they stop being current.
The caller provides a writable connection, taken as any writer takes one (``open_writer``),
so maintenance queues behind a sync rather than running beside it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from vis_pipeline.catalog import CATALOG_ALIAS, WarehouseLocation
from vis_pipeline.sqlfiles import load_sql
from vis_pipeline.warehouse import open_writer

REWRITE_DELETE_THRESHOLD = 0.5
"""Share of a file's rows deleted beyond which it is rewritten: a file more than half deleted
makes a reader skip more rows than it returns. (DuckLake's own default waits for 95%.)"""

DATA_FILE_SUFFIX = ".parquet"
"""Data and delete files alike are Parquet files under the data path."""


@dataclass(frozen=True)
class Compaction:
    """What one maintenance run did, as figures."""

    files_before: int
    """Parquet files the current snapshot read before the run (data and delete files)."""
    files_after: int
    """Parquet files the current snapshot reads after it."""
    disk_files_before: int | None
    """Parquet files in the data folder before the run; None for object storage."""
    disk_files_after: int | None
    """Parquet files in the data folder after it (those of retained snapshots included)."""
    rows_flushed: int
    """Rows written out of the catalog into Parquet."""
    files_rewritten: int
    """Files rewritten without their deleted rows."""
    files_merged: int
    """Small files merged into larger ones."""
    snapshots_expired: int
    files_deleted: int
    """Files removed from the data path: unread for the retention, or never committed."""
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The figures by name (None where not counted)."""
        return asdict(self)


def compact(
    conn: duckdb.DuckDBPyConnection, retention: timedelta, *, now: datetime | None = None
) -> Compaction:
    """Run the maintenance on the lake attached to ``conn`` (writable); the figures.

    Snapshots older than ``now - retention`` are expired, and files unread since then are
    deleted. Each step commits on its own: a run stopped half-way leaves a whole warehouse
    (and the next run carries on). ``now`` is the wall clock unless given.
    """
    if retention < timedelta(0):
        raise ValueError(f"the retention must not be negative, got {retention}")
    started = time.monotonic()
    cutoff = (now or datetime.now(UTC)).astimezone(UTC) - retention
    folder = local_data_folder(conn)
    files_before, disk_before = catalog_file_count(conn), disk_file_count(folder)
    rows_flushed = _run(conn, "flush_inlined_data")
    rewritten = _run(conn, "rewrite_data_files", delete_threshold=REWRITE_DELETE_THRESHOLD)
    merged = _run(conn, "merge_adjacent_files")
    expired = _run(conn, "expire_snapshots", older_than=cutoff)
    deleted = _run(conn, "cleanup_old_files", older_than=cutoff)
    deleted += _run(conn, "delete_orphaned_files", older_than=cutoff)
    return Compaction(
        files_before=files_before,
        files_after=catalog_file_count(conn),
        disk_files_before=disk_before,
        disk_files_after=disk_file_count(folder),
        rows_flushed=rows_flushed,
        files_rewritten=rewritten,
        files_merged=merged,
        snapshots_expired=expired,
        files_deleted=deleted,
        seconds=round(time.monotonic() - started, 3),
    )


def compact_warehouse(location: WarehouseLocation, retention: timedelta) -> Compaction:
    """Open the warehouse as a writer (waiting for one under way) and :func:`compact` it."""
    with open_writer(location) as conn:
        return compact(conn, retention)


def _run(conn: duckdb.DuckDBPyConnection, step: str, **values: Any) -> int:
    """Run the maintenance step ``step`` (a file of ``sql/maintenance``); the count it returns."""
    rows = conn.execute(load_sql(f"maintenance/{step}"), {"catalog": CATALOG_ALIAS, **values})
    found = rows.fetchall()
    return int(found[0][0]) if found and found[0][0] is not None else 0


def catalog_file_count(conn: duckdb.DuckDBPyConnection) -> int:
    """Parquet files the current snapshot reads, as the catalog lists them."""
    return _run(conn, "select_file_count")


def local_data_folder(conn: duckdb.DuckDBPyConnection) -> Path | None:
    """The lake's data folder on this machine; None when the data path is object storage."""
    rows = conn.execute(load_sql("maintenance/select_data_path"), {"catalog": CATALOG_ALIAS})
    found = rows.fetchall()
    data_path = str(found[0][0]) if found and found[0][0] else ""
    return Path(data_path) if data_path and "://" not in data_path else None


def disk_file_count(folder: Path | None) -> int | None:
    """Parquet files under ``folder`` (0 before the first one is written); None without one."""
    if folder is None:
        return None
    if not folder.is_dir():
        return 0
    return sum(1 for path in folder.rglob(f"*{DATA_FILE_SUFFIX}") if path.is_file())
