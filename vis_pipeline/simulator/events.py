"""One simulated call and how its record reads at a given moment of the simulated clock.

A generated call follows a fixed timeline (start, answer, optional hold, end); its record at a
moment is derived from that timeline. A call under call control (created or acted on through
the API) leaves its timeline: its state is whatever the last operation made it. An injected
record is served exactly as it was given, whatever the clock says.

``doc`` holds pre-serialised JSON so a settled record is never serialised twice: the final
record of a generated call, the last record of a controlled call, the raw injected bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from vis_pipeline.records import FINAL_STATES, LIVE_STATES, format_instant_ms

INITIALIZING_MS = 1_000
"""How long a call reads INITIALIZING before it starts RINGING."""

ANSWERED_STATES: frozenset[str] = frozenset(
    {"ACTIVE", "HELD", "REMOTE_HELD", "ANSWERED", "DETACHED"}
)
"""States of a call that has been answered, so its record carries answerTime."""

_DYNAMIC_FIELDS = ("state", "answerTime", "endTime", "duration")


class SimEvent:
    """One call (or injected record) with what it takes to render it at any moment."""

    __slots__ = (
        "answer_ms",
        "control",
        "direction",
        "doc",
        "end_ms",
        "event_id",
        "final_state",
        "hold",
        "raw",
        "start_ms",
        "visible_ms",
    )

    def __init__(
        self,
        event_id: Any,
        start_ms: int,
        doc: bytes,
        *,
        visible_ms: int | None = None,
        answer_ms: int | None = None,
        end_ms: int | None = None,
        hold: tuple[int, int] | None = None,
        final_state: str = "ANSWERED",
        direction: str = "INBOUND",
        raw: dict[str, Any] | None = None,
        control: str | None = None,
    ) -> None:
        self.event_id = event_id
        self.start_ms = start_ms
        self.doc = doc
        self.visible_ms = start_ms if visible_ms is None else visible_ms
        self.answer_ms = answer_ms
        self.end_ms = end_ms
        self.hold = hold
        self.final_state = final_state
        self.direction = direction
        self.raw = raw
        # The current state of a call under call control; None while it follows its timeline.
        self.control = control

    def __repr__(self) -> str:
        return f"SimEvent(id={self.event_id!r}, start_ms={self.start_ms})"


def dumps_compact(value: Any) -> bytes:
    """``value`` as JSON bytes sized to fit, for bytes kept for long.

    orjson's result keeps its whole growth buffer (kilobytes): copying it out makes a cache
    of hundreds of thousands of records about ten times smaller.
    """
    return bytes(memoryview(orjson.dumps(value)))


def tie_key(event: SimEvent) -> tuple[int, Any]:
    """Order among events sharing a startTime: integer ids first, by value."""
    ident = event.event_id
    if isinstance(ident, int) and not isinstance(ident, bool):
        return (0, ident)
    return (1, str(ident))


def sort_key(event: SimEvent) -> tuple[int, tuple[int, Any]]:
    """The order events are stored and served in: startTime, then id."""
    return (event.start_ms, tie_key(event))


def state_at(event: SimEvent, now_ms: int) -> Any:
    """The event's state at ``now_ms`` (for an injected record, whatever it says)."""
    if event.raw is not None:
        return event.raw.get("state")
    if event.control is not None:
        return event.control
    if event.end_ms is not None and now_ms >= event.end_ms:
        return event.final_state
    if event.answer_ms is None or now_ms < event.answer_ms:
        return "INITIALIZING" if now_ms < event.start_ms + INITIALIZING_MS else "RINGING"
    if event.hold is not None and event.hold[0] <= now_ms < event.hold[1]:
        return "HELD"
    return "ACTIVE"


def is_settled(event: SimEvent, now_ms: int) -> bool:
    """Whether ``event.doc`` is the record at ``now_ms`` (no rendering needed)."""
    if event.raw is not None:
        return True
    if event.control is not None:
        return event.control in FINAL_STATES
    return event.end_ms is not None and now_ms >= event.end_ms


def is_live(event: SimEvent, now_ms: int) -> bool:
    """Whether the event is a call in progress at ``now_ms`` (never an injected record)."""
    return event.raw is None and state_at(event, now_ms) in LIVE_STATES


def record_at(event: SimEvent, now_ms: int) -> dict[str, Any]:
    """The event's wire record at ``now_ms`` as a dict."""
    record = orjson.loads(event.doc)
    if is_settled(event, now_ms):
        return record
    for name in _DYNAMIC_FIELDS:
        record.pop(name, None)
    state = state_at(event, now_ms)
    record["state"] = state
    if event.answer_ms is not None and state in ANSWERED_STATES:
        record["answerTime"] = format_instant_ms(event.answer_ms)
    return record


def bytes_at(event: SimEvent, now_ms: int) -> bytes:
    """The event's wire record at ``now_ms``, serialised."""
    if is_settled(event, now_ms):
        return event.doc
    return orjson.dumps(record_at(event, now_ms))


def call_record_at(event: SimEvent, now_ms: int) -> dict[str, Any]:
    """The event as a Call: the spec requires ``duration``, so a live call reports the time
    elapsed since it started."""
    record = record_at(event, now_ms)
    if record.get("duration") is None:
        record["duration"] = max(0, now_ms - event.start_ms)
    return record


def finished_record(event: SimEvent, now_ms: int, state: str) -> bytes:
    """The settled record of a controlled call that ends at ``now_ms`` in ``state``."""
    record = orjson.loads(event.doc)
    for name in _DYNAMIC_FIELDS:
        record.pop(name, None)
    record["state"] = state
    if event.answer_ms is not None and state in ANSWERED_STATES:
        record["answerTime"] = format_instant_ms(event.answer_ms)
    record["endTime"] = format_instant_ms(now_ms)
    record["duration"] = now_ms - event.start_ms
    return dumps_compact(record)
