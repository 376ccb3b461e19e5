"""Exports: every format reads back equal to the report table; failures leave no file behind."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest
from helpers import (
    BELL_CALLER,
    FIRST,
    HOSTILE_CALLER,
    LAST,
    OPTIONS,
    TZ,
    build_warehouse,
)

from vis_pipeline import warehouse as wh
from vis_pipeline.exports import (
    DASHBOARD,
    EXCEL_REPLACEMENT,
    FORMATS,
    ExportError,
    export_file_name,
    export_report,
)
from vis_pipeline.reports import REPORTS, materialize_reports, read_report
from vis_pipeline.simulator.process import SimulatorProcess


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exports") / "warehouse.sqlite"
    with SimulatorProcess(OPTIONS) as sim:
        build_warehouse(sim, path, FIRST, LAST, TZ)
    with wh.connect(path) as conn:
        materialize_reports(conn, FIRST, LAST, TZ)
    return path


@pytest.fixture
def conn(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with wh.connect(warehouse, read_only=True) as connection:
        yield connection


def _plain(value: object) -> object:
    """One comparable Python value: None for missing, UTC datetimes, dates, ints, floats."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value
    if hasattr(value, "item"):
        return value.item()
    return value


def _rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def assert_same_rows(got: list[dict[str, object]], want: list[dict[str, object]]) -> None:
    assert len(got) == len(want)
    for got_row, want_row in zip(got, want, strict=True):
        assert list(got_row) == list(want_row)
        for column, expected in want_row.items():
            actual = got_row[column]
            if isinstance(expected, float) and isinstance(actual, float):
                assert math.isclose(actual, expected, rel_tol=1e-12), (column, actual, expected)
            else:
                assert actual == expected, (column, actual, expected)


def _kinds(table: pd.DataFrame) -> dict[str, str]:
    """What each column holds, to read a text format back with the right types."""
    kinds = {}
    for column in table.columns:
        series = table[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            kinds[column] = "instant"
        elif pd.api.types.is_datetime64_dtype(series.dtype):
            kinds[column] = "wall"
        elif series.map(lambda v: isinstance(v, date)).any():
            kinds[column] = "day"
        elif pd.api.types.is_bool_dtype(series.dtype):
            kinds[column] = "bool"
        elif pd.api.types.is_numeric_dtype(series.dtype):
            kinds[column] = "number"
        else:
            kinds[column] = "text"
    return kinds


def _typed(value: object, kind: str) -> object:
    """A value read from text (CSV, JSON, XLSX) as the table's type."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if kind == "instant":
        if isinstance(value, datetime):  # XLSX stores instants in UTC without a zone
            return value.replace(tzinfo=UTC)
        return pd.Timestamp(value).to_pydatetime().astimezone(UTC)
    if kind == "wall":
        return pd.Timestamp(value).to_pydatetime()
    if kind == "day":
        return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value))
    if kind == "bool":
        return value if isinstance(value, bool) else str(value) == "True"
    if kind == "number":
        if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
            return int(value)
        number = float(value)
        return int(number) if number.is_integer() else number
    return str(value)


def _typed_rows(records: list[dict[str, object]], kinds: dict[str, str]) -> list[dict]:
    return [{c: _typed(row[c], kinds[c]) for c in kinds} for row in records]


def _expected(table: pd.DataFrame) -> list[dict[str, object]]:
    kinds = _kinds(table)
    rows = _rows(table)
    # Whole floats read back from text as ints: compare them the same way.
    return [
        {
            c: (int(v) if kinds[c] == "number" and isinstance(v, float) and v.is_integer() else v)
            for c, v in row.items()
        }
        for row in rows
    ]


def _read_back(path: Path, fmt: str, table: pd.DataFrame) -> list[dict[str, object]]:
    kinds = _kinds(table)
    if fmt == "parquet":
        return _rows(pd.read_parquet(path))
    if fmt == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return _typed_rows(frame.to_dict("records"), kinds)
    if fmt == "json":
        return _typed_rows(json.loads(path.read_text(encoding="utf-8")), kinds)
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    header, *body = list(sheet.iter_rows(values_only=True))
    return _typed_rows([dict(zip(header, row, strict=True)) for row in body], kinds)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "xlsx"])
@pytest.mark.parametrize("name", list(REPORTS))
def test_exports_read_back_equal_to_the_table(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path, name: str, fmt: str
) -> None:
    table = read_report(conn, name, FIRST, LAST)
    assert len(table) > 0
    output = tmp_path / export_file_name(name, FIRST, LAST, fmt)
    assert export_report(conn, name, FIRST, LAST, fmt, output) == output
    got = _read_back(output, fmt, table)
    want = _rows(table) if fmt == "parquet" else _expected(table)
    if fmt == "xlsx":
        want = [
            {
                c: v.replace("\x07", EXCEL_REPLACEMENT) if isinstance(v, str) else v
                for c, v in row.items()
            }
            for row in want
        ]
    assert_same_rows(got, want)
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_parquet_keeps_the_column_types(conn: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    output = tmp_path / "unreturned.parquet"
    export_report(conn, "unreturned_missed_calls", FIRST, LAST, "parquet", output)
    schema = {field.name: str(field.type) for field in pd.read_parquet(output).pipe(_schema)}
    assert schema["local_date"] == "date32[day]"
    assert schema["start_time"].startswith("timestamp[") and "UTC" in schema["start_time"]
    assert schema["event_id"] == "int64"


def _schema(frame: pd.DataFrame) -> list:
    import pyarrow as pa

    return list(pa.Schema.from_pandas(frame, preserve_index=False))


def test_a_sub_range_exports_only_its_days(conn: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    output = tmp_path / "one-day.csv"
    export_report(conn, "missed_calls", LAST, LAST, "csv", output)
    assert pd.read_csv(output)["local_date"].tolist() == [LAST.isoformat()]


def test_html_of_a_report_is_its_table_escaped(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    output = tmp_path / "unreturned.html"
    export_report(conn, "unreturned_missed_calls", FIRST, LAST, "html", output)
    page = output.read_text(encoding="utf-8")
    table = read_report(conn, "unreturned_missed_calls", FIRST, LAST)
    assert page.count("<tr>") == len(table) + 1
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in page


def test_the_dashboard_is_a_whole_page(conn: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    output = tmp_path / export_file_name(DASHBOARD, FIRST, LAST, "html")
    export_report(conn, DASHBOARD, FIRST, LAST, "html", output, tz=TZ)
    page = output.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<svg class="chart"') == 3
    assert HOSTILE_CALLER not in page
    assert TZ in page


# ----------------------------------------------------------------------------------------------
# Failures


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("name", "fmt", "first", "last", "message"),
    [
        ("no_such_report", "csv", FIRST, LAST, "unknown report 'no_such_report'"),
        ("missed_calls", "pdf", FIRST, LAST, "unknown export format 'pdf'"),
        (DASHBOARD, "csv", FIRST, LAST, "exists only as html"),
        ("missed_calls", "csv", date(2025, 1, 1), date(2025, 1, 31), "no report data"),
        ("missed_calls", "csv", LAST, FIRST, "before first day"),
    ],
)
def test_bad_requests_raise_and_write_nothing(
    conn: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    name: str,
    fmt: str,
    first: date,
    last: date,
    message: str,
) -> None:
    output = tmp_path / "out" / "export.file"
    with pytest.raises(ExportError, match=message):
        export_report(conn, name, first, last, fmt, output)
    assert _listing(tmp_path) == []


def test_an_unwritable_path_raises_and_leaves_no_file(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="cannot write the export"):
        export_report(conn, "missed_calls", FIRST, LAST, "csv", blocker / "out.csv")
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(ExportError, match="it is a folder"):
        export_report(conn, "missed_calls", FIRST, LAST, "csv", tmp_path / "a-folder")
    assert _listing(tmp_path) == ["a-file", "a-folder"]
    assert blocker.read_text() == "not a folder"


def test_a_failed_export_keeps_the_previous_file(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    output = tmp_path / "missed.csv"
    export_report(conn, "missed_calls", FIRST, LAST, "csv", output)
    before = output.read_bytes()
    with pytest.raises(ExportError, match="no report data"):
        export_report(conn, "missed_calls", date(2025, 1, 1), date(2025, 1, 2), "csv", output)
    assert output.read_bytes() == before
    assert _listing(tmp_path) == ["missed.csv"]


_FILE_SIZE_LIMITED = """
import resource, signal, sys
from datetime import date
from pathlib import Path
from vis_pipeline import warehouse as wh
from vis_pipeline.exports import ExportError, export_report
database, output, first, last = sys.argv[1:]
conn = wh.connect(database, read_only=True)
# Writes beyond the limit fail with EFBIG (instead of killing the process). The limit lets
# through the 32 KB shared-memory file SQLite writes beside the catalog as each query opens it.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (40960, 40960))
try:
    export_report(conn, "dashboard", date.fromisoformat(first),
                  date.fromisoformat(last), "html", Path(output))
except ExportError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_write_failing_half_way_leaves_no_file(warehouse: Path, tmp_path: Path) -> None:
    """The disk refuses the file after its first few kilobytes: no partial file remains."""
    output = tmp_path / "out" / "dashboard.html"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _FILE_SIZE_LIMITED,
            str(warehouse),
            str(output),
            str(FIRST),
            str(LAST),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot write the export" in done.stdout
    assert _listing(tmp_path / "out") == []


def test_xlsx_replaces_control_characters_it_cannot_hold(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    output = tmp_path / "unreturned.xlsx"
    export_report(conn, "unreturned_missed_calls", FIRST, LAST, "xlsx", output)
    sheet = openpyxl.load_workbook(output, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    # Ids beyond what a spreadsheet holds exactly are written as text.
    assert all(isinstance(row[0], str) and row[0].isdigit() for row in rows)
    callers = {row[4] for row in rows}
    assert BELL_CALLER.replace("\x07", EXCEL_REPLACEMENT) in callers
    assert BELL_CALLER not in callers


def test_formats_are_the_documented_ones() -> None:
    assert FORMATS == ("csv", "parquet", "json", "xlsx", "html")
