"""Generic SVG charts: axes, bars and horizontal bars, and a chart as an image of its own.

Nothing here knows about calls: charts take labels and values. Tooltips are SVG titles, so a
chart needs no script; every text is escaped.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import date

from vis_pipeline.dashboard.style import SVG_CSS
from vis_pipeline.dashboard.text import WEEKDAYS, esc

CHART_WIDTH = 640
"""Width of the SVG coordinate system of a chart (it scales to its card)."""

CHART_HEIGHT = 260
"""Height of the SVG coordinate system of a line or bar chart."""

# Room around the plot of a bar or line chart: value labels left, day labels below.
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 12, 14, 34
PLOT_HEIGHT = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
PLOT_WIDTH = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT


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


def svg(width: int, height: int, label: str, body: Iterable[str]) -> str:
    """An inline SVG chart of the given size, labelled for screen readers and tooltips."""
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(label)}" preserveAspectRatio="xMidYMid meet">'
        f"<title>{esc(label)}</title>{''.join(body)}</svg>"
    )


def empty_chart(label: str) -> str:
    """What stands in for a chart with nothing to draw: a short message."""
    return f'<div class="empty">{esc(label)}</div>'


def standalone_svg(chart: str) -> str:
    """A chart of this package as an SVG document of its own (for an ``<img>`` or a file).

    Returns ``chart`` unchanged when it is not an SVG (an empty-data message).
    """
    if not chart.startswith("<svg "):
        return chart
    head = '<svg xmlns="http://www.w3.org/2000/svg" '
    style = f"<style>{html.escape(SVG_CSS, quote=False)}</style>"
    opened = chart.index(">") + 1
    return head + chart[len("<svg ") : opened] + style + chart[opened:]


def svg_data_uri(chart: str) -> str:
    """A chart as a ``data:`` URI, for a markdown image."""
    encoded = base64.b64encode(standalone_svg(chart).encode("utf-8")).decode("ascii")
    return f"data:image/svg+xml;base64,{encoded}"


def slot_x(slot: float) -> Callable[[int], float]:
    """The x of the middle of the ``index``-th of equal slots across the plot."""
    return lambda index: MARGIN_LEFT + slot * (index + 0.5)


def value_y(top: float) -> Callable[[float], float]:
    """The y of a value on an axis from 0 (the plot's bottom) to ``top`` (its top)."""
    return lambda value: CHART_HEIGHT - MARGIN_BOTTOM - PLOT_HEIGHT * value / top


def bar_chart(labels: Sequence[str], values: Sequence[float], color: str, label: str) -> str:
    """Vertical bars, one per label (days, for instance), with a value axis."""
    if not values or not any(values):
        return empty_chart(f"{label}: nothing to show")
    ticks = nice_ticks(max(values))
    slot = PLOT_WIDTH / len(values)
    bar = max(1.0, min(slot * 0.72, 48.0))
    x_of, y_of = slot_x(slot), value_y(ticks[-1])
    body = y_axis(ticks, y_of, lambda t: f"{t:,.0f}")
    for index, (text, value) in enumerate(zip(labels, values, strict=True)):
        top = y_of(value)
        body.append(
            f'<g class="bar"><title>{esc(f"{text}: {value:,.0f}")}</title>'
            f'<rect x="{x_of(index) - bar / 2:.1f}" y="{top:.1f}" width="{bar:.1f}" '
            f'height="{y_of(0) - top:.1f}" fill="{color}"/></g>'
        )
    every = label_every(len(labels), PLOT_WIDTH, 60)
    body += [
        f'<text class="axis" x="{x_of(i):.1f}" y="{CHART_HEIGHT - MARGIN_BOTTOM + 18}" '
        f'text-anchor="middle">{esc(text)}</text>'
        for i, text in enumerate(labels)
        if i % every == 0
    ]
    return svg(CHART_WIDTH, CHART_HEIGHT, label, body)


def hbar_chart(labels: Sequence[str], values: Sequence[float], color: str, label: str) -> str:
    """Horizontal bars with their values, one per label (users, for instance), in given order."""
    if not values or not any(values):
        return empty_chart(f"{label}: nothing to show")
    left, row_h, right = 170, 24, 70
    top = max(values)
    room = CHART_WIDTH - left - right
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
    return svg(CHART_WIDTH, 12 + len(values) * row_h, label, body)


def label_every(count: int, room: float, per_label: float) -> int:
    """Show one x label in this many, so labels never overlap."""
    return max(1, math.ceil(count * per_label / max(room, 1)))


def y_axis(
    ticks: Sequence[float], y_of: Callable[[float], float], fmt: Callable[[float], str]
) -> list[str]:
    """Grid lines and value labels at ``ticks``."""
    parts = []
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{CHART_WIDTH - MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{MARGIN_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(fmt(tick))}</text>"
        )
    return parts


def day_labels(days: Sequence[date], x_of: Callable[[int], float]) -> list[str]:
    """Day labels under the plot, thinned out so they never overlap."""
    every = label_every(len(days), PLOT_WIDTH, 52)
    y = CHART_HEIGHT - MARGIN_BOTTOM + 18
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


def weekend_bands(days: Sequence[date], x_of: Callable[[int], float], slot: float) -> list[str]:
    """Shaded bands behind the Saturdays and Sundays of a chart by day."""
    top, bottom = MARGIN_TOP, CHART_HEIGHT - MARGIN_BOTTOM
    return [
        f'<rect class="weekend" x="{x_of(i) - slot / 2:.1f}" y="{top}" '
        f'width="{slot:.1f}" height="{bottom - top}"/>'
        for i, day in enumerate(days)
        if day.weekday() >= 5
    ]
