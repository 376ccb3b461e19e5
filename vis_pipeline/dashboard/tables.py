"""The page's tables: the unreturned missed calls and the users, capped and escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from vis_pipeline.dashboard.data import DashboardData
from vis_pipeline.dashboard.text import (
    WEEKDAYS,
    esc,
    fmt_duration,
    fmt_int,
    fmt_rate,
    missing,
    user_label,
)

MAX_TABLE_ROWS = 30
"""Rows shown in a dashboard table; the rest are counted in a note (the exports hold them all)."""


def html_table(headers: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]]) -> str:
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
    if missing(hours):
        return ""
    value = float(hours)  # type: ignore[arg-type]
    level = "high" if value >= 48 else "mid" if value >= 24 else "low"
    text = f"{value / 24:.1f} d" if value >= 48 else f"{value:.1f} h"
    return f'<span class="badge {level}">{esc(text)}</span>'


def unreturned_table(data: DashboardData) -> str:
    """Missed calls with no callback, the newest first."""
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
    return html_table(headers, rows) + _more_note(len(frame))


def user_table(data: DashboardData) -> str:
    """Per user over the range: calls, answer rate, missed inbound, missed rate, talk time."""
    users = data.users
    if users.empty:
        return '<p class="empty">No calls in this range.</p>'
    busiest = max(int(users["total_calls"].max()), 1)
    rows = []
    for user in users.head(MAX_TABLE_ROWS).itertuples(index=False):
        count = int(user.total_calls)
        rows.append(
            (
                f'<bdi dir="auto">{esc(user_label(user.user_name, user.user_id))}</bdi>',
                f'<span class="spark"><span style="width:{100 * count / busiest:.0f}%"></span>'
                f"</span>{fmt_int(count)}",
                fmt_rate(user.answer_rate),
                fmt_int(user.missed_inbound_calls),
                fmt_rate(user.missed_rate),
                esc(fmt_duration(user.talk_seconds_total)),
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
    return html_table(headers, rows) + _more_note(len(users))
