"""Exports of report tables to files: CSV, Parquet, JSON, XLSX and a self-contained HTML page.

Every export is atomic: the file is written under a temporary name in the target folder and
renamed over the target at the end, so readers see the old file or the new one, never half a
file, and a failure leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd

from vis_pipeline.dashboard.page import render_dashboard, render_table_page
from vis_pipeline.reports import REPORTS, ReportError, check_range, read_report

FORMATS: tuple[str, ...] = ("csv", "parquet", "json", "xlsx", "html")
"""File formats ``export_report`` writes."""

DASHBOARD = "dashboard"
"""Pseudo-report exported as the HTML page that sums up every report (HTML only)."""

COVERAGE_REPORT = "daily_call_volume"
"""Report whose rows say which days have been materialised (any call makes a row)."""

XLSX_SHEET_CHARS = 31
"""Longest sheet name Excel accepts."""


EXCEL_REPLACEMENT = "\ufffd"
"""What stands in, in XLSX files, for a control character worksheets cannot hold."""

EXCEL_MAX_EXACT_INT = 10**15 - 1
"""Largest integer a spreadsheet shows exactly; larger ids are written as text."""

_EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class ExportError(RuntimeError):
    """An export that cannot be done; the message says why, and no file was written."""


def exportable_names() -> list[str]:
    """Names ``export_report`` accepts: every report and the dashboard."""
    return [*REPORTS, DASHBOARD]


def check_request(name: str, fmt: str) -> str:
    """The format in lower case, or ExportError for an unknown name or format."""
    if name not in REPORTS and name != DASHBOARD:
        known = ", ".join(exportable_names())
        raise ExportError(f"unknown report {name!r}; known reports: {known}")
    normalised = fmt.lower().lstrip(".") if isinstance(fmt, str) else fmt
    if normalised not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    if name == DASHBOARD and normalised != "html":
        raise ExportError(f"the {DASHBOARD} exists only as html, not {normalised}")
    return normalised


def _check_coverage(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> None:
    """ExportError when no day of the range has report rows (nothing was materialised)."""
    if read_report(conn, COVERAGE_REPORT, first, last).empty:
        raise ExportError(
            f"no report data for {first}..{last}: no calls in the warehouse for these days, "
            "or the reports were not materialised for them"
        )


def _excel_text(value: Any) -> Any:
    """Text without the control characters a worksheet cannot hold (caller ids are free text)."""
    if isinstance(value, str):
        return _EXCEL_ILLEGAL.sub(EXCEL_REPLACEMENT, value)
    return value


def _excel_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy Excel can store: it has no time zones, so instants are written in UTC."""
    ready = frame.copy()
    for column in ready.columns:
        if isinstance(ready[column].dtype, pd.DatetimeTZDtype):
            ready[column] = ready[column].dt.tz_convert("UTC").dt.tz_localize(None)
        elif pd.api.types.is_integer_dtype(ready[column].dtype):
            # Excel keeps 15 significant digits: an event id would come back rounded.
            if ready[column].abs().max() > EXCEL_MAX_EXACT_INT:
                ready[column] = ready[column].astype(str)
        elif not pd.api.types.is_numeric_dtype(ready[column].dtype):
            ready[column] = ready[column].map(_excel_text)
    return ready


def _json_value(value: Any) -> Any:
    """What orjson cannot write itself: pandas and numpy scalars, missing values."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _json_bytes(frame: pd.DataFrame) -> bytes:
    """The rows as a JSON array of objects: days as ``YYYY-MM-DD``, instants as ISO-8601 UTC."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    options = orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(records, default=_json_value, option=options) + b"\n"


def _writer(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    first: date,
    last: date,
    fmt: str,
    tz: str | None,
) -> Callable[[Path], None]:
    """A function writing the export to a path (called with the temporary file)."""
    if name == DASHBOARD:
        page = render_dashboard(conn, first, last, tz=tz)
        return lambda path: path.write_text(page, encoding="utf-8")
    frame = read_report(conn, name, first, last)
    if fmt == "csv":
        return lambda path: frame.to_csv(path, index=False, encoding="utf-8")
    if fmt == "parquet":
        return lambda path: frame.to_parquet(path, index=False, engine="pyarrow")
    if fmt == "json":
        return lambda path: path.write_bytes(_json_bytes(frame))
    if fmt == "xlsx":
        return lambda path: _excel_ready(frame).to_excel(
            path, index=False, sheet_name=name[:XLSX_SHEET_CHARS], engine="openpyxl"
        )
    page = render_table_page(frame, name, first, last)
    return lambda path: path.write_text(page, encoding="utf-8")


def _write_atomically(output: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary sibling of ``output`` and rename it over ``output``."""
    if output.is_dir():
        raise ExportError(f"cannot write the export to {output}: it is a folder")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise ExportError(f"cannot write the export to {output}: {exc.strerror or exc}") from None
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        # Temporary files are private (0600); an export is an ordinary file.
        mask = os.umask(0)
        os.umask(mask)
        temp.chmod(0o666 & ~mask)
        os.replace(temp, output)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError):
            raise ExportError(
                f"cannot write the export to {output}: {exc.strerror or exc}"
            ) from None
        raise


def export_report(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    first: date,
    last: date,
    fmt: str,
    output: Path,
    *,
    tz: str | None = None,
) -> Path:
    """Write report ``name`` for local days ``first``..``last`` to ``output`` as ``fmt``.

    ``fmt`` is one of :data:`FORMATS`. ``name`` is a report, or :data:`DASHBOARD` for the HTML
    page summing up the range. A report exported as html is a page holding its table.
    ``tz``, the reporting time zone, is only shown on the page.
    Returns ``output``; raises ExportError (leaving no file) for an unknown report or format,
    a path that cannot be written, or a range without report data.
    """
    fmt = check_request(name, fmt)
    output = Path(output)
    try:
        check_range(first, last)
    except ReportError as exc:
        raise ExportError(str(exc)) from None
    _check_coverage(conn, first, last)
    _write_atomically(output, _writer(conn, name, first, last, fmt, tz))
    return output


def export_file_name(name: str, first: date, last: date, fmt: str) -> str:
    """The conventional file name of an export: report, range and format."""
    return f"{name}_{first.isoformat()}_{last.isoformat()}.{fmt}"
