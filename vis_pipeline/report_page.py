"""The report page: one self-contained HTML file summing up a range of days for a manager.

No network, no scripts, no web fonts: the charts are SVG drawn here, tooltips are SVG titles,
and every piece of text from the data is escaped (caller ids are arbitrary Unicode and may
hold markup).
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pandas as pd

from vis_pipeline.reports import REPORTS, read_report

DEFAULT_TITLE = "Call report"
"""Heading of the page when the caller gives none."""

INBOUND_COLOR = "#3461d1"
"""Colour of inbound calls in every chart."""

OUTBOUND_COLOR = "#18a999"
"""Colour of outbound calls in every chart."""

MISSED_COLOR = "#d9344f"
"""Colour of missed calls and of the missed rate."""

HEAT_LOW = (238, 242, 255)
"""Heat map colour of an hour without calls (RGB)."""

HEAT_HIGH = (30, 58, 138)
"""Heat map colour of the busiest hour (RGB)."""

MAX_TABLE_ROWS = 30
"""Rows shown in a dashboard table; the rest are counted in a note (the exports hold them all)."""

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Heat map rows, in ISO order."""

CHART_WIDTH = 640
"""Width of the SVG coordinate system of a chart (it scales to its card)."""

CHART_HEIGHT = 260
"""Height of the SVG coordinate system of a line or bar chart."""

_HEAT_LEFT, _HEAT_W, _HEAT_H = 40, 40, 28  # heat map: room for weekday names, cell size

LONG_HOURS = 100
"""From this many hours on, a duration is shown in whole hours (minutes are noise)."""

# Room around the plot of a bar or line chart: value labels left, day labels below.
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 48, 12, 14, 34
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FONT = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", "Liberation Sans", sans-serif'
)


def esc(value: object) -> str:
    """``value`` as text safe inside HTML or SVG, attributes included.

    Control characters (free text such as caller ids may hold them) are not allowed in HTML
    text: they become U+FFFD.
    """
    text = "" if _missing(value) else str(value)
    return html.escape(_CONTROL.sub("\ufffd", text), quote=True)


def _missing(value: object) -> bool:
    """Whether ``value`` is None, NaN or pandas' NA (scalars only)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt_int(value: object) -> str:
    """A count with thousands separators; a dash when missing."""
    return "–" if _missing(value) else f"{int(value):,}"  # type: ignore[call-overload]


def fmt_rate(value: object, digits: int = 1) -> str:
    """A fraction as a percentage; a dash when missing."""
    return "–" if _missing(value) else f"{float(value) * 100:.{digits}f}%"  # type: ignore[arg-type]


def fmt_duration(seconds: object) -> str:
    """Seconds as ``42s``, ``3m 05s`` or ``2h 07m``; a dash when missing."""
    if _missing(seconds):
        return "–"
    total = round(float(seconds))  # type: ignore[arg-type]
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours >= LONG_HOURS:
        return f"{hours + minutes / 60:,.0f}h"
    return f"{hours:,}h {minutes:02d}m"


def fmt_day(day: date) -> str:
    """A day as ``Mon 2 Mar 2026``."""
    return f"{WEEKDAYS[day.weekday()]} {day.day} {day:%b %Y}"


def fmt_range(first: date, last: date) -> str:
    """A range of days, short when it stays within a month or a year."""
    if first == last:
        return fmt_day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%B %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def _fmt_cell(value: object) -> str:
    """A table value as text: dates and times without noise, floats rounded."""
    if _missing(value):
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


# ---------------------------------------------------------------------------------------------
# The data behind the page


@dataclass(frozen=True)
class DashboardData:
    """The report rows one page shows."""

    first: date
    last: date
    volume: pd.DataFrame
    missed: pd.DataFrame
    missed_by_hour: pd.DataFrame
    volume_by_user: pd.DataFrame
    missed_by_user: pd.DataFrame
    unreturned: pd.DataFrame


_FRAME_OF_REPORT = {
    "daily_call_volume": "volume",
    "daily_call_volume_by_user": "volume_by_user",
    "missed_calls": "missed",
    "missed_calls_by_hour": "missed_by_hour",
    "missed_calls_by_user": "missed_by_user",
    "unreturned_missed_calls": "unreturned",
}


def report_frame(data: DashboardData, name: str) -> pd.DataFrame:
    """The rows of report ``name`` held by ``data``."""
    return getattr(data, _FRAME_OF_REPORT[name])


def load_dashboard_data(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> DashboardData:
    """The rows of every report the page uses, for local days ``first``..``last``."""
    return DashboardData(
        first=first,
        last=last,
        volume=read_report(conn, "daily_call_volume", first, last),
        missed=read_report(conn, "missed_calls", first, last),
        missed_by_hour=read_report(conn, "missed_calls_by_hour", first, last),
        volume_by_user=read_report(conn, "daily_call_volume_by_user", first, last),
        missed_by_user=read_report(conn, "missed_calls_by_user", first, last),
        unreturned=read_report(conn, "unreturned_missed_calls", first, last),
    )


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def _as_dates(column: pd.Series) -> list[date]:
    return [pd.Timestamp(value).date() for value in column]


def _sum(frame: pd.DataFrame, column: str) -> float:
    return (
        float(pd.to_numeric(frame[column], errors="coerce").fillna(0).sum()) if len(frame) else 0.0
    )


@dataclass(frozen=True)
class Tile:
    """One summary figure."""

    label: str
    value: str
    note: str
    accent: str


def summary_tiles(data: DashboardData) -> list[Tile]:
    """The headline figures of the range."""
    volume = data.volume
    inbound = volume[volume["direction"] == "INBOUND"] if len(volume) else volume
    total = _sum(volume, "total_calls")
    finished = total - _sum(volume, "live_calls")
    answered = _sum(volume, "answered_calls")
    inbound_total = _sum(inbound, "total_calls")
    missed = _sum(data.missed, "missed_calls")
    inbound_finished = _sum(data.missed, "inbound_calls") - _sum(data.missed, "live_calls")
    talk = _sum(volume, "talk_seconds_total")
    with_answer = volume.dropna(subset=["answer_seconds_mean"]) if len(volume) else volume
    answer_weight = _sum(with_answer, "answered_calls")
    answer_mean = (
        float((with_answer["answer_seconds_mean"] * with_answer["answered_calls"]).sum())
        / answer_weight
        if answer_weight
        else None
    )
    unreturned = len(data.unreturned)
    open_windows = int((~data.unreturned["window_closed"].astype(bool)).sum()) if unreturned else 0
    return [
        Tile(
            "Calls",
            fmt_int(total),
            f"{fmt_int(inbound_total)} in · {fmt_int(total - inbound_total)} out",
            "#1f2937",
        ),
        Tile(
            "Answered",
            fmt_rate(answered / finished if finished else None),
            f"{fmt_int(answered)} of {fmt_int(finished)} finished calls",
            OUTBOUND_COLOR,
        ),
        Tile(
            "Missed inbound",
            fmt_int(missed),
            f"{fmt_rate(missed / inbound_finished if inbound_finished else None)} of inbound",
            MISSED_COLOR,
        ),
        Tile(
            "Not called back",
            fmt_int(unreturned),
            f"{fmt_int(open_windows)} still within the callback window"
            if open_windows
            else "missed calls with no callback",
            "#b45309",
        ),
        Tile(
            "Talk time",
            fmt_duration(talk),
            f"{fmt_duration(talk / answered if answered else None)} per answered call",
            INBOUND_COLOR,
        ),
        Tile(
            "Time to answer",
            fmt_duration(answer_mean),
            "average ring before pick-up",
            "#7c3aed",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Charts (SVG)


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 covering ``top`` (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _svg(width: int, height: int, label: str, body: Iterable[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(label)}" preserveAspectRatio="xMidYMid meet">'
        f"<title>{esc(label)}</title>{''.join(body)}</svg>"
    )


def _empty_chart(label: str) -> str:
    return f'<div class="empty">{esc(label)}</div>'


def standalone_svg(chart: str) -> str:
    """A chart of this module as an SVG document of its own (for an ``<img>`` or a file).

    Returns ``chart`` unchanged when it is not an SVG (an empty-data message).
    """
    if not chart.startswith("<svg "):
        return chart
    head = '<svg xmlns="http://www.w3.org/2000/svg" '
    style = f"<style>{html.escape(_SVG_CSS, quote=False)}</style>"
    opened = chart.index(">") + 1
    return head + chart[len("<svg ") : opened] + style + chart[opened:]


def svg_data_uri(chart: str) -> str:
    """A chart as a ``data:`` URI, for a markdown image."""
    encoded = base64.b64encode(standalone_svg(chart).encode("utf-8")).decode("ascii")
    return f"data:image/svg+xml;base64,{encoded}"


def bar_chart(labels: Sequence[str], values: Sequence[float], color: str, label: str) -> str:
    """Vertical bars, one per label (days, for instance), with a value axis."""
    if not values or not any(values):
        return _empty_chart(f"{label}: nothing to show")
    ticks = nice_ticks(max(values))
    plot_h = CHART_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    slot = (CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT) / len(values)
    bar = max(1.0, min(slot * 0.72, 48.0))

    def x_of(index: int) -> float:
        return _MARGIN_LEFT + slot * (index + 0.5)

    def y_of(value: float) -> float:
        return CHART_HEIGHT - _MARGIN_BOTTOM - plot_h * value / ticks[-1]

    body = _y_axis(ticks, y_of, lambda t: f"{t:,.0f}")
    for index, (text, value) in enumerate(zip(labels, values, strict=True)):
        top = y_of(value)
        body.append(
            f'<g class="bar"><title>{esc(f"{text}: {value:,.0f}")}</title>'
            f'<rect x="{x_of(index) - bar / 2:.1f}" y="{top:.1f}" width="{bar:.1f}" '
            f'height="{y_of(0) - top:.1f}" fill="{color}"/></g>'
        )
    every = _label_every(len(labels), CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT, 60)
    body += [
        f'<text class="axis" x="{x_of(i):.1f}" y="{CHART_HEIGHT - _MARGIN_BOTTOM + 18}" '
        f'text-anchor="middle">{esc(text)}</text>'
        for i, text in enumerate(labels)
        if i % every == 0
    ]
    return _svg(CHART_WIDTH, CHART_HEIGHT, label, body)


def hbar_chart(labels: Sequence[str], values: Sequence[float], color: str, label: str) -> str:
    """Horizontal bars with their values, one per label (users, for instance), in given order."""
    if not values or not any(values):
        return _empty_chart(f"{label}: nothing to show")
    left, row_h, right = 170, 24, 70
    top = max(values)
    width = CHART_WIDTH
    room = width - left - right
    body: list[str] = []
    for index, (text, value) in enumerate(zip(labels, values, strict=True)):
        y = 6 + index * row_h
        length = room * value / top
        short = text if len(text) <= 24 else text[:23] + "…"
        body.append(
            f'<g class="bar"><title>{esc(f"{text}: {value:,.0f}")}</title>'
            f'<text class="axis" x="{left - 10}" y="{y + 15}" text-anchor="end">{esc(short)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{max(length, 1):.1f}" height="{row_h - 8}" '
            f'rx="3" fill="{color}"/>'
            f'<text class="axis" x="{left + length + 6:.1f}" y="{y + 15}">{value:,.0f}</text></g>'
        )
    return _svg(width, 12 + len(values) * row_h, label, body)


def _label_every(count: int, room: float, per_label: float) -> int:
    """Show one x label in this many, so labels never overlap."""
    return max(1, math.ceil(count * per_label / max(room, 1)))


def _y_axis(
    ticks: Sequence[float], y_of: Callable[[float], float], fmt: Callable[[float], str]
) -> list[str]:
    parts = []
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{_MARGIN_LEFT}" x2="{CHART_WIDTH - _MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_MARGIN_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(fmt(tick))}</text>"
        )
    return parts


def _x_labels(days: Sequence[date], x_of: Callable[[int], float]) -> list[str]:
    room = CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT
    every = _label_every(len(days), room, 52)
    y = CHART_HEIGHT - _MARGIN_BOTTOM + 18
    parts = []
    for index, day in enumerate(days):
        if index % every:
            continue
        text = f"{day.day} {day:%b}" if len(days) > 7 else f"{WEEKDAYS[day.weekday()]} {day.day}"
        parts.append(
            f'<text class="axis" x="{x_of(index):.1f}" y="{y}" text-anchor="middle">'
            f"{esc(text)}</text>"
        )
    return parts


def _weekend_bands(days: Sequence[date], x_of: Callable[[int], float], slot: float) -> list[str]:
    top, bottom = _MARGIN_TOP, CHART_HEIGHT - _MARGIN_BOTTOM
    return [
        f'<rect class="weekend" x="{x_of(i) - slot / 2:.1f}" y="{top}" '
        f'width="{slot:.1f}" height="{bottom - top}"/>'
        for i, day in enumerate(days)
        if day.weekday() >= 5
    ]


def daily_volume_chart(data: DashboardData) -> str:
    """Stacked bars per day: inbound below, outbound on top."""
    days = _days(data.first, data.last)
    counts = {(day, direction): 0 for day in days for direction in ("INBOUND", "OUTBOUND")}
    for day, direction, total in zip(
        _as_dates(data.volume["local_date"]),
        data.volume["direction"],
        data.volume["total_calls"],
        strict=True,
    ):
        counts[(day, direction)] = int(total)
    if not any(counts.values()):
        return _empty_chart("No calls in this range")
    top = max(counts[(d, "INBOUND")] + counts[(d, "OUTBOUND")] for d in days)
    ticks = nice_ticks(top)
    plot_h = CHART_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    slot = (CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT) / len(days)
    bar = max(1.0, min(slot * 0.72, 48.0))

    def x_of(index: int) -> float:
        return _MARGIN_LEFT + slot * (index + 0.5)

    def y_of(value: float) -> float:
        return CHART_HEIGHT - _MARGIN_BOTTOM - plot_h * value / ticks[-1]

    body = _weekend_bands(days, x_of, slot) + _y_axis(ticks, y_of, lambda t: f"{t:,.0f}")
    for index, day in enumerate(days):
        inbound, outbound = counts[(day, "INBOUND")], counts[(day, "OUTBOUND")]
        tip = esc(
            f"{fmt_day(day)}: {inbound:,} inbound, {outbound:,} outbound, "
            f"{inbound + outbound:,} calls"
        )
        x = x_of(index) - bar / 2
        base = y_of(0)
        y_in, y_out = y_of(inbound), y_of(inbound + outbound)
        body.append(
            f'<g class="bar"><title>{tip}</title>'
            f'<rect x="{x:.1f}" y="{y_in:.1f}" width="{bar:.1f}" height="{base - y_in:.1f}" '
            f'fill="{INBOUND_COLOR}"/>'
            f'<rect x="{x:.1f}" y="{y_out:.1f}" width="{bar:.1f}" height="{y_in - y_out:.1f}" '
            f'fill="{OUTBOUND_COLOR}"/></g>'
        )
    body += _x_labels(days, x_of)
    return _svg(CHART_WIDTH, CHART_HEIGHT, "Calls per day, inbound and outbound", body)


def missed_rate_chart(data: DashboardData) -> str:
    """The share of finished inbound calls missed, day by day, with the range's average."""
    days = _days(data.first, data.last)
    rates: dict[date, float] = {}
    missed_counts: dict[date, int] = {}
    for day, rate, missed in zip(
        _as_dates(data.missed["local_date"]),
        data.missed["missed_rate"],
        data.missed["missed_calls"],
        strict=True,
    ):
        if not _missing(rate):
            rates[day] = float(rate)
            missed_counts[day] = int(missed)
    if not rates:
        return _empty_chart("No finished inbound calls in this range")
    finished = _sum(data.missed, "inbound_calls") - _sum(data.missed, "live_calls")
    average = _sum(data.missed, "missed_calls") / finished if finished else None
    ticks = nice_ticks(max(max(rates.values()), 0.05), 4)
    plot_h = CHART_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    slot = (CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT) / len(days)

    def x_of(index: int) -> float:
        return _MARGIN_LEFT + slot * (index + 0.5)

    def y_of(value: float) -> float:
        return CHART_HEIGHT - _MARGIN_BOTTOM - plot_h * value / ticks[-1]

    body = _weekend_bands(days, x_of, slot) + _y_axis(ticks, y_of, lambda t: f"{t * 100:.0f}%")
    points = [(x_of(i), y_of(rates[day]), day) for i, day in enumerate(days) if day in rates]
    if len(points) > 1:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        area = f"{points[0][0]:.1f},{y_of(0):.1f} {line} {points[-1][0]:.1f},{y_of(0):.1f}"
        body.append(f'<polygon class="area" points="{area}" fill="{MISSED_COLOR}"/>')
        body.append(f'<polyline class="line" points="{line}" stroke="{MISSED_COLOR}"/>')
    if average is not None:
        y = y_of(average)
        body.append(
            f'<line class="average" x1="{_MARGIN_LEFT}" x2="{CHART_WIDTH - _MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"><title>{esc(f"Average {fmt_rate(average)}")}</title>'
            f"</line>"
            f'<text class="axis average-label" x="{_MARGIN_LEFT + 6}" '
            f'y="{y - 6:.1f}">avg {esc(fmt_rate(average))}</text>'
        )
    radius = 3.5 if len(days) <= 45 else 2.0
    for x, y, day in points:
        tip = esc(f"{fmt_day(day)}: {fmt_rate(rates[day])} missed ({missed_counts[day]:,} calls)")
        body.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" '
            f'stroke="{MISSED_COLOR}"><title>{tip}</title></circle>'
        )
    body += _x_labels(days, x_of)
    return _svg(CHART_WIDTH, CHART_HEIGHT, "Share of inbound calls missed per day", body)


def _heat_color(share: float) -> str:
    channels = (round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*channels)


def _heat_grids(data: DashboardData) -> tuple[list[list[float]], list[list[int]], list[int]]:
    """Average inbound calls per weekday and hour (per calendar day of that weekday in the
    range, so a range with more Mondays does not make Mondays look busier), missed totals,
    and how many days of each weekday the range has."""
    weekdays = [0] * 7
    for day in _days(data.first, data.last):
        weekdays[day.weekday()] += 1
    calls = [[0.0] * 24 for _ in WEEKDAYS]
    missed = [[0] * 24 for _ in WEEKDAYS]
    frame = data.missed_by_hour
    for day, hour, inbound, miss in zip(
        _as_dates(frame["local_date"]),
        frame["local_hour"],
        frame["inbound_calls"],
        frame["missed_calls"],
        strict=True,
    ):
        calls[day.weekday()][int(hour)] += int(inbound) / weekdays[day.weekday()]
        missed[day.weekday()][int(hour)] += int(miss)
    return calls, missed, weekdays


def _heat_cell(x: float, y: float, value: float, top: float, tip: str) -> str:
    share = math.sqrt(value / top) if top else 0.0
    shown = "" if value == 0 else "&lt;1" if value < 1 else f"{math.floor(value + 0.5):,}"
    ink = "#ffffff" if share > 0.6 else "#334155"
    return (
        f'<g class="cell"><title>{esc(tip)}</title>'
        f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{_HEAT_W - 2}" height="{_HEAT_H - 2}" '
        f'rx="3" fill="{_heat_color(share)}"/>'
        f'<text class="heat-value" x="{x + _HEAT_W / 2:.1f}" y="{y + _HEAT_H / 2 + 4:.1f}" '
        f'text-anchor="middle" fill="{ink}">{shown}</text></g>'
    )


def _absent_cell(x: float, y: float, tip: str) -> str:
    """A cell of a weekday the range does not have: outlined, not coloured as zero calls."""
    return (
        f'<g class="cell absent"><title>{esc(tip)}</title>'
        f'<rect x="{x + 1.5:.1f}" y="{y + 1.5:.1f}" width="{_HEAT_W - 3}" height="{_HEAT_H - 3}" '
        f'rx="3"/></g>'
    )


def _heat_legend(y: float, top: float) -> str:
    left = _HEAT_LEFT + 200
    stops = "".join(
        f'<rect x="{left + i * 16}" y="{y}" width="16" height="10" '
        f'fill="{_heat_color(math.sqrt(i / 9))}"/>'
        for i in range(10)
    )
    return (
        f'<text class="axis" x="{_HEAT_LEFT}" y="{y + 9}">Average calls per hour:</text>'
        f'<text class="axis" x="{left - 6}" y="{y + 9}" text-anchor="end">0</text>{stops}'
        f'<text class="axis" x="{left + 166}" y="{y + 9}">{top:,.0f}</text>'
    )


def heat_map(data: DashboardData) -> str:
    """Inbound calls by weekday and local hour, averaged per day; missed in the tooltips."""
    calls, missed, weekdays = _heat_grids(data)
    top = max(max(row) for row in calls)
    if top == 0:
        return _empty_chart("No inbound calls in this range")
    header = 20
    body = [
        f'<text class="axis" x="{_HEAT_LEFT + _HEAT_W * (hour + 0.5):.1f}" y="{header - 8}" '
        f'text-anchor="middle">{hour:02d}</text>'
        for hour in range(24)
    ]
    for row, name in enumerate(WEEKDAYS):
        y = header + row * _HEAT_H
        body.append(
            f'<text class="axis" x="{_HEAT_LEFT - 10}" y="{y + _HEAT_H / 2 + 4:.1f}" '
            f'text-anchor="end">{name}</text>'
        )
        for hour in range(24):
            x = _HEAT_LEFT + hour * _HEAT_W
            if not weekdays[row]:
                body.append(_absent_cell(x, y, f"No {name} in this range"))
                continue
            value = calls[row][hour]
            rate = f"; {missed[row][hour]:,} missed in the range" if value else ""
            tip = f"{name} {hour:02d}:00–{hour:02d}:59: {value:,.1f} inbound calls a day{rate}"
            body.append(_heat_cell(x, y, value, top, tip))
    legend_y = header + 7 * _HEAT_H + 16
    body.append(_heat_legend(legend_y, top))
    width = _HEAT_LEFT + 24 * _HEAT_W + 4
    return _svg(width, legend_y + 14, "Inbound calls by weekday and hour of day", body)


# ---------------------------------------------------------------------------------------------
# Tables


def user_label(name: object, user_id: object) -> str:
    """A user's name, or their id when the warehouse does not know the name."""
    return f"user {user_id}" if _missing(name) or not str(name).strip() else str(name)


def _table(headers: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]]) -> str:
    """An HTML table; ``headers`` are (label, css class); cells are already escaped HTML."""
    head = "".join(f'<th class="{cls}">{esc(label)}</th>' for label, cls in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{cls}">{cell}</td>' for (_, cls), cell in zip(headers, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _more_note(total: int) -> str:
    if total <= MAX_TABLE_ROWS:
        return ""
    return (
        f'<p class="note">Showing {MAX_TABLE_ROWS:,} of {total:,} rows; '
        "the exports hold them all.</p>"
    )


def _waited_badge(hours: object) -> str:
    if _missing(hours):
        return ""
    value = float(hours)  # type: ignore[arg-type]
    level = "high" if value >= 48 else "mid" if value >= 24 else "low"
    text = f"{value / 24:.1f} d" if value >= 48 else f"{value:.1f} h"
    return f'<span class="badge {level}">{esc(text)}</span>'


def unreturned_table(data: DashboardData) -> str:
    """Missed calls with no callback, the longest-waiting first."""
    frame = data.unreturned
    if frame.empty:
        return '<p class="empty">Every missed call in this range was called back. </p>'
    # Newest first: the calls a manager can still act on.
    ordered = frame.sort_values(["start_time", "event_id"], ascending=[False, True])
    rows = []
    for record in ordered.head(MAX_TABLE_ROWS).itertuples(index=False):
        local = pd.Timestamp(record.local_start_time)
        status = "" if bool(record.window_closed) else '<span class="badge open">open</span>'
        rows.append(
            (
                f'<bdi dir="auto">{esc(record.caller_id) or "<i>unknown</i>"}</bdi>',
                f'<span class="mono">{esc(record.phone_number)}</span>',
                esc(f"{WEEKDAYS[local.weekday()]} {local:%d %b %H:%M}"),
                f'<bdi dir="auto">{esc(user_label(record.user_name, record.user_id))}</bdi>',
                f"{_waited_badge(record.waited_hours)} {status}",
            )
        )
    headers = (
        ("Caller", "text"),
        ("Number", "text"),
        ("Missed at (local)", "text"),
        ("User", "text"),
        ("Waiting", "num"),
    )
    return _table(headers, rows) + _more_note(len(frame))


def user_table(data: DashboardData) -> str:
    """Per user over the range: calls, answered, missed inbound and the missed rate."""
    frame = data.volume_by_user
    if frame.empty:
        return '<p class="empty">No calls in this range.</p>'
    names = frame.groupby("user_id")["user_name"].agg(
        lambda s: s.dropna().iloc[0] if s.notna().any() else None
    )
    totals = frame.groupby("user_id")[["total_calls", "answered_calls", "live_calls"]].sum()
    inbound = frame[frame["direction"] == "INBOUND"].groupby("user_id")
    missed = inbound["missed_calls"].sum().reindex(totals.index, fill_value=0)
    inbound_finished = (inbound["total_calls"].sum() - inbound["live_calls"].sum()).reindex(
        totals.index, fill_value=0
    )
    talk = frame.groupby("user_id")["talk_seconds_total"].sum()
    order = totals.sort_values("total_calls", ascending=False).index
    busiest = max(int(totals["total_calls"].max()), 1)
    rows = []
    for user_id in order[:MAX_TABLE_ROWS]:
        count = int(totals.loc[user_id, "total_calls"])
        finished = count - int(totals.loc[user_id, "live_calls"])
        answered = int(totals.loc[user_id, "answered_calls"])
        rate = missed[user_id] / inbound_finished[user_id] if inbound_finished[user_id] else None
        name = names.get(user_id)
        rows.append(
            (
                f'<bdi dir="auto">{esc(user_label(name, user_id))}</bdi>',
                f'<span class="spark"><span style="width:{100 * count / busiest:.0f}%"></span>'
                f"</span>{fmt_int(count)}",
                fmt_rate(answered / finished if finished else None),
                fmt_int(missed[user_id]),
                fmt_rate(rate),
                esc(fmt_duration(talk[user_id])),
            )
        )
    headers = (
        ("User", "text"),
        ("Calls", "num"),
        ("Answered", "num"),
        ("Missed inbound", "num"),
        ("Missed rate", "num"),
        ("Talk time", "num"),
    )
    return _table(headers, rows) + _more_note(len(order))


# ---------------------------------------------------------------------------------------------
# Pages

_SVG_CSS = f"""
svg.chart{{width:100%;height:auto;display:block;overflow:visible}}
svg .axis{{font-size:11px;fill:#6b7280;font-family:{_FONT}}}
svg .grid{{stroke:#e5e7eb;stroke-width:1}}
svg .weekend{{fill:#f3f4f6}}
svg .bar:hover rect{{opacity:.85}}
svg .area{{opacity:.08}}
svg .line{{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}}
svg .dot{{fill:#fff;stroke-width:2}}
svg .average{{stroke:#9ca3af;stroke-width:1.2;stroke-dasharray:4 4}}
svg .average-label{{fill:#4b5563}}
svg .cell:hover rect{{stroke:#111827;stroke-width:1.5}}
svg .absent rect{{fill:#fff;stroke:#e5e7eb;stroke-dasharray:3 3}}
svg .heat-value{{font-size:10.5px;font-family:{_FONT}}}
"""

_CSS = f"""
*{{box-sizing:border-box}}
html{{-webkit-text-size-adjust:100%}}
body{{margin:0;background:#f4f6fa;color:#1f2937;font-family:{_FONT};font-size:14px;
line-height:1.45;font-variant-numeric:tabular-nums}}
main{{max-width:1180px;margin:0 auto;padding:28px 28px 40px}}
header{{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;
gap:8px 24px;margin-bottom:20px}}
h1{{font-size:26px;font-weight:650;letter-spacing:-.01em;margin:0}}
.range{{color:#4b5563;font-size:15px}}
h2{{font-size:15px;font-weight:600;margin:0 0 2px}}
.sub{{color:#6b7280;font-size:12.5px;margin:0 0 12px}}
.tiles{{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:14px;
margin-bottom:16px}}
.tile{{background:#fff;border-radius:12px;padding:14px 16px 13px;
box-shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.05);
border-top:3px solid var(--accent)}}
.tile .label{{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.05em;
font-weight:600}}
.tile .value{{font-size:27px;font-weight:650;margin:4px 0 2px;color:var(--accent)}}
.tile .note{{color:#6b7280;font-size:12.5px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;
margin-bottom:16px}}
.card{{background:#fff;border-radius:12px;padding:18px 20px;
box-shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.05);margin-bottom:16px;
min-width:0}}
.grid .card{{margin-bottom:0}}
.legend{{display:flex;gap:16px;color:#4b5563;font-size:12.5px;margin:-4px 0 8px}}
.legend i{{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;
vertical-align:-1px}}
{_SVG_CSS}
.table-wrap{{overflow-x:auto}}
table{{border-collapse:collapse;width:100%;font-size:13.5px}}
th{{text-align:left;color:#6b7280;font-weight:600;font-size:12px;text-transform:uppercase;
letter-spacing:.04em;border-bottom:1px solid #e5e7eb;padding:8px 10px;white-space:nowrap}}
td{{border-bottom:1px solid #f0f1f4;padding:8px 10px;vertical-align:middle}}
tbody tr:hover td{{background:#f9fafb}}
th.num,td.num{{text-align:right;white-space:nowrap}}
.mono{{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:12.5px}}
.badge{{display:inline-block;border-radius:999px;padding:1px 8px;font-size:12px;font-weight:600}}
.badge.low{{background:#fef3c7;color:#92400e}}
.badge.mid{{background:#ffedd5;color:#c2410c}}
.badge.high{{background:#fee2e2;color:#b91c1c}}
.badge.open{{background:#e0e7ff;color:#3730a3;font-weight:500}}
.spark{{display:inline-block;width:70px;height:6px;background:#eef2f7;border-radius:3px;
margin-right:8px;vertical-align:1px;overflow:hidden}}
.spark span{{display:block;height:100%;background:{INBOUND_COLOR};border-radius:3px}}
.empty{{color:#6b7280;padding:28px 0;text-align:center}}
.note{{color:#6b7280;font-size:12.5px;margin:10px 0 0}}
footer{{color:#6b7280;font-size:12px;margin-top:8px}}
footer p{{margin:4px 0}}
@media print{{body{{background:#fff}}.card,.tile{{box-shadow:none;border:1px solid #e5e7eb}}
main{{padding:0}}}}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
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


def render_dashboard_html(
    data: DashboardData, title: str = DEFAULT_TITLE, tz: str | None = None
) -> str:
    """The page for ``data``: tiles, charts, the unreturned calls and the users."""
    zone = f" · times in {tz}" if tz else ""
    callback_note = ""
    if len(data.unreturned):
        as_of = pd.Timestamp(data.unreturned["as_of"].max())
        callback_note = (
            f"Waiting time measured up to the latest call on record ({as_of:%Y-%m-%d %H:%M} UTC). "
        )
    body = [
        f'<header><h1>{esc(title)}</h1><div class="range">'
        f"{esc(fmt_range(data.first, data.last))}{esc(zone)}</div></header>",
        '<section class="tiles">'
        + "".join(_tile_html(t) for t in summary_tiles(data))
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
            f"{callback_note}No outbound call to the number and no answered call from it "
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
    """The page for local days ``first``..``last`` from the report tables of ``conn``."""
    return render_dashboard_html(load_dashboard_data(conn, first, last), title, tz)


def render_table_page(frame: pd.DataFrame, name: str, first: date, last: date) -> str:
    """A page holding one report's rows as a table (every row; numbers right-aligned)."""
    numeric = {c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)}
    headers = [(c.replace("_", " "), "num" if c in numeric else "text") for c in frame.columns]
    rows = (
        [esc(_fmt_cell(value)) for value in record]
        for record in frame.itertuples(index=False, name=None)
    )
    spec = REPORTS.get(name)
    description = spec.description if spec else ""
    body = (
        f'<header><h1>{esc(name)}</h1><div class="range">{esc(fmt_range(first, last))}</div>'
        f"</header>" + _card(f"{len(frame):,} rows", description, _table(headers, rows))
    )
    return _page(f"{name} · {fmt_range(first, last)}", body)
