"""Analysts' own queries: the warehouse opened read-only in one line, and one query's rows
shown as an aligned table or written as CSV (``vis-pipeline sql``).

Every connection made here is a reader: it sees the last committed snapshot, never waits for a
sync and cannot change the warehouse (a statement that writes is refused by DuckDB itself).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TextIO

import duckdb
import pyarrow as pa

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation, describe_text, location_of
from vis_pipeline.envfile import project_environment
from vis_pipeline.settings import Settings

DEFAULT_LIMIT = 50
"""Rows shown on a terminal unless told otherwise (CSV always holds them all)."""

WIDEST_CELL = 60
"""Characters of one value shown in the table; longer values end in an ellipsis."""

BATCH_ROWS = 10_000
"""Rows fetched at a time: a large result streams through, never held whole."""

EXAMPLE_QUERY = "select * from vis.calls"
"""The query the documented pandas line runs."""

_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


class QueryError(ValueError):
    """A request ``vis-pipeline sql`` cannot run as given (no statement, or several)."""


def open_warehouse(
    warehouse: str | Path | None = None, *, data_path: str | None = None
) -> duckdb.DuckDBPyConnection:
    """The warehouse opened read-only: ``vis.calls``, ``vis.events``, ``reports.*`` resolve.

    Without arguments it is the warehouse the settings name (``VIS_WAREHOUSE`` and
    ``VIS_WAREHOUSE_DATA``, from the environment and the working directory's ``.env``, as the
    ``vis-pipeline`` command reads them); ``warehouse`` (and ``data_path``) name another one.
    """
    if warehouse is None:
        settings = Settings.from_env(project_environment())
        if data_path is None:
            return wh.connect(location_of(settings), read_only=True)
        warehouse = settings.warehouse
    return wh.connect(WarehouseLocation.parse(warehouse, data_path or ""), read_only=True)


def access_lines(location: WarehouseLocation) -> dict[str, str]:
    """One line each that opens ``location`` read-only: the duckdb shell, Python and pandas."""
    arguments = repr(_catalog_argument(location))
    if not location.data_beside_catalog:
        arguments += f", data_path={location.data_path!r}"
    opened = f"vis_pipeline.open_warehouse({arguments})"
    return {
        "duckdb": describe_text(location.shell_line()),
        "python": f"import vis_pipeline; conn = {opened}",
        "pandas": f"import vis_pipeline; df = {opened}.sql({EXAMPLE_QUERY!r}).df()",
    }


def _catalog_argument(location: WarehouseLocation) -> str:
    """What ``open_warehouse`` takes to name ``location`` (passwords replaced by ``***``)."""
    return location.catalog if location.kind == "sqlite" else describe_text(location.uri)


def one_statement(sql: str) -> str:
    """``sql`` when it is exactly one statement; QueryError otherwise (a parse error of
    DuckDB's own is raised as it is)."""
    statements = duckdb.extract_statements(sql)
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        raise QueryError(f"one statement at a time, got {len(statements)}")
    return sql


@dataclass(frozen=True)
class QueryResult:
    """The first rows of a query's result, and how many more it had."""

    columns: list[str]
    numeric: list[bool]
    """Whether each column holds numbers (right-aligned)."""
    rows: list[tuple[object, ...]]
    more: int
    """Rows of the result beyond ``rows``."""


def _batches(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[pa.Schema, Iterator]:
    cursor = conn.execute(one_statement(sql))
    reader = cursor.to_arrow_reader(BATCH_ROWS)
    return reader.schema, iter(reader)


def run_query(conn: duckdb.DuckDBPyConnection, sql: str, limit: int = DEFAULT_LIMIT) -> QueryResult:
    """Run ``sql`` and keep its first ``limit`` rows (all of them when ``limit`` is 0); the
    rest are counted, not kept."""
    schema, batches = _batches(conn, sql)
    rows: list[tuple[object, ...]] = []
    more = 0
    for batch in batches:
        room = batch.num_rows if limit == 0 else max(0, limit - len(rows))
        if room:
            rows += _rows(batch.slice(0, room))
        more += batch.num_rows - min(room, batch.num_rows)
    numeric = [_is_number(field.type) for field in schema]
    return QueryResult(schema.names, numeric, rows, more)


def write_csv(conn: duckdb.DuckDBPyConnection, sql: str, out: TextIO) -> int:
    """Write every row of ``sql``'s result to ``out`` as CSV with a header; returns the rows.

    NULL is an empty field; instants are ISO-8601 in UTC, the session's time zone.
    """
    schema, batches = _batches(conn, sql)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(schema.names)
    written = 0
    for batch in batches:
        for row in _rows(batch):
            writer.writerow(["" if value is None else text_of(value) for value in row])
        written += batch.num_rows
    return written


def _rows(batch: pa.RecordBatch) -> list[tuple[object, ...]]:
    columns = [column.to_pylist() for column in batch.columns]
    return list(zip(*columns, strict=True)) if columns else []


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def text_of(value: object) -> str:
    """A value as a person reads it: ISO dates and instants, JSON for lists and structs."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec=_timespec(value.microsecond))
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, pa.MonthDayNano):
        months, days, nanoseconds = value
        return f"{months} months {days} days {nanoseconds / 1e9:g} seconds"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _timespec(microsecond: int) -> str:
    if microsecond == 0:
        return "seconds"
    return "milliseconds" if microsecond % 1000 == 0 else "microseconds"


def _cell(value: object) -> str:
    text = "NULL" if value is None else text_of(value).translate(_ESCAPES)
    return text if len(text) <= WIDEST_CELL else text[: WIDEST_CELL - 1] + "…"


def format_table(result: QueryResult) -> str:
    """The rows as an aligned table (names, a rule, the rows) and a line saying how many rows
    there were."""
    cells = [[_cell(value) for value in row] for row in result.rows]
    widths = [
        max([len(name), *(len(row[index]) for row in cells)])
        for index, name in enumerate(result.columns)
    ]

    def line(values: list[str]) -> str:
        aligned = (
            value.rjust(width) if numeric else value.ljust(width)
            for value, width, numeric in zip(values, widths, result.numeric, strict=True)
        )
        return "  ".join(aligned).rstrip()

    lines = [line(list(result.columns)), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in cells]
    lines.append(_count_line(len(result.rows), result.more))
    return "\n".join(lines)


def _count_line(shown: int, more: int) -> str:
    total = shown + more
    noun = "row" if total == 1 else "rows"
    if not more:
        return f"({total:,} {noun})"
    return f"({shown:,} of {total:,} rows shown, {more:,} more: raise --limit, or --csv FILE)"
