"""Pages and counts of events and live calls, as the behaviour in force reads the request.

The common request (no filter, sorted by startTime) is served straight from the truth's
pre-serialised bytes: two ``bisect`` calls and one join.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

import orjson

from vis_pipeline.simulator.behaviour import Behaviour, Injector
from vis_pipeline.simulator.events import SimEvent, bytes_at, call_record_at, record_at, state_at
from vis_pipeline.simulator.params import MAX_PAGE_SIZE, ListQuery, bad_parameter
from vis_pipeline.simulator.truth import Truth

EMPTY_PAGE = b"[]"
"""A page past the end."""


def page_slice(query: ListQuery, behaviour: Behaviour) -> tuple[int, int]:
    """(index of the first item, page size) of the requested page under ``behaviour``."""
    size = min(query.size, MAX_PAGE_SIZE, behaviour.page_cap or MAX_PAGE_SIZE)
    offset = behaviour.first_page if query.offset is None else query.offset
    if behaviour.first_page == 1:
        page = max(offset, 1) - 1
    elif offset < 0:
        raise bad_parameter("offset", f"must not be negative, got {offset}")
    else:
        page = offset
    return page * size, size


def check_sort(query: ListQuery, behaviour: Behaviour) -> None:
    """Refuse a sort the deployment does not offer (some sort by startTime only)."""
    if behaviour.start_time_sort_only and query.sort != "startTime":
        raise bad_parameter("sort", f"this server sorts by startTime only, got {query.sort!r}")


def events_page(truth: Truth, query: ListQuery, injector: Injector) -> bytes:
    """One page of visible events (a JSON array)."""
    behaviour = injector.behaviour
    check_sort(query, behaviour)
    first, size = page_slice(query, behaviour)
    span = truth.window(query.from_ms, query.to_ms, behaviour.edges)
    if query.filtered or query.sort != "startTime":
        events = _selected(truth.view[span.start : span.stop], query, truth.now_ms)
        chosen = _page_of(events, query, (first, size), injector, truth.now_ms)
        return _join(bytes_at(event, truth.now_ms) for event in chosen)
    if first >= len(span):
        return EMPTY_PAGE
    if query.order == "ASC":
        low = span.start + first
        high = min(span.stop, low + size)
    else:
        high = span.stop - first
        low = max(span.start, high - size)
    if behaviour.unstable_ties:
        positions = _tie_shuffled(truth.view_starts, low, high, injector)
        parts = [truth.view_bytes[index] for index in positions]
    else:
        parts = truth.view_bytes[low:high]
    if query.order == "DESC":
        parts.reverse()
    return _join(parts)


def events_count(truth: Truth, query: ListQuery, behaviour: Behaviour) -> int:
    """How many visible events the window and filters hold."""
    span = truth.window(query.from_ms, query.to_ms, behaviour.edges)
    if not query.filtered:
        return len(span)
    return len(_selected(truth.view[span.start : span.stop], query, truth.now_ms))


def calls_page(truth: Truth, query: ListQuery, injector: Injector) -> bytes:
    """One page of live calls (Call records, a JSON array)."""
    check_sort(query, injector.behaviour)
    page = page_slice(query, injector.behaviour)
    calls = _live_selected(truth, query, injector.behaviour)
    chosen = _page_of(calls, query, page, injector, truth.now_ms)
    return orjson.dumps([call_record_at(event, truth.now_ms) for event in chosen])


def calls_count(truth: Truth, query: ListQuery, behaviour: Behaviour) -> int:
    """How many live calls the window and filters hold."""
    return len(_live_selected(truth, query, behaviour))


def _join(parts: Any) -> bytes:
    return b"[" + b",".join(parts) + b"]"


def _live_selected(truth: Truth, query: ListQuery, behaviour: Behaviour) -> list[SimEvent]:
    """Live calls in the window (same edge reading as events) that pass the filters."""
    calls = truth.live_calls()
    starts = [event.start_ms for event in calls]
    low, high = 0, len(calls)
    if query.from_ms is not None:
        edge = bisect_right if behaviour.edges == "strict" else bisect_left
        low = edge(starts, query.from_ms)
    if query.to_ms is not None:
        edge = bisect_right if behaviour.edges == "closed" else bisect_left
        high = edge(starts, query.to_ms)
    return _selected(calls[low:high], query, truth.now_ms)


def _selected(events: list[SimEvent], query: ListQuery, now_ms: int) -> list[SimEvent]:
    """``events`` that pass the query's filters at ``now_ms``."""
    if not query.filtered:
        return events
    kept = []
    for event in events:
        raw = event.raw
        kind = "CALL" if raw is None else raw.get("type")
        direction = event.direction if raw is None else raw.get("direction")
        if query.types is not None and kind not in query.types:
            continue
        if query.directions is not None and direction not in query.directions:
            continue
        if query.states is not None and state_at(event, now_ms) not in query.states:
            continue
        kept.append(event)
    return kept


def _page_of(
    events: list[SimEvent],
    query: ListQuery,
    page: tuple[int, int],
    injector: Injector,
    now_ms: int,
) -> list[SimEvent]:
    """The ``page`` (first index, size) of ``events`` (in startTime order) once sorted.

    With unstable ties, events that share a sort value come in a new order on each request;
    ids are distinct, so ``sort=id`` stays a total order whatever the behaviour.
    """
    if query.sort == "startTime":
        keys: list[Any] = [event.start_ms for event in events]
    else:
        values = [_sort_value(event, query.sort, now_ms) for event in events]
        order = sorted(range(len(events)), key=values.__getitem__)
        events = [events[i] for i in order]
        keys = [values[i] for i in order]
    if injector.behaviour.unstable_ties:
        events = [events[i] for i in _tie_shuffled(keys, 0, len(events), injector)]
    if query.order == "DESC":
        events = events[::-1]
    first, size = page
    return events[first : first + size]


def _sort_value(event: SimEvent, prop: str, now_ms: int) -> tuple[int, Any]:
    """Sort key of ``event`` by ``prop``: numbers, then text, then missing values."""
    if prop == "id":
        value: Any = event.event_id
    else:
        value = record_at(event, now_ms).get(prop)
    if value is None:
        return (2, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _tie_shuffled(starts: Sequence[Any], low: int, high: int, injector: Injector) -> list[int]:
    """Positions ``low``..``high`` with every group of equal start times (or other sort values,
    in ascending order) shuffled.

    Groups cut by the page's edges are shuffled whole first, so consecutive pages disagree
    about which members of a group they hold, as a server with unstable ties does.
    """
    if low >= high:
        return []
    group_low = bisect_left(starts, starts[low])
    group_high = bisect_right(starts, starts[high - 1])
    order: list[int] = []
    index = group_low
    while index < group_high:
        end = bisect_right(starts, starts[index], index, group_high)
        group = list(range(index, end))
        if len(group) > 1:
            injector.shuffle(group)
        order.extend(group)
        index = end
    return order[low - group_low : high - group_low]
