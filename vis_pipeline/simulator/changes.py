"""Which call changes a webhook delivers, and when: the moments between two clock readings.

The API notes name three moments of a call: when it appears, when it is answered and when it
reaches its final state (holds are not delivered). A call appears when it starts, or later, when
it shows up late (its ``visible_ms``); a late call that shows up after it ended is delivered
once, final. Each change carries the record as the call reads at that moment, exactly the
bytes ``listEvents`` would serve then.

Calls under call control follow no timeline: their changes are delivered by the operation that
makes them (see ``operations.py``). Injected records are not calls and are never delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from vis_pipeline.simulator.events import SimEvent, bytes_at, state_at, tie_key
from vis_pipeline.simulator.generate import LATE_MAX_MS, MAX_CALL_MS
from vis_pipeline.simulator.truth import Truth

LONGEST_TIMELINE_MS = LATE_MAX_MS + MAX_CALL_MS
"""No generated call has a moment later than this after its start."""


@dataclass(frozen=True, slots=True)
class Change:
    """One deliverable change of a call: the moment, the call, and its record then."""

    moment_ms: int
    event: SimEvent
    state: str
    body: bytes


def moments(event: SimEvent) -> list[int]:
    """The moments of a call's timeline that are delivered (appear, answered, final)."""
    appear = max(event.start_ms, event.visible_ms)
    found = [appear]
    for later in (event.answer_ms, event.end_ms):
        if later is not None and later > appear:
            found.append(later)
    return found


def change_at(event: SimEvent, moment_ms: int) -> Change:
    """The change ``event`` makes at ``moment_ms``, its record as it reads then."""
    return Change(moment_ms, event, str(state_at(event, moment_ms)), bytes_at(event, moment_ms))


def changes_between(truth: Truth, old_ms: int, new_ms: int) -> list[Change]:
    """The changes of the calls that follow their timeline at moments in (old_ms, new_ms].

    In moment order (ties by call id), so a call's changes come in the order they happened.
    A clock moved back delivers nothing.
    """
    if new_ms <= old_ms:
        return []
    found = [
        change_at(event, moment)
        for event in truth.events_starting(old_ms - LONGEST_TIMELINE_MS, new_ms)
        if event.raw is None and event.control is None
        for moment in moments(event)
        if old_ms < moment <= new_ms
    ]
    found.sort(key=lambda change: (change.moment_ms, tie_key(change.event)))
    return found
