"""Where the warehouse lives, and how a DuckDB connection opens it.

The warehouse is a DuckLake: a catalog database (which tables exist, which Parquet files hold
their rows, one snapshot per commit) plus a folder or bucket of Parquet data files. Readers
see whole commits only (snapshot isolation) and never lock out the writer, which a single
DuckDB file cannot offer across processes. The catalog is

- a SQLite file (the default, ``data/warehouse.sqlite``): any number of processes on one
  machine, one writer at a time (``locking`` queues writers);
- a PostgreSQL database (``ducklake:postgres:dbname=... host=...``): many machines and
  concurrent writers, with the data path on shared or object storage.

Every connection uses the lake attached as the catalog ``warehouse``, so ``vis.events``
resolves whatever the catalog file is called. A process keeps one in-memory DuckDB per lake
(and mode) and hands out its cursors: loading DuckLake's extension (its signature checked over
36 MB) and attaching the catalog happen once, not at every connection, and DuckLake's cache of
the catalog serves every connection of the process.
"""

from __future__ import annotations

import importlib
import os
import re
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import duckdb

from vis_pipeline.errors import OldWarehouseFile, WarehouseError, first_line_of
from vis_pipeline.settings import OLD_WAREHOUSE_SUFFIXES, Settings

CATALOG_ALIAS = "warehouse"
"""The name a connection gives the attached lake (not a schema name: vis, raw, reports)."""

SESSION_TIME_ZONE = "UTC"
"""Session time zone: fixes how DuckDB shows instants; local dates are computed before loading."""

_POSTGRES_PREFIXES = ("ducklake:postgres:", "postgres:", "postgresql://", "postgres://")
_SQLITE_PREFIX = "ducklake:sqlite:"
_PASSWORD = re.compile(r"(password\s*=\s*)(\S+)|(://[^:/@]+:)([^@]+)(@)", re.IGNORECASE)

_EXTENSIONS = {
    "sqlite": ("ducklake", "sqlite_scanner"),
    "postgres": ("ducklake", "postgres_scanner"),
}


@dataclass(frozen=True)
class WarehouseLocation:
    """A DuckLake catalog and the data path of its Parquet files."""

    kind: str
    """``sqlite`` or ``postgres``."""
    catalog: str
    """The SQLite file (absolute) or the PostgreSQL connection string."""
    data_path: str
    """Folder (absolute, ending in ``/``) or object-storage URL of the data files."""
    data_beside_catalog: bool = False
    """The data path is the default one beside a SQLite catalog: the two move together, so
    the catalog's record of the path is overridden by where the catalog is now."""

    @classmethod
    def parse(cls, value: str | Path, data_path: str = "") -> WarehouseLocation:
        """The location ``VIS_WAREHOUSE`` (``value``) and ``VIS_WAREHOUSE_DATA`` name.

        A plain path is a SQLite catalog, its data beside it in ``<name>-data/``; a PostgreSQL
        catalog needs ``data_path``. Raises ``WarehouseError`` for a DuckDB file of an earlier
        version (say how to import it) and for a PostgreSQL catalog without a data path.
        """
        text = str(value).strip()
        if not text:
            raise WarehouseError("the warehouse location is empty")
        lowered = text.lower()
        if lowered.startswith(_POSTGRES_PREFIXES):
            conninfo = _conninfo(text)
            if not data_path:
                raise WarehouseError(
                    "a PostgreSQL catalog needs VIS_WAREHOUSE_DATA: the folder or bucket every "
                    "writer and reader shares for the Parquet files"
                )
            return cls("postgres", conninfo.strip(), _folder(data_path))
        path_text = text[len(_SQLITE_PREFIX) :] if lowered.startswith(_SQLITE_PREFIX) else text
        if lowered.startswith("ducklake:") and not lowered.startswith(_SQLITE_PREFIX):
            raise WarehouseError(
                f"unsupported warehouse catalog {describe_text(text)!r}: use a SQLite file "
                "(data/warehouse.sqlite) or ducklake:postgres:<connection string>"
            )
        path = Path(path_text).expanduser()
        if path.suffix.lower() in OLD_WAREHOUSE_SUFFIXES:
            raise OldWarehouseFile(path)
        path = path.resolve()
        if data_path:
            return cls("sqlite", str(path), _folder(data_path))
        return cls("sqlite", str(path), _folder(str(path.with_name(f"{path.stem}-data"))), True)

    @property
    def uri(self) -> str:
        """The DuckLake URI, as ``ATTACH`` takes it (may hold a password: never print it)."""
        return f"ducklake:{self.kind}:{self.catalog}"

    def describe(self) -> str:
        """The location for messages: passwords are replaced by ``***``."""
        return describe_text(self.uri)

    @property
    def catalog_path(self) -> Path | None:
        """The SQLite catalog file; None for a catalog on a server."""
        return Path(self.catalog) if self.kind == "sqlite" else None

    @property
    def lock_path(self) -> Path | None:
        """The file ``locking`` queues writers on; None where the catalog takes concurrent
        writers (PostgreSQL)."""
        path = self.catalog_path
        return None if path is None else path.with_name(path.name + ".lock")

    def exists(self) -> bool:
        """Whether the catalog has been created (always True for a server: it is asked)."""
        path = self.catalog_path
        return True if path is None else path.exists()

    def attach_sql(self, *, read_only: bool) -> str:
        """The ``ATTACH`` statement (ATTACH takes no bound parameters: values are quoted)."""
        # DuckLake records the data path at creation. A data folder beside its catalog moves
        # with it (copied, renamed, mounted elsewhere), so where it is now overrides the
        # record. A data path set apart is checked instead: a writer naming another one than
        # the catalog's fails rather than scatter files; a reader takes the recorded one.
        options = ["READ_ONLY"] if read_only else []
        if self.data_beside_catalog:
            options += [f"DATA_PATH {_quoted(self.data_path)}", "OVERRIDE_DATA_PATH true"]
        elif not read_only:
            options.append(f"DATA_PATH {_quoted(self.data_path)}")
        return f"ATTACH {_quoted(self.uri)} AS {CATALOG_ALIAS} ({', '.join(options)})"

    def shell_line(self) -> str:
        """One line that opens the warehouse read-only in the duckdb shell."""
        attach = self.attach_sql(read_only=True).replace('"', '\\"')
        return f'duckdb -cmd "{attach}; USE {CATALOG_ALIAS};"'


def _conninfo(text: str) -> str:
    """The PostgreSQL connection string of a catalog value (a URI stays whole)."""
    for prefix in ("ducklake:postgres:", "postgres:"):
        if text.lower().startswith(prefix) and "://" not in text[: len(prefix) + 1]:
            return text[len(prefix) :]
    return text


def describe_text(text: str) -> str:
    """``text`` with any password in it replaced by ``***``."""
    return _PASSWORD.sub(
        lambda m: f"{m.group(1)}***" if m.group(1) else f"{m.group(3)}***{m.group(5)}", text
    )


def _folder(value: str) -> str:
    """A data path as DuckLake stores it: URLs as given, folders absolute; both end in ``/``.

    DuckLake stores the path as written and reads relative paths from the reader's working
    directory, so a relative folder would move with whoever opens the lake.
    """
    if "://" not in value:
        value = str(Path(value).expanduser().resolve())
    return value if value.endswith("/") else value + "/"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def extension_file(name: str) -> Path | None:
    """The extension ``name`` as shipped in its ``duckdb-extension-*`` package for this
    DuckDB; None when that package is not installed."""
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        return None
    path = files(module) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    return Path(str(path)) if path.is_file() else None


def load_extensions(conn: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Load DuckLake and the catalog's scanner: the packaged files first, else DuckDB's own
    installed extensions (``LOAD name``)."""
    (unchecked,) = conn.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()
    for name in _EXTENSIONS[kind]:
        packaged = extension_file(name)
        try:
            conn.execute(f"LOAD {_quoted(str(packaged))}" if packaged else f"LOAD {name}")
        except duckdb.Error as exc:
            package = "duckdb-extension-" + name.replace("_", "-")
            raise WarehouseError(
                f"DuckDB's {name} extension is missing: pip install "
                f"'{package}=={duckdb.__version__}' (or INSTALL {name} in DuckDB)"
            ) from exc
        if packaged is not None and not unchecked:
            _checked_files.add(_file_identity(packaged))


_checked_files: set[tuple[str, int, int, int]] = set()
"""Packaged extension files whose signature DuckDB has checked in this process."""


def _file_identity(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _new_duckdb(kind: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB to attach a lake of ``kind`` to.

    DuckDB checks an extension's signature at every load, reading the whole file: 0.3 s for
    DuckLake's and the scanner's 70 MB. Once it has checked these very files in this process
    (the same inode, size and modification time), a new DuckDB loads them without checking
    again.
    """
    packaged = [extension_file(name) for name in _EXTENSIONS[kind]]
    checked = all(path is not None and _file_identity(path) in _checked_files for path in packaged)
    return duckdb.connect(config={"allow_unsigned_extensions": True} if checked else {})


def open_lake(location: WarehouseLocation, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection with the lake attached as ``warehouse`` and in use: a cursor of this
    process's DuckDB for the lake in that mode, which attaches it on first use. Close it when
    done; the DuckDB stays for the next connection."""
    cursor = _shared_lake(location, read_only).cursor()
    try:
        # Both are settings of the connection (a cursor starts from DuckDB's defaults).
        cursor.execute(f"SET TimeZone = '{SESSION_TIME_ZONE}'")  # a constant
        cursor.execute(f"USE {CATALOG_ALIAS}")
    except BaseException:
        cursor.close()
        raise
    return cursor


@dataclass(frozen=True)
class _Lake:
    """An in-memory DuckDB of this process with one lake attached."""

    conn: duckdb.DuckDBPyConnection
    pid: int
    """The process that attached it: a forked child attaches its own."""
    catalog_file: tuple[int, int, str] | None
    """The SQLite catalog's identity when attached (``_catalog_file``): a catalog since
    replaced (set aside, deleted and made anew, restored from a copy) is attached again."""

    def serves(self, location: WarehouseLocation) -> bool:
        return self.pid == os.getpid() and self.catalog_file == _catalog_file(location)


MAX_SHARED_LAKES = 8
"""Lakes a process keeps attached; the least recently opened beyond that is let go."""

_lakes: dict[tuple[WarehouseLocation, bool], _Lake] = {}
_lakes_lock = threading.Lock()
_inherited: list[_Lake] = []
"""Lakes a forked child found in its parent's memory: kept, never used, closed nor freed
(freeing one would run DuckDB's shutdown, which waits for threads that exist in the parent
only; the child attaches a lake of its own)."""


def _catalog_file(location: WarehouseLocation) -> tuple[int, int, str] | None:
    """What tells this SQLite catalog from any other that may later take its place: the file
    (device and inode, which a new file may reuse) and when its lake was created (its first
    snapshot's time). None for a catalog on a server, or none yet."""
    path = location.catalog_path
    if path is None:
        return None
    try:
        stat = path.stat()
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as catalog:
            row = catalog.execute(
                "SELECT snapshot_time FROM ducklake_snapshot WHERE snapshot_id = 0"
            ).fetchone()
    except (OSError, sqlite3.Error):
        return None
    return (stat.st_dev, stat.st_ino, str(row[0]) if row else "")


def _shared_lake(location: WarehouseLocation, read_only: bool) -> duckdb.DuckDBPyConnection:
    """This process's DuckDB with ``location`` attached in this mode, attaching it if needed."""
    key = (location, read_only)
    with _lakes_lock:
        lake = _let_go(_lakes.pop(key, None))
        if lake is None or not lake.serves(location) or not location.exists():
            conn = _new_duckdb(location.kind)
            try:
                attach_lake(conn, location, read_only=read_only)
            except BaseException:
                conn.close()
                raise
            lake = _Lake(conn, os.getpid(), _catalog_file(location))
        _lakes[key] = lake  # last: the dict's order is the order of use
        while len(_lakes) > MAX_SHARED_LAKES:
            _let_go(_lakes.pop(next(iter(_lakes))))
        return lake.conn


def _let_go(lake: _Lake | None) -> _Lake | None:
    """``lake`` if this process attached it; else it is kept aside, and None.

    A lake let go is never closed: a connection still in use keeps its DuckDB alive.
    """
    if lake is not None and lake.pid != os.getpid():
        _inherited.append(lake)
        return None
    return lake


def forget_lake(location: WarehouseLocation) -> None:
    """Let this process's DuckDBs attached to ``location`` go (its files are being moved)."""
    with _lakes_lock:
        for read_only in (False, True):
            _let_go(_lakes.pop((location, read_only), None))


def attach_lake(
    conn: duckdb.DuckDBPyConnection, location: WarehouseLocation, *, read_only: bool
) -> None:
    """Attach the lake to ``conn`` as ``warehouse`` and use it; a writer creates a new one."""
    if read_only and not location.exists():
        raise WarehouseError(f"no warehouse at {location.describe()}; run `vis-pipeline sync`")
    if not read_only and location.catalog_path is not None:
        location.catalog_path.parent.mkdir(parents=True, exist_ok=True)
        _write_ahead_log(location.catalog_path)
    conn.execute(f"SET TimeZone = '{SESSION_TIME_ZONE}'")  # a constant
    load_extensions(conn, location.kind)
    try:
        _attach(conn, location, read_only=read_only)
    except duckdb.Error as exc:
        raise WarehouseError(
            f"could not open the warehouse {location.describe()}: "
            f"{describe_text(first_line_of(exc))}"
        ) from None
    conn.execute(f"USE {CATALOG_ALIAS}")


ATTACH_ATTEMPTS = 3
"""Times a writer attaches a lake that another writer may be creating at the same moment."""


def _attach(
    conn: duckdb.DuckDBPyConnection, location: WarehouseLocation, *, read_only: bool
) -> None:
    """ATTACH the lake. Two writers meeting an empty PostgreSQL catalog both create DuckLake's
    tables and one fails ("Failed to initialize DuckLake"); a moment later it finds them made."""
    for attempt in range(1, ATTACH_ATTEMPTS + 1):
        try:
            conn.execute(location.attach_sql(read_only=read_only))
            return
        except duckdb.Error as exc:
            if read_only or attempt == ATTACH_ATTEMPTS or "initialize DuckLake" not in str(exc):
                raise
            time.sleep(0.3 * attempt)


def _write_ahead_log(path: Path) -> None:
    """Put a SQLite catalog in WAL mode (once: the mode stays in the file).

    In SQLite's default mode a reader's open transaction blocks a commit, and the writer gives
    up after a few seconds: an analyst's long query would fail the sync. In WAL mode readers
    and the one writer never wait for each other. Readers then need the ``-wal`` and ``-shm``
    files beside the catalog (SQLite creates them; a read-only folder must already hold them).
    """
    with closing(sqlite3.connect(path)) as catalog:
        if catalog.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            catalog.execute("PRAGMA journal_mode = WAL")


def set_aside(location: WarehouseLocation, reason: str = "broken") -> list[Path]:
    """Move a SQLite catalog and its data folder out of the way; returns their new names.

    Nothing is deleted: the damaged warehouse stays beside the new one for whoever wants to
    look. A catalog on a server is not moved (its owner drops it).
    """
    path = location.catalog_path
    if path is None:
        raise WarehouseError(
            "a PostgreSQL catalog is not set aside by vis-pipeline: drop or rename its "
            "database, then sync again"
        )
    forget_lake(location)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[Path] = []
    data = Path(location.data_path) if "://" not in location.data_path else None
    companions = [path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal")]
    for item in (path, *companions):
        if item.exists():
            moved.append(item.rename(item.with_name(f"{item.name}.{reason}-{stamp}")))
    if data is not None and data.exists():
        moved.append(data.rename(data.with_name(f"{data.name}.{reason}-{stamp}")))
    return moved


def location_of(settings: Settings) -> WarehouseLocation:
    """The warehouse ``settings`` name (``VIS_WAREHOUSE`` and ``VIS_WAREHOUSE_DATA``)."""
    return WarehouseLocation.parse(settings.warehouse, settings.warehouse_data)
