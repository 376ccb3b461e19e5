"""The HTML pages: the dashboard of a range (tiles, charts, tables) and a report as a table.

No network, no scripts, no web fonts: the charts are inline SVG, tooltips are SVG titles, and
every piece of text from the data is escaped (caller ids are arbitrary Unicode and may hold
markup).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from vis_pipeline.dashboard.charts import daily_volume_chart, heat_map, missed_rate_chart
from vis_pipeline.dashboard.data import DashboardData, load_dashboard_data
from vis_pipeline.dashboard.figures import HeadlineFigures
from vis_pipeline.dashboard.style import (
    INBOUND_COLOR,
    MISSED_COLOR,
    OUTBOUND_COLOR,
    PAGE_CSS,
)
from vis_pipeline.dashboard.tables import html_table, unreturned_table, user_table
from vis_pipeline.dashboard.text import (
    esc,
    fmt_cell,
    fmt_duration,
    fmt_int,
    fmt_range,
    fmt_rate,
)
from vis_pipeline.reports import REPORTS

DEFAULT_TITLE = "Call report"
"""Heading of the page when the caller gives none."""


@dataclass(frozen=True)
class Tile:
    """One headline figure as shown: label, value, a note below it, and its colour."""

    label: str
    value: str
    note: str
    accent: str


def summary_tiles(figures: HeadlineFigures) -> list[Tile]:
    """The tiles of the range's headline figures (computed in SQL, only formatted here)."""
    open_windows = figures.open_unreturned_calls
    return [
        Tile(
            "Calls",
            fmt_int(figures.total_calls),
            f"{fmt_int(figures.inbound_calls)} in · {fmt_int(figures.outbound_calls)} out",
            "#1f2937",
        ),
        Tile(
            "Answered",
            fmt_rate(figures.answer_rate),
            f"{fmt_int(figures.answered_calls)} of {fmt_int(figures.finished_calls)} "
            "finished calls",
            OUTBOUND_COLOR,
        ),
        Tile(
            "Missed inbound",
            fmt_int(figures.missed_inbound_calls),
            f"{fmt_rate(figures.missed_rate)} of inbound",
            MISSED_COLOR,
        ),
        Tile(
            "Not called back",
            fmt_int(figures.unreturned_calls),
            f"{fmt_int(open_windows)} still within the callback window"
            if open_windows
            else "missed calls with no callback",
            "#b45309",
        ),
        Tile(
            "Talk time",
            fmt_duration(figures.talk_seconds_total),
            f"{fmt_duration(figures.talk_seconds_mean)} per answered call",
            INBOUND_COLOR,
        ),
        Tile(
            "Time to answer",
            fmt_duration(figures.answer_seconds_mean),
            "average ring before pick-up",
            "#7c3aed",
        ),
    ]


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{PAGE_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _tile_html(tile: Tile) -> str:
    return (
        f'<div class="tile" style="--accent:{tile.accent}">'
        f'<div class="label">{esc(tile.label)}</div>'
        f'<div class="value">{esc(tile.value)}</div>'
        f'<div class="note">{esc(tile.note)}</div></div>'
    )


def _card(title: str, subtitle: str, content: str, extra_class: str = "") -> str:
    return (
        f'<section class="card {extra_class}"><h2>{esc(title)}</h2>'
        f'<p class="sub">{esc(subtitle)}</p>{content}</section>'
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{color}"></i>{esc(label)}</span>' for label, color in items
        )
        + "</div>"
    )


def _callback_note(data: DashboardData) -> str:
    """What the waiting times are measured up to (the latest call on record)."""
    if not len(data.unreturned):
        return ""
    as_of = pd.Timestamp(data.unreturned["as_of"].max())
    return f"Waiting time measured up to the latest call on record ({as_of:%Y-%m-%d %H:%M} UTC). "


def render_dashboard_html(
    data: DashboardData, title: str = DEFAULT_TITLE, tz: str | None = None
) -> str:
    """The page for ``data``: tiles, charts, the unreturned calls and the users."""
    zone = f" · times in {tz}" if tz else ""
    body = [
        f'<header><h1>{esc(title)}</h1><div class="range">'
        f"{esc(fmt_range(data.first, data.last))}{esc(zone)}</div></header>",
        '<section class="tiles">'
        + "".join(_tile_html(t) for t in summary_tiles(data.headline))
        + "</section>",
        '<div class="grid">',
        _card(
            "Daily call volume",
            "Calls started each local day; weekends shaded.",
            _legend((("Inbound", INBOUND_COLOR), ("Outbound", OUTBOUND_COLOR)))
            + daily_volume_chart(data),
            "volume",
        ),
        _card(
            "Missed rate",
            "Share of finished inbound calls that were missed; dashed line: range average.",
            missed_rate_chart(data),
            "missed",
        ),
        "</div>",
        _card(
            "When calls come in",
            "Average inbound calls per day, by weekday and local hour; hover for missed calls.",
            heat_map(data),
            "heat",
        ),
        _card(
            "Missed calls not called back",
            f"{_callback_note(data)}No outbound call to the number and no answered call from it "
            "within the callback window.",
            unreturned_table(data),
            "unreturned",
        ),
        _card("Users", "Calls per user over the range, busiest first.", user_table(data), "users"),
        "<footer><p>Answered: picked up, including calls transferred after answering. "
        "Rates are over finished calls; calls still in progress are counted but not rated. "
        "Talk time runs from answer to hang-up.</p></footer>",
    ]
    return _page(f"{title} · {fmt_range(data.first, data.last)}", "".join(body))


def render_dashboard(
    conn: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    *,
    title: str = DEFAULT_TITLE,
    tz: str | None = None,
) -> str:
    """The page for local days ``first``..``last`` from the warehouse of ``conn``.

    ``tz``, the reporting time zone, is only shown on the page.
    """
    return render_dashboard_html(load_dashboard_data(conn, first, last), title, tz)


def render_table_page(frame: pd.DataFrame, name: str, first: date, last: date) -> str:
    """A page holding one report's rows as a table (every row; numbers right-aligned)."""
    numeric = {c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)}
    headers = [(c.replace("_", " "), "num" if c in numeric else "text") for c in frame.columns]
    rows = (
        [esc(fmt_cell(value)) for value in record]
        for record in frame.itertuples(index=False, name=None)
    )
    spec = REPORTS.get(name)
    description = spec.description if spec else ""
    body = (
        f'<header><h1>{esc(name)}</h1><div class="range">{esc(fmt_range(first, last))}</div>'
        f"</header>" + _card(f"{len(frame):,} rows", description, html_table(headers, rows))
    )
    return _page(f"{name} · {fmt_range(first, last)}", body)
