"""The one-time import of a warehouse of an earlier version into the DuckLake.

Earlier versions kept the warehouse in one DuckDB file (``data/warehouse.duckdb``) with the
schemas ``raw``, ``vis`` and ``reports``. ``vis-pipeline warehouse import`` copies every table
of such a file, or of the folder DuckDB's ``EXPORT DATABASE ... (FORMAT parquet)`` wrote of it,
into the lake in one transaction, under the writer lock, and checks that each table then holds
exactly the rows of the old one. Values are copied as they are: the old ``sync_id`` values came
from a sequence starting at 1, far below the clock-based ids written since, so the history
keeps its order.

A file written by a newer DuckDB than the pinned one cannot be read at all; the error says how
to export it with the DuckDB that wrote it, and the export is imported instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import CATALOG_ALIAS, WarehouseLocation
from vis_pipeline.errors import WarehouseError, first_line_of
from vis_pipeline.sqlfiles import load_sql

SOURCE_ALIAS = "old_warehouse"
"""The name the old file is attached under, beside the lake."""

SCHEMAS = ("raw", "vis", "reports")
"""The warehouse's schemas: tables elsewhere in the old file are not the project's."""

LAKE_OWN = frozenset({"vis.schema_version"})
"""Tables of the lake's own bookkeeping: neither emptied nor imported."""

REQUIRED = "vis.events"
"""The table that makes a DuckDB file a warehouse of this project."""

EXPORT_SCRIPT = "load.sql"
"""The file of an EXPORT DATABASE folder that names each table's data file."""

_COPY_LINE = re.compile(
    r"^COPY\s+(?P<table>.+?)\s+FROM\s+'(?P<file>(?:[^']|'')*)'\s*\((?P<options>.*)\)\s*;?\s*$",
    re.IGNORECASE,
)
_FORMAT = re.compile(r"\bFORMAT\s+'?(\w+)'?", re.IGNORECASE)
_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|([^."\s]+)')


class OldWarehouseError(ValueError):
    """The old warehouse cannot be imported as given (the message says what to do)."""


class ImportRefused(ValueError):
    """The import would mix the old warehouse with events the lake already holds."""


@dataclass(frozen=True)
class SourceTable:
    """One table of the old warehouse and the SQL relation its rows are read from."""

    schema: str
    name: str
    relation: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class OldWarehouse:
    """A warehouse of an earlier version: its tables, and those left out."""

    path: Path
    tables: list[SourceTable]
    left_out: list[str] = field(default_factory=list)
    """Tables of the file outside the warehouse's schemas (not the project's)."""

    @property
    def is_file(self) -> bool:
        return not self.path.is_dir()

    def attach(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Make the tables readable on ``conn`` (an export's files need nothing)."""
        if self.is_file:
            _attach_file(conn, self.path)


@dataclass(frozen=True)
class TableImport:
    """What the import put in one table."""

    table: str
    rows: int
    replaced: int = 0
    """Rows the lake's table held before and no longer does (with ``replace``)."""


def read_old_warehouse(path: Path) -> OldWarehouse:
    """The warehouse file (or EXPORT DATABASE folder) at ``path``, checked to be readable and
    to hold the project's tables; OldWarehouseError otherwise, saying what to do."""
    if not path.exists():
        raise OldWarehouseError(f"{path}: no such file or folder")
    if path.is_dir():
        tables, left_out = _export_tables(path)
    else:
        with duckdb.connect() as conn:
            _attach_file(conn, path)
            tables, left_out = _file_tables(conn)
    if REQUIRED not in {table.qualified for table in tables}:
        raise OldWarehouseError(
            f"{path} holds no {REQUIRED} table: it is not a vis-pipeline warehouse"
        )
    return OldWarehouse(path, tables, left_out)


def _attach_file(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    # TYPE duckdb: a SQLite file (the lake's own catalog, say) is refused, not read as one.
    try:
        conn.execute(f"ATTACH {_literal(str(path))} AS {SOURCE_ALIAS} (READ_ONLY, TYPE duckdb)")
    except duckdb.Error as exc:
        raise OldWarehouseError(_unreadable_file(path, exc)) from None


def _unreadable_file(path: Path, exc: duckdb.Error) -> str:
    text = first_line_of(exc)
    if "newer version" in str(exc).lower() or "version number" in text.lower():
        return newer_duckdb_advice(path)
    if "not a valid duckdb database" in text.lower():
        return (
            f"{path} is not a DuckDB database file (nor a folder written by EXPORT DATABASE): "
            "nothing was imported"
        )
    return f"{path} cannot be read: {text}"


def newer_duckdb_advice(path: Path) -> str:
    """What to do with a file written by a newer DuckDB than this one: export it with the
    DuckDB that wrote it, then import the export."""
    export = path.with_name(f"{path.stem}-export")
    statement = f"EXPORT DATABASE '{export}' (FORMAT parquet)"
    return (
        f"{path} was written by a newer DuckDB than this one ({duckdb.__version__}), which "
        "cannot read it. Export it with the DuckDB that wrote it (the earlier version's "
        "environment, or `pip install 'duckdb>=2'` in a virtual environment of its own), "
        "then import the export:\n"
        f"  python -c \"import duckdb; duckdb.connect('{path}', read_only=True)"
        f'.execute(\\"{statement}\\")"\n'
        f"  vis-pipeline warehouse import {export}\n"
        f'(or with the duckdb shell of that version: duckdb -readonly {path} -c "{statement}")'
    )


def _file_tables(conn: duckdb.DuckDBPyConnection) -> tuple[list[SourceTable], list[str]]:
    tables, left_out = [], []
    rows = conn.execute(load_sql("migration/select_tables"), {"database": SOURCE_ALIAS})
    for schema, name in rows.fetchall():
        relation = f"{SOURCE_ALIAS}.{_identifier(schema)}.{_identifier(name)}"
        _sort(SourceTable(schema, name, relation), tables, left_out)
    return tables, left_out


def _export_tables(folder: Path) -> tuple[list[SourceTable], list[str]]:
    """The tables of an EXPORT DATABASE folder, read from its ``load.sql``.

    Each data file is looked for in the folder itself, whatever path ``load.sql`` recorded:
    an export is often moved (or made on another machine) before it is imported.
    """
    script = folder / EXPORT_SCRIPT
    if not script.is_file():
        raise OldWarehouseError(
            f"{folder} is a folder without {EXPORT_SCRIPT}: not one written by EXPORT DATABASE"
        )
    tables: list[SourceTable] = []
    left_out: list[str] = []
    for line in script.read_text(encoding="utf-8").splitlines():
        found = _COPY_LINE.match(line.strip())
        if found is None:
            continue
        fmt = _FORMAT.search(found["options"])
        if fmt is None or fmt[1].lower() != "parquet":
            raise OldWarehouseError(
                f"{folder} was exported as {fmt[1] if fmt else 'CSV'}, whose values lose "
                "their types: export it again with EXPORT DATABASE '...' (FORMAT parquet)"
            )
        data = folder / Path(found["file"].replace("''", "'")).name
        if not data.is_file():
            raise OldWarehouseError(f"{folder} lacks {data.name}, which {EXPORT_SCRIPT} names")
        schema, name = _table_name(found["table"])
        _sort(SourceTable(schema, name, f"read_parquet({_literal(str(data))})"), tables, left_out)
    return tables, left_out


def _table_name(text: str) -> tuple[str, str]:
    """``schema.table`` (quoted or not) as written by EXPORT DATABASE; ``main`` when unqualified."""
    parts = [quoted.replace('""', '"') or plain for quoted, plain in _NAME_PART.findall(text)]
    return ("main", parts[-1]) if len(parts) == 1 else (parts[-2], parts[-1])


def _sort(table: SourceTable, tables: list[SourceTable], left_out: list[str]) -> None:
    if table.schema not in SCHEMAS:
        left_out.append(table.qualified)
    elif table.qualified not in LAKE_OWN:
        tables.append(table)


def import_old_warehouse(
    location: WarehouseLocation, old: OldWarehouse, *, replace: bool = False
) -> list[TableImport]:
    """Copy every table of ``old`` into the lake at ``location``, in one transaction.

    The lake's tables are emptied first, so that each then holds exactly the old table's rows
    (checked before the commit); a lake table the old warehouse lacks is left empty (a report
    of events no longer held). A lake already holding events is refused (ImportRefused) unless
    ``replace``: they would be replaced. Returns what each table now holds, the old warehouse's
    tables first.
    """
    with wh.open_writer(location) as conn:
        held = int(conn.execute(load_sql("migration/select_event_count")).fetchall()[0][0])
        if held and not replace:
            raise ImportRefused(
                f"the warehouse {location.describe()} already holds {held:,} events; importing "
                "would replace them with the old warehouse's: add --force to do so, or import "
                "into a new warehouse (VIS_WAREHOUSE)"
            )
        old.attach(conn)
        conn.begin()
        try:
            replaced = _empty_lake(conn)
            imported = [_copy_table(conn, table, replaced) for table in old.tables]
            copied = {table.qualified for table in old.tables}
            imported += [
                TableImport(name, 0, rows) for name, rows in replaced.items() if name not in copied
            ]
        except BaseException as exc:
            conn.rollback()
            if isinstance(exc, duckdb.Error):
                raise WarehouseError(f"could not import {old.path}: {first_line_of(exc)}") from exc
            raise
        try:
            conn.commit()  # DuckLake writes the catalog here: another writer's commit shows now
        except duckdb.Error as exc:
            raise WarehouseError(f"could not import {old.path}: {first_line_of(exc)}") from exc
    return imported


def _empty_lake(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Delete the rows of every lake table the import replaces; the rows each held."""
    replaced = {}
    rows = conn.execute(load_sql("migration/select_tables"), {"database": CATALOG_ALIAS})
    for schema, name in rows.fetchall():
        qualified = f"{schema}.{name}"
        if schema not in SCHEMAS or qualified in LAKE_OWN:
            continue
        target = _lake_table(schema, name)
        count = _count(conn, target)
        if count:
            conn.execute(f"DELETE FROM {target}")
            replaced[qualified] = count
    return replaced


def _copy_table(
    conn: duckdb.DuckDBPyConnection, table: SourceTable, replaced: dict[str, int]
) -> TableImport:
    """Insert the old table's rows by column name; a table the lake lacks (a report not yet
    built) is created with the old one's columns."""
    target = _lake_table(table.schema, table.name)
    if not _lake_has(conn, table):
        conn.execute(f"CREATE TABLE {target} AS SELECT * FROM {table.relation} WITH NO DATA")
    columns = _columns(conn, table.relation)
    missing = [name for name in columns if name not in set(_columns(conn, target))]
    if missing:
        raise OldWarehouseError(
            f"{table.qualified} has columns the warehouse's table lacks: {', '.join(missing)}"
        )
    names = ", ".join(_identifier(name) for name in columns)
    conn.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {table.relation}")
    expected, held = _count(conn, table.relation), _count(conn, target)
    if held != expected:
        raise WarehouseError(
            f"{table.qualified} would hold {held:,} rows instead of the old {expected:,}; "
            "nothing was imported"
        )
    return TableImport(table.qualified, held, replaced.get(table.qualified, 0))


def _lake_has(conn: duckdb.DuckDBPyConnection, table: SourceTable) -> bool:
    rows = conn.execute(load_sql("migration/select_tables"), {"database": CATALOG_ALIAS})
    return (table.schema, table.name) in set(rows.fetchall())


def _lake_table(schema: str, name: str) -> str:
    return f"{CATALOG_ALIAS}.{_identifier(schema)}.{_identifier(name)}"


def _columns(conn: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _count(conn: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


def _identifier(name: str) -> str:
    """A name as a quoted SQL identifier (table names come from catalogs, never from users)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def old_file_beside(location: WarehouseLocation) -> Path | None:
    """A warehouse file of an earlier version where the lake's SQLite catalog is (or would
    be): ``<catalog name>.duckdb``, or ``warehouse.duckdb``, the old default's name."""
    catalog = location.catalog_path
    if catalog is None:
        return None
    for candidate in (catalog.with_suffix(".duckdb"), catalog.with_name("warehouse.duckdb")):
        if candidate.is_file():
            return candidate
    return None
