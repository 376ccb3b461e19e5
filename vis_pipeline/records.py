"""The event record contract: what a valid VIS event looks like, checked fast.

The client uses it to decide which records count as events of a window, the warehouse to
quarantine the rest with a reason. Checks are hand-written rather than JSON-schema driven
because they run once per record on hundreds of thousands of records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

LIVE_STATES: frozenset[str] = frozenset(
    {"INITIALIZING", "RINGING", "ACTIVE", "HELD", "REMOTE_HELD"}
)
"""States of a call still in progress: its record will change."""

FINAL_STATES: frozenset[str] = frozenset(
    {"DETACHED", "REJECTED", "CANCELLED", "ANSWERED", "MISSED"}
)
"""States of a finished call: its record is settled."""

STATES: frozenset[str] = LIVE_STATES | FINAL_STATES
"""Every state the spec knows."""

DIRECTIONS: frozenset[str] = frozenset({"INBOUND", "OUTBOUND"})
"""Call directions the spec knows."""

RECORD_TYPES: frozenset[str] = frozenset({"CALL"})
"""Record types the spec knows."""

_INT_FIELDS_REQUIRED = ("id", "accountId", "userId", "uciId")
_STR_FIELDS_OPTIONAL = ("callerId", "externalId", "smsData")
_TIME_FIELDS_OPTIONAL = ("answerTime", "endTime")


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record that is not a valid event: kept with the reason, never silently dropped."""

    reason: str
    payload: Any
    event_id: int | None = None


class InvalidInstant(ValueError):
    """A timestamp string that is not an ISO-8601 instant."""


def parse_instant_ms(value: str) -> int:
    """Epoch milliseconds (UTC) of an ISO-8601 instant such as ``2026-01-05T14:03:22.517Z``.

    A value without an offset is read as UTC, since that is how the API writes instants.
    """
    if not isinstance(value, str) or len(value) < 10:
        raise InvalidInstant(f"not an ISO-8601 instant: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInstant(f"not an ISO-8601 instant: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Integer arithmetic on the parts: float timestamps lose the millisecond at this scale.
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_instant_ms(ms: int) -> str:
    """The API's spelling of an instant: ISO-8601 UTC with milliseconds and a ``Z``."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def event_problem(record: Any) -> str | None:
    """Why ``record`` is not a valid event, or None when it is.

    Unknown extra fields are allowed (the API may add fields); optional fields may be missing
    or null; required fields must be present with the right type and a known enum value.
    """
    if not isinstance(record, dict):
        return f"record is a {type(record).__name__}, not an object"
    for name in _INT_FIELDS_REQUIRED:
        value = record.get(name)
        if value is None:
            return f"{name}: required field missing"
        if not _is_int(value):
            return f"{name}: expected an integer, got {value!r}"
    for name, known in (("type", RECORD_TYPES), ("direction", DIRECTIONS), ("state", STATES)):
        value = record.get(name)
        if value is None:
            return f"{name}: required field missing"
        if not isinstance(value, str) or value not in known:
            return f"{name}: unknown value {value!r}"
    phone = record.get("phoneNumber")
    if phone is None:
        return "phoneNumber: required field missing"
    if not isinstance(phone, str):
        return f"phoneNumber: expected a string, got {phone!r}"
    start = record.get("startTime")
    if start is None:
        return "startTime: required field missing"
    try:
        parse_instant_ms(start)
    except InvalidInstant as exc:
        return f"startTime: {exc}"
    for name in _TIME_FIELDS_OPTIONAL:
        value = record.get(name)
        if value is not None:
            try:
                parse_instant_ms(value)
            except InvalidInstant as exc:
                return f"{name}: {exc}"
    duration = record.get("duration")
    if duration is not None and (not _is_int(duration) or duration < 0):
        return f"duration: expected a non-negative integer of milliseconds, got {duration!r}"
    for name in _STR_FIELDS_OPTIONAL:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name}: expected a string, got {value!r}"
    return None


def to_epoch_ms(moment: datetime, *, name: str = "datetime") -> int:
    """Epoch milliseconds of a tz-aware datetime, rounded up (so ``t >= start`` stays exact)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return -((_EPOCH - moment) // timedelta(milliseconds=1))
