"""The simulator's ground truth: the data set, the simulated clock and what is visible at it.

The clock stands still unless it is moved (through the control endpoints), so every reading
is reproducible. Events are kept sorted by (startTime, id) with a parallel list of start
instants, so a time window is two ``bisect`` calls; the visible events have their wire bytes
ready in a parallel list, rebuilt only when the clock moves or the data changes.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import Any

from vis_pipeline.records import InvalidInstant, parse_instant_ms
from vis_pipeline.simulator.events import (
    SimEvent,
    bytes_at,
    dumps_compact,
    is_live,
    is_settled,
    sort_key,
)
from vis_pipeline.simulator.generate import LATE_MAX_MS, MAX_CALL_MS, Dataset, generate
from vis_pipeline.simulator.options import SimulatorOptions

ALWAYS_MS = -(2**62)
"""A visibility instant before any clock reading: visible whatever the clock says."""


class Truth:
    """Every event, the clock, and the visible events as of the clock."""

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self.users = dataset.users
        self.account = dataset.account
        self.range_ms = dataset.range_ms
        self.now_ms = dataset.now_ms
        self._all: list[SimEvent] = list(dataset.events)
        self._starts: list[int] = [event.start_ms for event in self._all]
        self._by_id: dict[Any, SimEvent] = {event.event_id: event for event in self._all}
        # Calls under call control that are still live: they follow no timeline.
        self._controlled: set[SimEvent] = set()
        self._id_rng = random.Random(seed)
        self.view: list[SimEvent] = []
        self.view_starts: list[int] = []
        self.view_bytes: list[bytes] = []
        self._rebuild()

    @classmethod
    def from_options(cls, options: SimulatorOptions) -> Truth:
        """The truth ``options`` describe."""
        return cls(generate(options), seed=options.seed)

    # -- the clock -----------------------------------------------------------------------

    def set_now(self, now_ms: int) -> None:
        """Move the clock (either way) and recompute what is visible and live."""
        self.now_ms = now_ms
        self._rebuild()

    def _rebuild(self) -> None:
        """Recompute the visible events and their bytes as of the clock."""
        now = self.now_ms
        # Anything that started before the longest delay is visible; only later ones are checked.
        settled_part = bisect_right(self._starts, now - LATE_MAX_MS)
        view = self._all[:settled_part]
        view.extend(event for event in self._all[settled_part:] if event.visible_ms <= now)
        self.view = view
        self.view_starts = [event.start_ms for event in view]
        self.view_bytes = [event.doc for event in view]
        # Calls that may still be in progress: the recent ones and those under control.
        for index in range(bisect_left(self.view_starts, now - MAX_CALL_MS), len(view)):
            if not is_settled(view[index], now):
                self.view_bytes[index] = bytes_at(view[index], now)
        for event in self._controlled:
            self._refresh(event)

    def _index(self, event: SimEvent) -> int | None:
        """Position of ``event`` in the visible list, or None."""
        index = bisect_left(self.view_starts, event.start_ms)
        while index < len(self.view) and self.view_starts[index] == event.start_ms:
            if self.view[index] is event:
                return index
            index += 1
        return None

    def _refresh(self, event: SimEvent) -> None:
        """Re-render one visible event after its record changed."""
        index = self._index(event)
        if index is not None:
            self.view_bytes[index] = bytes_at(event, self.now_ms)

    # -- reading -------------------------------------------------------------------------

    def window(self, from_ms: int | None, to_ms: int | None, edges: str = "half-open") -> range:
        """Positions in the visible list of the events whose startTime is in the window."""
        starts = self.view_starts
        if from_ms is None:
            low = 0
        elif edges == "strict":
            low = bisect_right(starts, from_ms)
        else:
            low = bisect_left(starts, from_ms)
        if to_ms is None:
            high = len(starts)
        elif edges == "closed":
            high = bisect_right(starts, to_ms)
        else:
            high = bisect_left(starts, to_ms)
        return range(low, max(low, high))

    def window_bytes(self, from_ms: int | None, to_ms: int | None) -> bytes:
        """The visible events of [from, to) as one JSON array, in (startTime, id) order."""
        span = self.window(from_ms, to_ms)
        return b"[" + b",".join(self.view_bytes[span.start : span.stop]) + b"]"

    def get(self, text_id: str) -> SimEvent | None:
        """The visible event whose id reads ``text_id``, or None."""
        key: Any = text_id
        if text_id.isdigit() or (text_id.startswith("-") and text_id[1:].isdigit()):
            key = int(text_id)
        event = self._by_id.get(key)
        if event is None or event.visible_ms > self.now_ms:
            return None
        return event

    def events_starting(self, from_ms: int, to_ms: int) -> list[SimEvent]:
        """Every stored event (visible or not yet) whose start is in [from_ms, to_ms]."""
        return self._all[bisect_left(self._starts, from_ms) : bisect_right(self._starts, to_ms)]

    def live_calls(self) -> list[SimEvent]:
        """Calls in progress at the clock, in (startTime, id) order."""
        now = self.now_ms
        first = bisect_left(self.view_starts, now - MAX_CALL_MS)
        found = {event for event in self.view[first:] if is_live(event, now)}
        found.update(event for event in self._controlled if event.visible_ms <= now)
        return sorted(found, key=sort_key)

    # -- changes ---------------------------------------------------------------------------

    def add(self, event: SimEvent) -> None:
        """Store a new event (it is visible as soon as its visible_ms is reached)."""
        self._insert(event)
        self._rebuild()

    def _insert(self, event: SimEvent) -> None:
        """Put ``event`` in its (startTime, id) place; the view is not rebuilt."""
        index = bisect_left(self._all, sort_key(event), key=sort_key)
        self._all.insert(index, event)
        self._starts.insert(index, event.start_ms)
        self._by_id[event.event_id] = event

    def inject(self, records: Iterable[Any]) -> int:
        """Store raw records served exactly as given and visible at once; returns how many.

        A record is placed by its startTime when that parses, else at the range start.
        """
        count = 0
        for record in records:
            raw = record if isinstance(record, dict) else {}
            start = _placement(raw.get("startTime"), self.range_ms[0])
            doc = dumps_compact(record)
            self._insert(
                SimEvent(_hashable(raw.get("id")), start, doc, visible_ms=ALWAYS_MS, raw=raw)
            )
            count += 1
        self._rebuild()
        return count

    def new_id(self) -> int:
        """A fresh call id, unused so far."""
        while True:
            candidate = self._id_rng.randrange(1_000_000_000, 2**62)
            if candidate not in self._by_id:
                return candidate

    def take_control(self, event: SimEvent, state: str) -> None:
        """Note that ``event`` now follows call control and is in live ``state``."""
        event.control = state
        self._controlled.add(event)
        self._refresh(event)

    def release(self, event: SimEvent, final_doc: bytes, state: str) -> None:
        """Note that a controlled call ended in ``state`` with the settled record ``final_doc``."""
        event.control = state
        event.doc = final_doc
        event.end_ms = self.now_ms
        self._controlled.discard(event)
        self._refresh(event)


def _placement(start_time: Any, fallback_ms: int) -> int:
    """Where an injected record goes: its startTime when that parses, else ``fallback_ms``."""
    if isinstance(start_time, str):
        try:
            return parse_instant_ms(start_time)
        except InvalidInstant:
            pass
    return fallback_ms


def _hashable(value: Any) -> Any:
    """An id usable as a dict key (injected records may carry anything as their id)."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
