"""The page's charts, drawn from a range's data with the generic charts of ``svg``.

Daily volume, daily missed rate and the weekday-by-hour heat map go on the page; the per-user
and per-day bars illustrate the other reports in Dagster. Figures are read, never computed:
the one average drawn (the missed rate's) is the range's own figure.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

import pandas as pd

from vis_pipeline.dashboard.data import DashboardData, as_dates, days_of
from vis_pipeline.dashboard.style import (
    HEAT_HIGH,
    HEAT_LOW,
    INBOUND_COLOR,
    MISSED_COLOR,
    OUTBOUND_COLOR,
)
from vis_pipeline.dashboard.svg import (
    CHART_HEIGHT,
    CHART_WIDTH,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    PLOT_WIDTH,
    bar_chart,
    day_labels,
    empty_chart,
    hbar_chart,
    nice_ticks,
    slot_x,
    svg,
    value_y,
    weekend_bands,
    y_axis,
)
from vis_pipeline.dashboard.text import WEEKDAYS, esc, fmt_day, fmt_rate, missing, user_label

_HEAT_LEFT, _HEAT_W, _HEAT_H = 40, 40, 28  # heat map: room for weekday names, cell size


def daily_volume_chart(data: DashboardData) -> str:
    """Stacked bars per day: inbound below, outbound on top."""
    days = days_of(data.first, data.last)
    counts = {(day, direction): 0 for day in days for direction in ("INBOUND", "OUTBOUND")}
    for day, direction, total in zip(
        as_dates(data.volume["local_date"]),
        data.volume["direction"],
        data.volume["total_calls"],
        strict=True,
    ):
        counts[(day, direction)] = int(total)
    if not any(counts.values()):
        return empty_chart("No calls in this range")
    top = max(counts[(d, "INBOUND")] + counts[(d, "OUTBOUND")] for d in days)
    ticks = nice_ticks(top)
    slot = PLOT_WIDTH / len(days)
    bar = max(1.0, min(slot * 0.72, 48.0))
    x_of, y_of = slot_x(slot), value_y(ticks[-1])
    body = weekend_bands(days, x_of, slot) + y_axis(ticks, y_of, lambda t: f"{t:,.0f}")
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
    body += day_labels(days, x_of)
    return svg(CHART_WIDTH, CHART_HEIGHT, "Calls per day, inbound and outbound", body)


def _average_line(y: float, average: float) -> str:
    """The dashed line of the range's average, labelled."""
    return (
        f'<line class="average" x1="{MARGIN_LEFT}" x2="{CHART_WIDTH - MARGIN_RIGHT}" '
        f'y1="{y:.1f}" y2="{y:.1f}"><title>{esc(f"Average {fmt_rate(average)}")}</title>'
        f"</line>"
        f'<text class="axis average-label" x="{MARGIN_LEFT + 6}" '
        f'y="{y - 6:.1f}">avg {esc(fmt_rate(average))}</text>'
    )


def missed_rate_chart(data: DashboardData) -> str:
    """The share of finished inbound calls missed, day by day, with the range's missed rate."""
    days = days_of(data.first, data.last)
    rates: dict[date, float] = {}
    missed_counts: dict[date, int] = {}
    for day, rate, missed in zip(
        as_dates(data.missed["local_date"]),
        data.missed["missed_rate"],
        data.missed["missed_calls"],
        strict=True,
    ):
        if not missing(rate):
            rates[day] = float(rate)
            missed_counts[day] = int(missed)
    if not rates:
        return empty_chart("No finished inbound calls in this range")
    ticks = nice_ticks(max(max(rates.values()), 0.05), 4)
    slot = PLOT_WIDTH / len(days)
    x_of, y_of = slot_x(slot), value_y(ticks[-1])
    body = weekend_bands(days, x_of, slot) + y_axis(ticks, y_of, lambda t: f"{t * 100:.0f}%")
    points = [(x_of(i), y_of(rates[day]), day) for i, day in enumerate(days) if day in rates]
    if len(points) > 1:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        area = f"{points[0][0]:.1f},{y_of(0):.1f} {line} {points[-1][0]:.1f},{y_of(0):.1f}"
        body.append(f'<polygon class="area" points="{area}" fill="{MISSED_COLOR}"/>')
        body.append(f'<polyline class="line" points="{line}" stroke="{MISSED_COLOR}"/>')
    average = data.headline.missed_rate
    if average is not None:
        body.append(_average_line(y_of(average), average))
    radius = 3.5 if len(days) <= 45 else 2.0
    for x, y, day in points:
        tip = esc(f"{fmt_day(day)}: {fmt_rate(rates[day])} missed ({missed_counts[day]:,} calls)")
        body.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" '
            f'stroke="{MISSED_COLOR}"><title>{tip}</title></circle>'
        )
    body += day_labels(days, x_of)
    return svg(CHART_WIDTH, CHART_HEIGHT, "Share of inbound calls missed per day", body)


def _heat_color(share: float) -> str:
    channels = (round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*channels)


def _heat_grids(data: DashboardData) -> tuple[list[list[float]], list[list[int]], list[int]]:
    """Average inbound calls per weekday and hour (per calendar day of that weekday in the
    range, so a range with more Mondays does not make Mondays look busier), missed totals,
    and how many days of each weekday the range has."""
    weekdays = [0] * 7
    for day in days_of(data.first, data.last):
        weekdays[day.weekday()] += 1
    calls = [[0.0] * 24 for _ in WEEKDAYS]
    missed = [[0] * 24 for _ in WEEKDAYS]
    frame = data.missed_by_hour
    for day, hour, inbound, miss in zip(
        as_dates(frame["local_date"]),
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
        return empty_chart("No inbound calls in this range")
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
    return svg(width, legend_y + 14, "Inbound calls by weekday and hour of day", body)


def _per_user(users: pd.DataFrame, column: str) -> tuple[list[str], list[float]]:
    """A figure of each user (from the range's user figures), largest first."""
    ordered = users.sort_values([column, "user_id"], ascending=[False, True], kind="stable")
    names = zip(ordered["user_name"], ordered["user_id"], strict=True)
    labels = [user_label(name, user_id) for name, user_id in names]
    return labels, [float(value) for value in ordered[column]]


def user_calls_chart(data: DashboardData) -> str:
    """Calls per user over the range, busiest first."""
    return hbar_chart(*_per_user(data.users, "total_calls"), INBOUND_COLOR, "Calls per user")


def user_missed_chart(data: DashboardData) -> str:
    """Missed inbound calls per user over the range, most first."""
    labels, values = _per_user(data.users, "missed_inbound_calls")
    return hbar_chart(labels, values, MISSED_COLOR, "Missed inbound calls per user")


def unreturned_per_day_chart(data: DashboardData) -> str:
    """Missed calls not called back, per local day of the missed call."""
    per_day = Counter(as_dates(data.unreturned["local_date"]))
    days = days_of(data.first, data.last)
    labels = [f"{day.day} {day:%b}" for day in days]
    values = [float(per_day[day]) for day in days]
    return bar_chart(labels, values, MISSED_COLOR, "Missed calls not called back, per day")
