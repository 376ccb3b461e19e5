"""Call control: placing, answering, holding, transferring and ending calls.

Every operation acts at the simulated clock's "now" and leaves the call's event record
consistent with what it did (same id, same record served by the event endpoints). A call
acted upon leaves its generated timeline and changes only through further operations.
"""

from __future__ import annotations

from vis_pipeline.records import FINAL_STATES, format_instant_ms
from vis_pipeline.simulator.events import SimEvent, dumps_compact, finished_record, state_at
from vis_pipeline.simulator.truth import Truth

RINGING_STATES: frozenset[str] = frozenset({"INITIALIZING", "RINGING"})
"""States of a call not answered yet."""

TALKING_STATES: frozenset[str] = frozenset({"ACTIVE", "HELD", "REMOTE_HELD"})
"""States of an answered call in progress."""


class CallStateError(ValueError):
    """An operation the call's current state does not allow."""


def place_call(
    truth: Truth, phone_number: str, user_id: int, account_id: int, uci_id: int
) -> SimEvent:
    """A new outbound call from the user to ``phone_number``, ringing from now on."""
    now = truth.now_ms
    event_id = truth.new_id()
    base = {
        "id": event_id,
        "type": "CALL",
        "accountId": account_id,
        "userId": user_id,
        "uciId": uci_id,
        "direction": "OUTBOUND",
        "phoneNumber": phone_number,
        "externalId": f"ext-{event_id:x}",
        "startTime": format_instant_ms(now),
    }
    event = SimEvent(event_id, now, dumps_compact(base), direction="OUTBOUND", control="RINGING")
    truth.add(event)
    truth.take_control(event, "RINGING")
    return event


def answer(truth: Truth, event: SimEvent) -> None:
    """Answer a ringing call: ACTIVE from now on."""
    _require(truth, event, RINGING_STATES, "answer")
    event.answer_ms = truth.now_ms
    event.hold = None
    truth.take_control(event, "ACTIVE")


def hold(truth: Truth, event: SimEvent) -> None:
    """Put an answered call on hold."""
    _require(truth, event, TALKING_STATES, "hold")
    truth.take_control(event, "HELD")


def unhold(truth: Truth, event: SimEvent) -> None:
    """Take a call off hold."""
    _require(truth, event, TALKING_STATES, "unhold")
    truth.take_control(event, "ACTIVE")


def transfer(truth: Truth, event: SimEvent) -> None:
    """Hand the call over to another number: it ends DETACHED for this user."""
    _require(truth, event, RINGING_STATES | TALKING_STATES, "transfer")
    _finish(truth, event, "DETACHED")


def voicemail(truth: Truth, event: SimEvent) -> None:
    """Send an unanswered call to voicemail: it ends MISSED."""
    _require(truth, event, RINGING_STATES, "send to voicemail")
    _finish(truth, event, "MISSED")


def hang_up(truth: Truth, event: SimEvent) -> None:
    """End the call: an answered one ends ANSWERED, a ringing one REJECTED (inbound) or
    CANCELLED (outbound)."""
    state = _require(truth, event, RINGING_STATES | TALKING_STATES, "end")
    if state in TALKING_STATES:
        _finish(truth, event, "ANSWERED")
    else:
        _finish(truth, event, "REJECTED" if event.direction == "INBOUND" else "CANCELLED")


def _require(truth: Truth, event: SimEvent, allowed: frozenset[str], action: str) -> str:
    """The call's current state, if ``action`` is allowed in it."""
    state = "" if event.raw is not None else state_at(event, truth.now_ms)
    if state in FINAL_STATES or not state:
        raise CallStateError(f"cannot {action} call {event.event_id}: it is not live")
    if state not in allowed:
        raise CallStateError(f"cannot {action} call {event.event_id} while it is {state}")
    if event.control is None:
        # Freeze the timeline's answer instant (if any) before leaving it.
        if event.answer_ms is not None and event.answer_ms > truth.now_ms:
            event.answer_ms = None
        event.hold = None
    return state


def _finish(truth: Truth, event: SimEvent, state: str) -> None:
    """End a call in ``state`` now."""
    if state == "MISSED":
        event.answer_ms = None
    truth.release(event, finished_record(event, truth.now_ms, state), state)
