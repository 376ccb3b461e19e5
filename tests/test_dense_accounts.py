"""The densest accounts: instants that hold more events than a page, and very busy days.

A ring-all group rings every agent at one millisecond; imported history shares one timestamp.
The simulator puts such instants on every day (one on each local midnight, a window edge),
reorders their events on every request, and misbehaves on top. Extraction and the sync must
still give exactly the truth, or fail in bounded time naming the instant they could not read,
while the other days of the run land.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from helpers import assert_same_events, expected_events, opener, warehouse_events

from vis_pipeline import warehouse as wh
from vis_pipeline.cli import main
from vis_pipeline.client import VISClient
from vis_pipeline.errors import VISDaysFailed, VISIncompleteWindow
from vis_pipeline.extract import ExtractOptions, WindowExtractor
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import local_day_window, raise_for_failed, sync_days

TZ = "America/New_York"
"""Local midnights differ from UTC's, so the midnight instant sits on a local window edge."""

PAGE_CAP = 20
"""The page size the server honours in the harsh cases (asked for 100, silently given 20)."""

FIRST = date(2026, 3, 2)
DAYS = 2

FAULTS = {"probability": 0.2, "slow_seconds": 0.2, "seed": 3}
"""20 % of requests fail, every kind of fault; slow answers stay under the client's timeout."""

PATIENT = RetryPolicy(max_attempts=15, base=0.01, cap=0.05)
"""Enough attempts that a 20 % fault rate never exhausts one request (0.2**15)."""


def _ms(day: date, tz: str = TZ) -> tuple[int, int]:
    start, end = local_day_window(day, tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _range(first: date, days: int) -> tuple[int, int]:
    return _ms(first)[0], _ms(first + timedelta(days=days - 1))[1]


def _dense(size: int, *, calls_per_day: int = 800, days: int = DAYS) -> SimulatorOptions:
    return SimulatorOptions(
        seed=size,
        start=FIRST.isoformat(),
        days=days,
        calls_per_day=calls_per_day,
        users=6,
        tz=TZ,
        dense_instants_per_day=3,
        dense_instant_size=size,
    )


@contextmanager
def _extractor(
    sim: SimulatorProcess, transport: httpx.BaseTransport | None = None, **options: Any
) -> Iterator[WindowExtractor]:
    with (
        VISClient(sim.base_url, sim.token, timeout=5.0, retry=PATIENT, transport=transport) as c,
        WindowExtractor(c, ExtractOptions(**options)) as extractor,
    ):
        yield extractor


def _assert_exactly(events: list[dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    got = {event["id"]: event for event in events}
    assert len(got) == len(events), "an event was yielded twice"
    want = {record["id"]: record for record in truth}
    missing, extra = want.keys() - got.keys(), got.keys() - want.keys()
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} unexpected"
    assert all(got[event_id] == record for event_id, record in want.items())


def _instants(truth: list[dict[str, Any]], at_least: int) -> dict[str, int]:
    """Start instants of ``truth`` holding at least ``at_least`` events, with their sizes."""
    sizes: dict[str, int] = {}
    for record in truth:
        sizes[record["startTime"]] = sizes.get(record["startTime"], 0) + 1
    return {moment: size for moment, size in sizes.items() if size >= at_least}


@pytest.fixture(scope="module", params=[1, 3, 10], ids=lambda m: f"{m}x-page")
def dense(request: pytest.FixtureRequest) -> Iterator[SimulatorProcess]:
    """A simulator whose days each hold three instants of 1, 3 or 10 capped pages."""
    with SimulatorProcess(_dense(request.param * PAGE_CAP)) as sim:
        yield sim


@pytest.mark.parametrize("sort_by_id", ["accepted", "refused"])
def test_instants_larger_than_a_page_are_read_exactly(
    dense: SimulatorProcess, sort_by_id: str
) -> None:
    dense.control.set_behaviour(
        page_cap=PAGE_CAP,
        edges="strict",
        unstable_ties=True,
        start_time_sort_only=sort_by_id == "refused",
        **FAULTS,
    )
    try:
        truth = dense.control.truth(*_range(FIRST, DAYS))
        with _extractor(dense) as extractor:
            windows = [local_day_window(FIRST + timedelta(days=d), TZ) for d in range(DAYS)]
            results = list(extractor.iter_windows(windows))
            events = [event for result in results for event in result.events]
    finally:
        dense.control.reset_behaviour()
    assert len(_instants(truth, PAGE_CAP)) == 3 * DAYS
    _assert_exactly(events, truth)
    faults = dense.control.stats()["faults"]
    assert sum(faults.values()) > 0
    assert all(result.stats.repair_requests <= ExtractOptions().repair_budget for result in results)


def test_a_day_of_100_000_calls_with_dense_instants_syncs_exactly(
    monkeypatch: pytest.MonkeyPatch, dagster_home: Path, warehouse_path: Path
) -> None:
    options = _dense(1000, calls_per_day=100_000, days=1)
    with SimulatorProcess(options) as sim:
        sim.control.set_behaviour(edges="strict", unstable_ties=True, **FAULTS)
        for name, value in {
            "VIS_BASE_URL": sim.base_url,
            "VIS_ACCESS_TOKEN": sim.token,
            "VIS_TIMEZONE": TZ,
            "VIS_START_DATE": FIRST.isoformat(),
            "VIS_WAREHOUSE": str(warehouse_path),
            "VIS_MAX_RETRIES": "14",
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["sync", "--from", FIRST.isoformat(), "--to", FIRST.isoformat()]) == 0
        truth = sim.control.truth(*_ms(FIRST))
    assert len(truth) > 100_000 and len(_instants(truth, 1000)) == 3
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, TZ))


class _PhantomEvent(httpx.BaseTransport):
    """Real HTTP to the simulator, except that every count over a range holding ``instant``
    answers one more than the server holds: an event nobody can list, so that range never
    settles."""

    def __init__(self, instant_ms: int) -> None:
        self._inner = httpx.HTTPTransport()
        self._instant = instant_ms

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if not request.url.path.endswith("/events/count"):
            return response
        params = request.url.params
        if not int(params["fromDate"]) <= self._instant <= int(params["toDate"]):
            return response
        body = orjson.loads(response.read())
        body["count"] += 1
        return httpx.Response(response.status_code, headers={}, json=body)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture(scope="module")
def tenfold() -> Iterator[SimulatorProcess]:
    """Three days, each with instants of ten capped pages."""
    with SimulatorProcess(_dense(10 * PAGE_CAP, days=3)) as sim:
        yield sim


def _inner_instant_ms(sim: SimulatorProcess, day: date) -> int:
    """A dense instant of ``day`` away from its midnights (no neighbour's margin reaches it)."""
    start, end = _ms(day)
    dense = [
        int(datetime.fromisoformat(moment).timestamp() * 1000)
        for moment in _instants(sim.control.truth(start, end), PAGE_CAP)
    ]
    return max(dense)


def test_a_range_that_never_settles_fails_naming_its_instant_within_the_budget(
    tenfold: SimulatorProcess,
) -> None:
    instant = _inner_instant_ms(tenfold, FIRST)
    tenfold.control.reset_stats()
    budget = 20
    with (
        _extractor(tenfold, _PhantomEvent(instant), repair_budget=budget) as extractor,
        pytest.raises(VISIncompleteWindow) as caught,
    ):
        extractor.extract(*local_day_window(FIRST, TZ))
    error = caught.value
    assert error.instant is not None and int(error.instant.timestamp() * 1000) == instant
    assert "could not be read whole" in str(error) and f"budget of {budget}" in str(error)
    # What the window costs without repairs (a count, two probes, its pages), the budget, and
    # at most one batch begun before the budget was found spent (the instant's two pages).
    start, end = _ms(FIRST)
    margin = ExtractOptions().edge_margin_ms
    queried = len(tenfold.control.truth(start - margin, end + margin + 1))
    planned = 3 + -(-queried // 100)
    assert tenfold.control.stats()["total"] <= planned + budget + 2


def test_a_day_that_cannot_be_read_fails_alone_and_the_others_land(
    tenfold: SimulatorProcess, warehouse_path: Path
) -> None:
    days = [FIRST + timedelta(days=d) for d in range(3)]
    broken = days[1]
    phantom = _PhantomEvent(_inner_instant_ms(tenfold, broken))
    with (
        VISClient(tenfold.base_url, tenfold.token, transport=phantom) as client,
        WindowExtractor(client, ExtractOptions(repair_budget=40)) as extractor,
    ):
        synced = sync_days(extractor, opener(warehouse_path), days, TZ)
    assert [item.status for item in synced] == ["loaded", "failed", "loaded"]
    with pytest.raises(VISDaysFailed, match=broken.isoformat()):
        raise_for_failed(synced)
    landed = [day for day in days if day != broken]
    truth = [r for day in landed for r in tenfold.control.truth(*_ms(day))]
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, TZ))
    with wh.connect(warehouse_path, read_only=True) as conn:
        assert wh.status_summary(conn)["failed_days"] == [broken.isoformat()]
