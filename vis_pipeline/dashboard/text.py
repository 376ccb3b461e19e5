"""Values as text on the page: escaping for HTML and SVG, and counts, rates, durations, days."""

from __future__ import annotations

import html
import re
from datetime import date, datetime

import pandas as pd

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Short weekday names, in ISO order (Monday first)."""

LONG_HOURS = 100
"""From this many hours on, a duration is shown in whole hours (minutes are noise)."""

DASH = "–"
"""What a missing value reads as."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def missing(value: object) -> bool:
    """Whether ``value`` is None, NaN or pandas' NA (scalars only)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def esc(value: object) -> str:
    """``value`` as text safe inside HTML or SVG, attributes included.

    Control characters (free text such as caller ids may hold them) are not allowed in HTML
    text: they become U+FFFD.
    """
    text = "" if missing(value) else str(value)
    return html.escape(_CONTROL.sub("\ufffd", text), quote=True)


def fmt_int(value: object) -> str:
    """A count with thousands separators; a dash when missing."""
    return DASH if missing(value) else f"{int(value):,}"  # type: ignore[call-overload]


def fmt_rate(value: object, digits: int = 1) -> str:
    """A fraction as a percentage; a dash when missing."""
    return DASH if missing(value) else f"{float(value) * 100:.{digits}f}%"  # type: ignore[arg-type]


def fmt_duration(seconds: object) -> str:
    """Seconds as ``42s``, ``3m 05s`` or ``2h 07m``; a dash when missing."""
    if missing(seconds):
        return DASH
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


def fmt_cell(value: object) -> str:
    """A table value as text: dates and times without noise, floats rounded."""
    if missing(value):
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


def user_label(name: object, user_id: object) -> str:
    """A user's name, or their id when the warehouse does not know the name."""
    return f"user {user_id}" if missing(name) or not str(name).strip() else str(name)
