"""Syncing local days into the warehouse, without Dagster: the plain functions the assets call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import httpx
import pytest
from helpers import SMALL, assert_same_events, expected_events, warehouse_events

from vis_pipeline import warehouse as wh
from vis_pipeline.client import VISClient
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.sync import days_between, local_day_window, sync_days

FIRST = date.fromisoformat(SMALL.start)
DAYS = days_between(FIRST, date.fromordinal(FIRST.toordinal() + SMALL.days - 1))


def opener(path: Path):
    @contextmanager
    def open_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
        with wh.connect(path) as conn:
            yield conn

    return open_warehouse


def truth_of_days(sim: SimulatorProcess, days: list[date], tz: str) -> list[dict]:
    start, _ = local_day_window(days[0], tz)
    _, end = local_day_window(days[-1], tz)
    return sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))


def test_local_day_window_has_23_and_25_hour_days_in_new_york() -> None:
    spring = local_day_window(date(2026, 3, 8), "America/New_York")
    autumn = local_day_window(date(2026, 11, 1), "America/New_York")
    assert (spring[1] - spring[0]).total_seconds() == 23 * 3600
    assert (autumn[1] - autumn[0]).total_seconds() == 25 * 3600
    assert spring[0] == datetime(2026, 3, 8, 5, tzinfo=UTC)


def test_sync_days_loads_exactly_the_truth_and_rerun_is_settled(
    fresh_simulator: SimulatorProcess, warehouse_path: Path
) -> None:
    sim = fresh_simulator
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        sim.control.reset_stats()
        first = sync_days(extractor, opener(warehouse_path), DAYS, "UTC", run_id="one")
        assert [d.status for d in first] == ["loaded"] * len(DAYS)
        # A day never synced before is fetched at once: every request was the extraction's.
        assert sim.control.stats()["total"] == sum(d.requests for d in first)
        before = warehouse_events(warehouse_path)
        sim.control.reset_stats()
        again = sync_days(extractor, opener(warehouse_path), DAYS, "UTC", run_id="two")
    truth = truth_of_days(sim, DAYS, "UTC")
    assert_same_events(before, expected_events(truth, "UTC"))
    assert sum(d.api_count for d in first) == len(truth)
    # Every finished day costs one count request and is not fetched again.
    settled = [d for d in again if d.status == "settled"]
    live_days = {
        e["local_date"]
        for e in expected_events(truth, "UTC").to_dict("records")
        if not e["is_final"]
    }
    assert len(settled) == len(DAYS) - len(live_days)
    requests = sim.control.stats()["requests"]
    assert "listEvents" not in requests or len(live_days) > 0
    assert sum(requests["getEventsCount"].values()) >= len(DAYS)
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, "UTC"))


def test_a_client_on_its_own_transport_extracts_in_process_with_the_same_result(
    fresh_simulator: SimulatorProcess, warehouse_path: Path, tmp_path: Path
) -> None:
    sim = fresh_simulator
    # A transport of the caller's cannot be rebuilt in a child process: the sync stays here.
    with (
        VISClient(sim.base_url, sim.token, transport=httpx.HTTPTransport()) as client,
        WindowExtractor(client) as extractor,
    ):
        assert client.settings is None
        synced = sync_days(extractor, opener(warehouse_path), DAYS, "UTC")
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        assert client.settings is not None
        sync_days(extractor, opener(tmp_path / "child.sqlite"), DAYS, "UTC")
    assert [d.status for d in synced] == ["loaded"] * len(DAYS)
    expected = expected_events(truth_of_days(sim, DAYS, "UTC"), "UTC")
    assert_same_events(warehouse_events(warehouse_path), expected)
    assert_same_events(warehouse_events(tmp_path / "child.sqlite"), expected)


def test_full_sync_fetches_settled_days_again(
    fresh_simulator: SimulatorProcess, warehouse_path: Path
) -> None:
    sim = fresh_simulator
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        sync_days(extractor, opener(warehouse_path), DAYS[:1], "UTC")
        again = sync_days(extractor, opener(warehouse_path), DAYS[:1], "UTC", full=True)
    assert [d.status for d in again] == ["loaded"]


def test_invalid_records_are_quarantined_and_valid_ones_of_the_page_land(
    warehouse_path: Path,
) -> None:
    with SimulatorProcess(replace(SMALL, days=1)) as sim:
        _sync_with_broken_records(sim, warehouse_path)


def _sync_with_broken_records(sim: SimulatorProcess, warehouse_path: Path) -> None:
    day = DAYS[0]
    valid = truth_of_days(sim, [day], "UTC")
    at = valid[len(valid) // 2]["startTime"]
    broken = [
        {**valid[0], "id": 9_000_000_000_001, "state": "EXPLODED", "startTime": at},
        {
            key: value
            for key, value in {**valid[1], "id": 9_000_000_000_002, "startTime": at}.items()
            if key != "phoneNumber"
        },
        {**valid[2], "id": 9_000_000_000_003, "startTime": at, "answerTime": "yesterday-ish"},
    ]
    sim.control.inject(broken)
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        result = sync_days(extractor, opener(warehouse_path), [day], "UTC", full=True)
    assert result[0].rejected == 3
    with wh.connect(warehouse_path, read_only=True) as conn:
        rejected = conn.execute(
            "SELECT event_id, reason FROM vis.rejected_events ORDER BY event_id"
        ).fetchall()
    assert [row[0] for row in rejected] == [r["id"] for r in broken]
    assert "state" in rejected[0][1] and "phoneNumber" in rejected[1][1]
    assert "answerTime" in rejected[2][1]
    loaded_ids = set(warehouse_events(warehouse_path)["event_id"])
    assert loaded_ids == {e["id"] for e in valid}


@pytest.mark.parametrize("tz", ["America/New_York"])
def test_local_days_follow_the_reporting_zone(
    fresh_simulator: SimulatorProcess, warehouse_path: Path, tz: str
) -> None:
    sim = fresh_simulator
    days = DAYS[1:]
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        sync_days(extractor, opener(warehouse_path), days, tz)
    truth = truth_of_days(sim, days, tz)
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, tz))
