"""Window extraction against a real simulator: every event, once, whatever the API does.

The truth is the simulator's own control endpoint; the client never sees it. Each case sets
one reading of what the spec leaves open (first page, edge inclusivity, a silent page cap,
unstable order of ties) or a storm of faults, and checks the extraction returns exactly the
truth, field for field.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from vis_pipeline.client import VISClient
from vis_pipeline.errors import VISRetriesExhausted
from vis_pipeline.extract import (
    WINDOWS_IN_FLIGHT,
    ExtractOptions,
    PagingProfile,
    WindowExtractor,
    WindowResult,
)
from vis_pipeline.records import event_problem, parse_instant_ms
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

TZ = "America/New_York"
"""Local zone of the data set: its midnights differ from UTC's and it has a DST change."""

FIRST_DAY = date(2026, 3, 2)
"""First local day of the data set (the US DST change falls inside the range)."""

DAYS = 14
"""Days in the data set."""

LARGE = SimulatorOptions(
    seed=23, start=FIRST_DAY.isoformat(), days=DAYS, calls_per_day=2000, users=8, tz=TZ
)
"""The acceptance data set: 14 days of up to 2,000 calls, with ties and events on midnights."""

RANGE_START = datetime(2026, 3, 2, tzinfo=UTC)
"""A UTC midnight before the data set's first event."""

RANGE_END = datetime(2026, 3, 17, tzinfo=UTC)
"""A UTC midnight after the data set's last event."""

CONCURRENCY = 8
"""Requests in flight per client in these tests."""

FAULT_TIMEOUT = 0.5
"""Client timeout (s) in the fault storm: the simulator's slow answers take longer."""

FAULT_SLOW_SECONDS = 1.0
"""How long a slow answer takes in the fault storm."""

STORM_RETRIES = RetryPolicy(max_attempts=12, base=0.01, cap=0.05)
"""Enough attempts that a 30 % fault rate never exhausts one request (0.3**12)."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture(scope="module")
def large() -> Iterator[SimulatorProcess]:
    """The acceptance simulator, shared by this module (behaviour reset around each test)."""
    with SimulatorProcess(LARGE) as sim:
        yield sim


@pytest.fixture
def sim(large: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The acceptance simulator with default behaviour and fresh statistics."""
    large.control.reset_behaviour()
    large.control.reset_stats()
    yield large
    large.control.reset_behaviour()
    large.control.reset_stats()


@pytest.fixture(scope="module")
def truth(large: SimulatorProcess) -> dict[int, dict[str, Any]]:
    """Every event of the range by id, as the simulator holds it."""
    records = large.control.truth(_ms(RANGE_START), _ms(RANGE_END))
    by_id = {record["id"]: record for record in records}
    assert len(by_id) == len(records) > 20_000
    return by_id


@contextmanager
def _client(
    sim: SimulatorProcess,
    *,
    retry: RetryPolicy | None = None,
    timeout: float = 10.0,
    **options: Any,
) -> Iterator[WindowExtractor]:
    """An extractor over a fresh client of ``sim`` (both closed at the end)."""
    policy = {"retry": retry} if retry is not None else {}
    with (
        VISClient(sim.base_url, sim.token, concurrency=CONCURRENCY, timeout=timeout, **policy) as c,
        WindowExtractor(c, ExtractOptions(concurrency=CONCURRENCY, **options)) as extractor,
    ):
        yield extractor


def _assert_exactly(events: list[dict[str, Any]], truth: dict[int, dict[str, Any]]) -> None:
    got = {event["id"]: event for event in events}
    assert len(got) == len(events), "an event was yielded twice"
    missing, extra = truth.keys() - got.keys(), got.keys() - truth.keys()
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} unexpected"
    for event_id, record in truth.items():
        assert got[event_id] == record


# -- acceptance ------------------------------------------------------------------------------


@pytest.mark.parametrize("page_cap", [20, 100])
@pytest.mark.parametrize("edges", ["half-open", "strict"])
@pytest.mark.parametrize("first_page", [0, 1])
def test_every_event_once_under_every_reading(
    sim: SimulatorProcess,
    truth: dict[int, dict[str, Any]],
    first_page: int,
    edges: str,
    page_cap: int,
) -> None:
    sim.control.set_behaviour(
        first_page=first_page, edges=edges, page_cap=page_cap, unstable_ties=True, seed=first_page
    )
    with _client(sim) as client:
        events = list(client.iter_events(RANGE_START, RANGE_END))
        profile = client.profile
    _assert_exactly(events, truth)
    assert profile == PagingProfile(first_page, min(page_cap, 100))


def test_window_results_account_for_every_event(
    sim: SimulatorProcess, truth: dict[int, dict[str, Any]]
) -> None:
    sim.control.set_behaviour(page_cap=20, unstable_ties=True, edges="closed", seed=9)
    windows = [
        (RANGE_START + timedelta(days=d), RANGE_START + timedelta(days=d + 1)) for d in range(15)
    ]
    with _client(sim) as client:
        results = list(client.iter_windows(windows))
    assert [(r.start, r.end) for r in results] == windows
    for result in results:
        stats = result.stats
        assert not result.rejected
        assert stats.window_count == len(result.events)
        assert stats.distinct == stats.api_count
        assert stats.requests >= stats.pages + 1
        in_window = [
            r
            for r in truth.values()
            if _ms(result.start) <= parse_instant_ms(r["startTime"]) < _ms(result.end)
        ]
        assert len(result.events) == len(in_window)
        starts = [parse_instant_ms(event["startTime"]) for event in result.events]
        assert starts == sorted(starts)
    # Busy days need more than max_pages_per_window pages of 20: they were split.
    assert max(result.stats.sub_windows for result in results) > 0
    _assert_exactly([e for r in results for e in r.events], truth)


@pytest.mark.parametrize(
    ("first_page", "edges", "page_cap"), [(1, "strict", 100), (0, "half-open", 20)]
)
def test_fault_storm(
    sim: SimulatorProcess,
    truth: dict[int, dict[str, Any]],
    first_page: int,
    edges: str,
    page_cap: int,
) -> None:
    control = sim.control
    control.set_behaviour(
        probability=0.3,
        seed=17,
        retry_after="0",
        slow_seconds=FAULT_SLOW_SECONDS,
        first_page=first_page,
        edges=edges,
        page_cap=page_cap,
        unstable_ties=True,
    )
    with _client(sim, timeout=FAULT_TIMEOUT, retry=STORM_RETRIES) as client:
        results = list(client.iter_windows(_utc_days(RANGE_START, RANGE_END)))
        spent = client.client.retry_budget.spent
    _assert_exactly([e for r in results for e in r.events], truth)
    faults = control.stats()["faults"]
    assert set(faults) == {"429", "500", "502", "408", "slow", "truncated", "garbage"}
    retries = sum(result.stats.retries for result in results)
    # Every retry is accounted to a window, and every fault cost one. (A loaded machine may
    # add the odd spurious timeout; the exact one-for-one count is checked in test_client.)
    assert retries == spent
    assert sum(faults.values()) <= spent <= sum(faults.values()) * 1.1


def test_pages_that_never_parse_name_the_window(sim: SimulatorProcess) -> None:
    sim.control.set_behaviour(probability=1.0, kinds=["truncated"])
    window = (datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 6, tzinfo=UTC))
    policy = RetryPolicy(max_attempts=2, base=0.0)
    with _client(sim, retry=policy) as client, pytest.raises(VISRetriesExhausted) as caught:
        list(client.iter_windows([window]))
    error = caught.value
    assert error.window == window
    assert "2026-03-05T00:00:00+00:00" in str(error) and "2026-03-06T00:00:00+00:00" in str(error)
    assert error.attempts == 2


# -- edges -----------------------------------------------------------------------------------


def _local_days(tz: str) -> list[tuple[datetime, datetime]]:
    zone = ZoneInfo(tz)
    days = []
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        start = datetime.combine(day, time(), zone)
        end = datetime.combine(day + timedelta(days=1), time(), zone)
        days.append((start.astimezone(UTC), end.astimezone(UTC)))
    return days


def _utc_days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    return [
        (start + timedelta(days=d), start + timedelta(days=d + 1))
        for d in range((end - start).days)
    ]


@pytest.mark.parametrize("edges", ["half-open", "strict", "closed"])
@pytest.mark.parametrize("days", ["local", "utc"])
def test_events_on_window_edges_are_stored_once(
    sim: SimulatorProcess, truth: dict[int, dict[str, Any]], edges: str, days: str
) -> None:
    windows = _local_days(TZ) if days == "local" else _utc_days(RANGE_START, RANGE_END)
    edge_ms = {_ms(start) for start, _ in windows}
    on_edges = {i for i, r in truth.items() if parse_instant_ms(r["startTime"]) in edge_ms}
    assert on_edges, "the data set should have events exactly on the window edges"
    sim.control.set_behaviour(edges=edges, unstable_ties=True)
    with _client(sim) as client:
        results = list(client.iter_windows(windows))
    seen: dict[int, WindowResult] = {}
    for result in results:
        for event in result.events:
            assert event["id"] not in seen, "an edge event was stored twice"
            seen[event["id"]] = result
    for event_id in on_edges:
        # An event on an edge belongs to the window that starts there.
        assert seen[event_id].start == datetime.fromtimestamp(
            parse_instant_ms(truth[event_id]["startTime"]) / 1000, UTC
        )
    if days == "local":
        lengths = {result.end - result.start for result in results}
        assert timedelta(hours=23) in lengths  # the DST day is one of them


# -- arguments and iteration -----------------------------------------------------------------


def test_arguments_are_checked(sim: SimulatorProcess) -> None:
    aware = datetime(2026, 3, 3, tzinfo=UTC)
    naive = datetime(2026, 3, 3)
    with _client(sim) as client:
        with pytest.raises(ValueError, match="timezone-aware"):
            client.iter_events(naive, aware + timedelta(days=1))
        with pytest.raises(ValueError, match="timezone-aware"):
            client.iter_events(aware, naive + timedelta(days=1))
        with pytest.raises(ValueError, match="after"):
            client.iter_events(aware, aware)
        with pytest.raises(ValueError, match="after"):
            client.iter_events(aware, aware - timedelta(hours=1))
        with pytest.raises(ValueError):
            client.count_window(naive, aware)
        with pytest.raises(ValueError):
            list(client.iter_windows([(naive, aware)]))
    assert sim.control.stats()["total"] == 0


def test_iter_windows_reads_a_bounded_number_of_windows_ahead(sim: SimulatorProcess) -> None:
    pulled: list[tuple[datetime, datetime]] = []

    def windows() -> Iterator[tuple[datetime, datetime]]:
        for window in _utc_days(RANGE_START, RANGE_START + timedelta(days=6)):
            pulled.append(window)
            yield window

    with _client(sim) as client:
        results = client.iter_windows(windows())
        first = next(results)
        # The caller holds window 1; at most the next WINDOWS_IN_FLIGHT - 1 are being fetched.
        assert len(pulled) <= WINDOWS_IN_FLIGHT
        assert first.start == RANGE_START
        rest = list(results)
    assert len(rest) == 5 and len(pulled) == 6


def test_iter_windows_runs_then_on_the_extraction_thread(
    sim: SimulatorProcess, truth: dict[int, dict[str, Any]]
) -> None:
    caller = threading.get_ident()
    seen: list[tuple[int, int]] = []

    def summarise(result: WindowResult) -> tuple[datetime, int]:
        seen.append((threading.get_ident(), len(result.events)))
        return result.start, len({event["id"] for event in result.events})

    windows = _utc_days(RANGE_START, RANGE_START + timedelta(days=3))
    with _client(sim) as client:
        summaries = list(client.iter_windows(windows, summarise))
    assert [start for start, _ in summaries] == [start for start, _ in windows]
    assert [count for _, count in summaries] == [
        sum(1 for r in truth.values() if _ms(start) <= parse_instant_ms(r["startTime"]) < _ms(end))
        for start, end in windows
    ]
    assert seen and all(thread != caller for thread, _ in seen)


def test_an_error_in_then_reaches_the_caller(sim: SimulatorProcess) -> None:
    def refuse(result: WindowResult) -> None:
        raise LookupError(f"refused {result.start:%Y-%m-%d}")

    with _client(sim) as client, pytest.raises(LookupError, match="refused"):
        list(client.iter_windows(_utc_days(RANGE_START, RANGE_START + timedelta(days=2)), refuse))


def test_count_windows_asks_each_window_as_count_window_does(sim: SimulatorProcess) -> None:
    windows = _utc_days(RANGE_START, RANGE_START + timedelta(days=5))
    with _client(sim) as client:
        together = client.count_windows(windows)
        alone = [client.count_window(start, end) for start, end in windows]
    assert together == alone and sum(together) > 0


def test_count_window_is_the_margin_count(
    sim: SimulatorProcess, truth: dict[int, dict[str, Any]]
) -> None:
    start, end = datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)
    with _client(sim) as client:
        counted = client.count_window(start, end)
        (result,) = client.iter_windows([(start, end)])
    assert counted == result.stats.api_count
    margin = [
        r
        for r in truth.values()
        if _ms(start) - 1000 <= parse_instant_ms(r["startTime"]) < _ms(end) + 1000
    ]
    assert counted == len(margin)


# -- invalid records -------------------------------------------------------------------------

SMALL_INVALID = SimulatorOptions(seed=5, start="2026-03-02", days=2, calls_per_day=200, users=3)
"""A small data set of its own, so injected records do not leak into the acceptance truth."""


def _valid_like(template: dict[str, Any], event_id: int, start: str) -> dict[str, Any]:
    return {**template, "id": event_id, "startTime": start}


def test_invalid_records_are_rejected_and_valid_ones_kept() -> None:
    with SimulatorProcess(SMALL_INVALID) as small:
        day1 = small.control.truth(
            _ms(datetime(2026, 3, 2, tzinfo=UTC)), _ms(datetime(2026, 3, 3, tzinfo=UTC))
        )
        template = {
            k: v
            for k, v in day1[0].items()
            if k in {"type", "accountId", "userId", "uciId", "direction", "state", "phoneNumber"}
        }
        missing = _valid_like(template, 9_000_000_001, "2026-03-02T10:00:00.000Z")
        del missing["phoneNumber"]
        unknown = {
            **_valid_like(template, 9_000_000_002, "2026-03-02T11:00:00.000Z"),
            "state": "EXPLODED",
        }
        bad_time = _valid_like(template, 9_000_000_003, "yesterday at noon")
        extra = {
            **_valid_like(template, 9_000_000_004, "2026-03-03T12:00:00.000Z"),
            "newField": [1, 2],
        }
        small.control.inject([missing, unknown, bad_time, extra, "not a record"])
        start, end = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
        truth = small.control.truth(_ms(start), _ms(end))
        with _client(small, page_size=50) as client:
            results = list(client.iter_windows(_utc_days(start, end)))
    rejected = [item for result in results for item in result.rejected]
    reasons = {item.event_id: item.reason for item in rejected}
    assert len(rejected) == 4, reasons
    assert "phoneNumber" in reasons[9_000_000_001]
    assert "state" in reasons[9_000_000_002] and "EXPLODED" in reasons[9_000_000_002]
    assert "startTime" in reasons[9_000_000_003]
    assert "not an object" in reasons[None]
    assert {item.event_id for item in rejected} == {
        9_000_000_001,
        9_000_000_002,
        9_000_000_003,
        None,
    }
    payloads = {item.event_id: item.payload for item in rejected}
    assert payloads[9_000_000_001] == missing and payloads[None] == "not a record"
    valid = {r["id"]: r for r in truth if event_problem(r) is None}
    assert 9_000_000_004 in valid
    _assert_exactly([e for r in results for e in r.events], valid)
    # Every record is accounted for: window_count covers valid and rejected ones alike.
    for result in results:
        assert result.stats.window_count == len(result.events) + len(result.rejected)


# -- the validation fast path ------------------------------------------------------------------

_BASE_RECORD: dict[str, Any] = {
    "id": 1014039877924603700,
    "type": "CALL",
    "accountId": 830354,
    "userId": 623942,
    "uciId": 2555491,
    "direction": "INBOUND",
    "state": "ANSWERED",
    "phoneNumber": "+61293742185",
    "callerId": "李雷",
    "externalId": "ext-e8db5ca79c3d",
    "startTime": "2026-01-01T00:00:00.000Z",
    "answerTime": "2026-01-01T00:00:03.149Z",
    "endTime": "2026-01-01T00:01:54.211Z",
    "duration": 114211,
}

_ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -5,
    1.5,
    "",
    "x",
    [],
    ["CALL"],
    {},
    "CALL",
    "RINGING",
    "OUTBOUND",
    "2026-01-05",
    "20260105",
    "2026-01-05T14:03:22",
    "2026-01-05T14:03:22.517",
    "2026-01-05T14:03:22.517+02:00",
    "2026-01-05 14:03:22.517Z",
    "2026-02-30T14:03:22.517Z",
    "2026-01-05T24:00:00.000Z",
    "２０２６-01-05T14:03:22.517Z",
    "1969-12-31T23:59:59.999Z",
]


def _mutations() -> Iterator[Any]:
    yield dict(_BASE_RECORD)
    yield "not a record"
    yield [dict(_BASE_RECORD)]
    for name in _BASE_RECORD:
        missing = dict(_BASE_RECORD)
        del missing[name]
        yield missing
        for value in _ODD_VALUES:
            yield {**_BASE_RECORD, name: value}


def test_validation_fast_path_never_disagrees_with_event_problem() -> None:
    from vis_pipeline.extract import _valid_start_ms

    accepted = 0
    for record in _mutations():
        fast = _valid_start_ms(record)
        if fast is None:
            continue
        accepted += 1
        assert event_problem(record) is None, record
        assert fast == parse_instant_ms(record["startTime"]), record
    assert _valid_start_ms(dict(_BASE_RECORD)) == parse_instant_ms(_BASE_RECORD["startTime"])
    assert accepted > 50  # the fast path does take the common shapes
