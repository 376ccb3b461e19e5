"""Seeded generation of a company's call history: the simulator's ground truth.

Everything is drawn from generators seeded by ``options.seed``, so the same options give the
same data set. The bulk of the data does not depend on ``options.now``; only a handful of calls
anchored just before the clock's first reading do (so there are always live calls and calls
that show up late around "now").

Readings chosen here: ``duration`` is ``endTime - startTime`` in milliseconds (ringing
included); ``answerTime`` exists only for answered calls (ANSWERED, DETACHED, and the live
ACTIVE/HELD); ``endTime`` and ``duration`` only once a call is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np

from vis_pipeline.simulator.dense import dense_calls
from vis_pipeline.simulator.events import SimEvent, dumps_compact
from vis_pipeline.simulator.options import SimulatorOptions
from vis_pipeline.simulator.people import (
    CALLER_NAMES,
    make_account,
    make_users,
    phone_numbers,
)

HOUR_MS = 3_600_000
"""One hour in milliseconds."""

MINUTE_MS = 60_000
"""One minute in milliseconds."""

DAY_MS = 24 * HOUR_MS
"""One day in milliseconds (of UTC; local days may be 23 or 25 hours)."""

WEEKEND_FACTOR = 0.25
"""A weekend day's call volume relative to a weekday's."""

OFF_HOURS_SHARE = 0.12
"""Share of calls placed at any hour rather than in business hours."""

INBOUND_SHARE = 0.60
"""Share of calls that are inbound."""

INBOUND_OUTCOMES: tuple[tuple[str, float], ...] = (
    ("MISSED", 0.15),
    ("REJECTED", 0.03),
    ("CANCELLED", 0.02),
    ("DETACHED", 0.07),
)
"""Final states of inbound calls other than ANSWERED, with their shares."""

OUTBOUND_OUTCOMES: tuple[tuple[str, float], ...] = (
    ("CANCELLED", 0.10),
    ("REJECTED", 0.04),
    ("DETACHED", 0.04),
)
"""Final states of outbound calls other than ANSWERED, with their shares."""

MEDIAN_TALK_MS = 150_000
"""Median talk time of an answered call (log-normal)."""

MAX_TALK_MS = 3 * HOUR_MS
"""Longest talk time generated."""

MAX_RING_MS = 45_000
"""Longest time a generated call rings."""

MAX_CALL_MS = MAX_RING_MS + MAX_TALK_MS
"""Longest a generated call lasts: anything that started earlier than this is over."""

LATE_SHARE = 0.005
"""Share of calls that become visible only some hours after they started."""

LATE_MIN_MS = HOUR_MS
"""Shortest delay before a late call becomes visible."""

LATE_MAX_MS = 6 * HOUR_MS
"""Longest delay before a late call becomes visible: older calls are all visible."""

HOLD_SHARE = 0.12
"""Share of answered calls put on hold once."""

TIE_GROUP_EVERY = 150
"""One group of calls sharing a startTime per this many calls."""

CALLBACK_SHARE = 0.6
"""Share of missed inbound calls a user tries to call back (an outbound call to that number)."""

CALLBACK_MEAN_DELAY_MS = 2 * HOUR_MS
"""Mean delay before such a callback; the callback is the next outbound call after it."""

CALLBACK_WITHIN_MS = 30 * HOUR_MS
"""A callback is looked for this long after the missed call at most (some land too late)."""

_ABSENT = -1
_NULL = -2


@dataclass(frozen=True)
class Dataset:
    """A generated data set: the calls sorted by (startTime, id), the users and the account."""

    events: list[SimEvent]
    users: list[dict[str, Any]]
    account: dict[str, Any]
    range_ms: tuple[int, int]
    now_ms: int


@dataclass
class _Timeline:
    """Column arrays of the calls' timelines (one row per call)."""

    start: np.ndarray
    answer: np.ndarray  # -1: never answered
    end: np.ndarray
    hold_start: np.ndarray  # -1: never held
    hold_end: np.ndarray
    visible: np.ndarray
    inbound: np.ndarray
    state: np.ndarray  # final state names


def generate(options: SimulatorOptions) -> Dataset:
    """The data set ``options`` describe."""
    rng = np.random.default_rng(options.seed)
    account_id = int(rng.integers(100_000, 1_000_000))
    account_uci = int(rng.integers(1_000_000, 10_000_000))
    users, user_ucis = make_users(rng, options.users, account_id)
    main = _main_timeline(rng, options)
    anchored = _anchored_timeline(np.random.default_rng([options.seed, 1]), options.now_ms())
    timeline = _concat(main, anchored)
    if options.dense_instants_per_day:
        timeline = _with_dense(np.random.default_rng([options.seed, 3]), timeline, options)
    ids = _unique_ids(rng, len(timeline.start))
    docs = _documents(rng, ids.tolist(), timeline, account_id, [u["id"] for u in users], user_ucis)
    # (startTime, id) order, sorted by numpy: the ids are distinct, so the order is total.
    order = np.lexsort((ids, timeline.start))
    events = _events(
        ids[order].tolist(), [docs[i] for i in order.tolist()], _taken(timeline, order)
    )
    return Dataset(
        events=events,
        users=users,
        account=make_account(account_id, account_uci),
        range_ms=options.range_ms(),
        now_ms=options.now_ms(),
    )


def _day_layout(options: SimulatorOptions) -> dict[str, np.ndarray]:
    """Per local day: UTC start, naive wall-clock epoch of midnight, UTC offsets, weekend flag."""
    zone = options.zone()
    first = options.start_date()
    starts, walls, off_mid, off_noon, weekend = [], [], [], [], []
    for index in range(options.days + 1):
        day = first + timedelta(days=index)
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        noon = midnight.replace(hour=12)
        starts.append(int(midnight.timestamp()) * 1000)
        walls.append((day.toordinal() - 719_163) * DAY_MS)
        off_mid.append(int(midnight.utcoffset().total_seconds()) * 1000)  # type: ignore[union-attr]
        off_noon.append(int(noon.utcoffset().total_seconds()) * 1000)  # type: ignore[union-attr]
        weekend.append(day.weekday() >= 5)
    return {
        "start": np.array(starts, dtype=np.int64),
        "wall": np.array(walls, dtype=np.int64),
        "off_mid": np.array(off_mid, dtype=np.int64),
        "off_noon": np.array(off_noon, dtype=np.int64),
        "weekend": np.array(weekend, dtype=bool),
    }


def _wall_times(rng: np.random.Generator, count: int) -> np.ndarray:
    """Local time of day (ms) of ``count`` calls: two business-hour peaks, a few off-hours."""
    hours = np.where(
        rng.random(count) < 0.5,
        rng.normal(10.5, 1.4, count),
        rng.normal(14.5, 1.6, count),
    )
    stray = (hours < 7.0) | (hours > 19.5)
    hours[stray] = rng.uniform(8.0, 18.0, int(stray.sum()))
    off_hours = rng.random(count) < OFF_HOURS_SHARE
    hours[off_hours] = rng.uniform(0.0, 24.0, int(off_hours.sum()))
    return np.minimum((hours * HOUR_MS).astype(np.int64), DAY_MS - 1)


def _start_times(rng: np.random.Generator, options: SimulatorOptions) -> np.ndarray:
    """Start times (UTC ms) of the bulk of the calls, business-hour peaks in local time."""
    layout = _day_layout(options)
    weekday_mean = float(options.calls_per_day)
    means = np.where(layout["weekend"][:-1], weekday_mean * WEEKEND_FACTOR, weekday_mean)
    counts = rng.poisson(means)
    day = np.repeat(np.arange(options.days), counts)
    wall = _wall_times(rng, int(counts.sum()))
    # DST changes happen in the small hours: before 03:00 the midnight offset applies.
    offset = np.where(wall < 3 * HOUR_MS, layout["off_mid"][day], layout["off_noon"][day])
    start = layout["wall"][day] + wall - offset
    return np.clip(start, layout["start"][day], layout["start"][day + 1] - 1)


def _midnights(rng: np.random.Generator, options: SimulatorOptions) -> np.ndarray:
    """Instants exactly on local midnights (one or two calls each) and on UTC midnights."""
    layout = _day_layout(options)
    first, last = int(layout["start"][0]), int(layout["start"][-1])
    local = np.repeat(layout["start"][:-1], rng.integers(1, 3, options.days))
    utc = layout["wall"][:-1]
    utc = utc[(utc >= first) & (utc < last) & ~np.isin(utc, layout["start"])]
    return np.concatenate([local, utc])


def _main_timeline(rng: np.random.Generator, options: SimulatorOptions) -> _Timeline:
    """Timelines of the bulk of the calls: ties, midnights, outcomes, talk times, late ones."""
    start = _start_times(rng, options)
    count = len(start)
    order = rng.permutation(count)
    midnights = _midnights(rng, options)[: count // 4]
    start[order[: len(midnights)]] = midnights
    _make_ties(rng, start, order[len(midnights) :])
    inbound = np.zeros(count, dtype=bool)
    inbound[rng.permutation(count)[: round(count * INBOUND_SHARE)]] = True
    state = np.full(count, "ANSWERED", dtype=object)
    _assign_outcomes(rng, state, np.flatnonzero(inbound), INBOUND_OUTCOMES)
    _assign_outcomes(rng, state, np.flatnonzero(~inbound), OUTBOUND_OUTCOMES)
    timeline = _durations(rng, start, inbound, state)
    late = rng.permutation(count)[: round(count * LATE_SHARE)]
    timeline.visible[late] = start[late] + rng.integers(LATE_MIN_MS, LATE_MAX_MS + 1, len(late))
    return timeline


def _make_ties(rng: np.random.Generator, start: np.ndarray, candidates: np.ndarray) -> None:
    """Give groups of 2-5 calls (drawn from ``candidates``) the exact same startTime."""
    groups = min(max(2, len(start) // TIE_GROUP_EVERY), len(candidates) // 5)
    if groups <= 0:
        return
    sizes = rng.integers(2, 6, groups)
    leaders = candidates[:groups]
    members = candidates[groups : groups + int((sizes - 1).sum())]
    start[members] = np.repeat(start[leaders], sizes - 1)


def _assign_outcomes(
    rng: np.random.Generator,
    state: np.ndarray,
    indices: np.ndarray,
    outcomes: tuple[tuple[str, float], ...],
) -> None:
    """Exact shares of final states among ``indices``; the rest stay ANSWERED."""
    shuffled = rng.permutation(indices)
    position = 0
    for name, share in outcomes:
        size = round(len(indices) * share)
        state[shuffled[position : position + size]] = name
        position += size


def _durations(
    rng: np.random.Generator, start: np.ndarray, inbound: np.ndarray, state: np.ndarray
) -> _Timeline:
    """Ring and talk times by outcome, answer/end instants, and holds."""
    count = len(start)
    answered = (state == "ANSWERED") | (state == "DETACHED")
    ring = np.clip(rng.lognormal(np.log(7_000), 0.5, count), 1_500, MAX_RING_MS)
    for name, low, high in (
        ("MISSED", 15_000, 40_000),
        ("REJECTED", 2_000, 12_000),
        ("CANCELLED", 3_000, 30_000),
    ):
        chosen = state == name
        ring[chosen] = rng.uniform(low, high, int(chosen.sum()))
    ring = ring.astype(np.int64)
    talk = np.clip(rng.lognormal(np.log(MEDIAN_TALK_MS), 0.9, count), 3_000, MAX_TALK_MS)
    talk = np.where(answered, talk.astype(np.int64), 0)
    answer = np.where(answered, start + ring, -1)
    end = start + ring + talk
    held = answered & (talk >= MINUTE_MS) & (rng.random(count) < HOLD_SHARE)
    hold_start = np.where(held, answer + (talk * rng.uniform(0.2, 0.5, count)).astype(np.int64), -1)
    hold_length = np.minimum(rng.uniform(10_000, 120_000, count), talk * 0.3).astype(np.int64)
    hold_end = np.where(held, hold_start + hold_length, -1)
    return _Timeline(start, answer, end, hold_start, hold_end, start.copy(), inbound, state)


class _Row(NamedTuple):
    """One anchored call's timeline (-1: no such instant)."""

    start: int
    answer: int
    end: int
    visible: int
    inbound: bool = True
    state: str = "ANSWERED"
    hold_start: int = -1
    hold_end: int = -1


def _anchored_timeline(rng: np.random.Generator, now_ms: int) -> _Timeline:
    """A few calls around the clock's first reading: some live in each live state, and some
    that started hours before it but become visible only after it."""

    def pick(low: float, high: float) -> int:
        return int(rng.uniform(low, high))

    rows: list[_Row] = []
    # Ringing now, answered or missed later.
    for inbound, state in ((True, "ANSWERED"), (True, "MISSED"), (False, "ANSWERED")):
        start, rung = now_ms - pick(3_000, 15_000), now_ms + pick(10_000, 30_000)
        talk = pick(2 * MINUTE_MS, 10 * MINUTE_MS) if state == "ANSWERED" else 0
        answer = rung if state == "ANSWERED" else -1
        rows.append(_Row(start, answer, rung + talk, start, inbound, state))
    # Talking now.
    for inbound, state in ((True, "ANSWERED"), (False, "DETACHED")):
        start = now_ms - pick(2 * MINUTE_MS, 10 * MINUTE_MS)
        end = now_ms + pick(5 * MINUTE_MS, 30 * MINUTE_MS)
        rows.append(_Row(start, start + pick(4_000, 15_000), end, start, inbound, state))
    # On hold now.
    start = now_ms - pick(3 * MINUTE_MS, 8 * MINUTE_MS)
    hold_start, hold_end = now_ms - pick(10_000, 60_000), now_ms + pick(MINUTE_MS, 3 * MINUTE_MS)
    end = hold_end + pick(MINUTE_MS, 5 * MINUTE_MS)
    rows.append(_Row(start, start + 8_000, end, start, hold_start=hold_start, hold_end=hold_end))
    # Started one to three hours ago, over, but visible only later.
    for state in ("ANSWERED", "MISSED", "ANSWERED"):
        start = now_ms - pick(HOUR_MS, 3 * HOUR_MS)
        answer = start + 6_000 if state == "ANSWERED" else -1
        end = start + (pick(MINUTE_MS, 8 * MINUTE_MS) if state == "ANSWERED" else 25_000)
        visible = now_ms + pick(10 * MINUTE_MS, 2 * HOUR_MS)
        rows.append(_Row(start, answer, end, visible, state=state))

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.array([getattr(row, name) for row in rows], dtype=dtype)

    return _Timeline(
        start=column("start", np.int64),
        answer=column("answer", np.int64),
        end=column("end", np.int64),
        hold_start=column("hold_start", np.int64),
        hold_end=column("hold_end", np.int64),
        visible=column("visible", np.int64),
        inbound=column("inbound", bool),
        state=column("state", object),
    )


_COLUMNS = ("start", "answer", "end", "hold_start", "hold_end", "visible", "inbound", "state")


def _concat(first: _Timeline, second: _Timeline) -> _Timeline:
    """Both timelines' rows, ``first``'s rows first."""
    return _Timeline(*(np.concatenate([getattr(first, n), getattr(second, n)]) for n in _COLUMNS))


def _taken(timeline: _Timeline, rows: np.ndarray) -> _Timeline:
    """The timeline's ``rows``, in that order."""
    return _Timeline(*(getattr(timeline, name)[rows] for name in _COLUMNS))


def _with_dense(
    rng: np.random.Generator, timeline: _Timeline, options: SimulatorOptions
) -> _Timeline:
    """``timeline`` and the calls of the dense instants, each instant holding only its own."""
    calls = dense_calls(rng, options)
    _clear_around(timeline, np.unique(calls.start))
    return _concat(timeline, _durations(rng, calls.start, calls.inbound, calls.state))


def _clear_around(timeline: _Timeline, instants: np.ndarray) -> None:
    """Move calls at or next to a dense instant (sorted) to 2 ms after it, whole timelines.

    An instant then holds its dense calls only, and a window (T-1, T+1) counts exactly them
    under every edge reading.
    """
    start = timeline.start
    nearest = np.minimum(np.searchsorted(instants, start - 1), len(instants) - 1)
    target = instants[nearest]
    near = np.abs(start - target) <= 1
    shift = np.where(near, target + 2 - start, 0)
    for name in ("start", "end", "visible"):
        getattr(timeline, name)[:] += shift
    for name in ("answer", "hold_start", "hold_end"):
        column = getattr(timeline, name)
        column[:] += np.where(column >= 0, shift, 0)


def _iso(values: np.ndarray) -> list[str]:
    """ISO-8601 UTC instants with milliseconds, as ``format_instant_ms`` spells them."""
    text = np.datetime_as_string(values.astype("datetime64[ms]"), unit="ms")
    return [f"{value}Z" for value in text.tolist()]


def _unique_ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` distinct positive int64 ids in no relation to time."""
    ids = rng.integers(1_000_000_000, 2**62, count, dtype=np.int64)
    while len(np.unique(ids)) != count:
        _, first = np.unique(ids, return_index=True)
        duplicate = np.setdiff1d(np.arange(count), first)
        ids[duplicate] = rng.integers(1_000_000_000, 2**62, len(duplicate), dtype=np.int64)
    return ids


def _documents(
    rng: np.random.Generator,
    ids: list[int],
    timeline: _Timeline,
    account_id: int,
    user_ids: list[int],
    user_ucis: list[int],
) -> list[bytes]:
    """The final wire record of every call, serialised."""
    count = len(timeline.start)
    weights = 1.0 / np.arange(1, len(user_ids) + 1) ** 0.7
    who = rng.choice(len(user_ids), count, p=weights / weights.sum()).tolist()
    roll = rng.random(count)
    caller = np.where(
        roll < 0.10,
        _ABSENT,
        np.where(roll < 0.16, _NULL, rng.integers(0, len(CALLER_NAMES), count)),
    ).tolist()
    phones = phone_numbers(rng, count)
    # Its own generator: callbacks leave every other draw of the data set as it was.
    _call_back(np.random.default_rng([account_id, 2]), phones, timeline)
    external = rng.integers(0, 2**48, count).tolist()
    has_external = (rng.random(count) >= 0.05).tolist()
    starts = _iso(timeline.start)
    answers = _iso(np.maximum(timeline.answer, 0))
    ends = _iso(timeline.end)
    durations = (timeline.end - timeline.start).tolist()
    answered = (timeline.answer >= 0).tolist()
    inbound = timeline.inbound.tolist()
    states = timeline.state.tolist()
    docs: list[bytes] = []
    for i in range(count):
        record: dict[str, Any] = {
            "id": ids[i],
            "type": "CALL",
            "accountId": account_id,
            "userId": user_ids[who[i]],
            "uciId": user_ucis[who[i]],
            "direction": "INBOUND" if inbound[i] else "OUTBOUND",
            "state": states[i],
            "phoneNumber": phones[i],
        }
        if caller[i] != _ABSENT:
            record["callerId"] = None if caller[i] == _NULL else CALLER_NAMES[caller[i]]
        if has_external[i]:
            record["externalId"] = f"ext-{external[i]:012x}"
        record["startTime"] = starts[i]
        if answered[i]:
            record["answerTime"] = answers[i]
        record["endTime"] = ends[i]
        record["duration"] = durations[i]
        docs.append(dumps_compact(record))
    return docs


def _call_back(rng: np.random.Generator, phones: list[str], timeline: _Timeline) -> None:
    """Turn some outbound calls into callbacks of earlier missed calls (same phone number),
    so that the unreturned-missed-calls report has both kinds to tell apart."""
    order = np.argsort(timeline.start, kind="stable")
    outbound = order[~timeline.inbound[order]]
    outbound_starts = timeline.start[outbound]
    # Slot i is free while free_from[i] == i; a taken slot points further on.
    free_from = list(range(len(outbound) + 1))
    missed = order[timeline.inbound[order] & (timeline.state[order] == "MISSED")]
    for call in missed.tolist():
        if rng.random() >= CALLBACK_SHARE:
            continue
        wanted = timeline.start[call] + int(rng.exponential(CALLBACK_MEAN_DELAY_MS))
        slot = _first_free(free_from, int(np.searchsorted(outbound_starts, wanted)))
        if slot < len(outbound) and outbound_starts[slot] - timeline.start[call] <= (
            CALLBACK_WITHIN_MS
        ):
            free_from[slot] = slot + 1
            phones[int(outbound[slot])] = phones[call]


def _first_free(free_from: list[int], slot: int) -> int:
    """The first free slot at or after ``slot``, shortening the paths walked on the way.

    The many missed calls of a ring-all instant look for callbacks around the same time: a
    plain scan past the taken slots would grow with the square of their number.
    """
    free = slot
    while free_from[free] != free:
        free = free_from[free]
    while free_from[slot] != free:
        free_from[slot], slot = free, free_from[slot]
    return free


def _events(ids: list[int], docs: list[bytes], timeline: _Timeline) -> list[SimEvent]:
    """One SimEvent per call, its timeline attached to its final record."""
    columns = (
        timeline.start.tolist(),
        timeline.answer.tolist(),
        timeline.end.tolist(),
        timeline.hold_start.tolist(),
        timeline.hold_end.tolist(),
        timeline.visible.tolist(),
        timeline.inbound.tolist(),
        timeline.state.tolist(),
    )
    events: list[SimEvent] = []
    for ident, doc, (start, answer, end, hold_start, hold_end, visible, inbound, state) in zip(
        ids, docs, zip(*columns, strict=True), strict=True
    ):
        events.append(
            SimEvent(
                ident,
                start,
                doc,
                visible_ms=visible,
                answer_ms=answer if answer >= 0 else None,
                end_ms=end,
                hold=(hold_start, hold_end) if hold_start >= 0 else None,
                final_state=state,
                direction="INBOUND" if inbound else "OUTBOUND",
            )
        )
    return events
