"""What `status` reports: every problem of the warehouse, one line each, damage included."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from helpers import SMALL, copy_warehouse, opener

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation, set_aside
from vis_pipeline.client import VISClient
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.health import warehouse_problems
from vis_pipeline.reports import materialize_reports
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.sync import days_between, local_day_window, sync_days

FIRST = date.fromisoformat(SMALL.start)
LAST = FIRST + timedelta(days=SMALL.days - 1)


@pytest.fixture(scope="module")
def synced(simulator: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse of SMALL's days, events only (no reports yet)."""
    path = tmp_path_factory.mktemp("health") / "warehouse.sqlite"
    with (
        VISClient(simulator.base_url, simulator.token) as client,
        WindowExtractor(client) as extractor,
    ):
        sync_days(extractor, opener(path), days_between(FIRST, LAST), "UTC")
    return path


@pytest.fixture
def copy(synced: Path, tmp_path: Path) -> Path:
    """A copy of the synced warehouse the test may damage."""
    return copy_warehouse(synced, tmp_path / "copy.sqlite")


def _problems(path: Path) -> list[str]:
    with wh.connect(path, read_only=True) as conn:
        return warehouse_problems(conn)[1]


def _event_days(simulator: SimulatorProcess) -> list[str]:
    start, _ = local_day_window(FIRST, "UTC")
    _, end = local_day_window(LAST, "UTC")
    truth = simulator.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return sorted({record["startTime"][:10] for record in truth})


def test_a_whole_warehouse_has_no_problem(copy: Path) -> None:
    with wh.connect(copy) as conn:
        materialize_reports(conn, FIRST, LAST, "UTC")
    assert _problems(copy) == []


def test_days_whose_reports_were_never_built_are_named(
    simulator: SimulatorProcess, copy: Path
) -> None:
    (problem,) = _problems(copy)
    assert problem.startswith("reports were never built")
    assert all(day in problem for day in _event_days(simulator))


def test_a_damaged_data_file_is_a_problem_not_a_summary(copy: Path) -> None:
    with wh.connect(copy) as conn:
        materialize_reports(conn, FIRST, LAST, "UTC")
    data = Path(WarehouseLocation.parse(copy).data_path)
    damaged = max((data / "vis" / "events").rglob("*.parquet"), key=lambda p: p.stat().st_size)
    size = damaged.stat().st_size
    with damaged.open("r+b") as handle:  # a bad disk: 4 KB in the middle of the data
        handle.seek(size // 2 // 4096 * 4096)
        handle.write(os.urandom(4096))
    with wh.connect(copy, read_only=True) as conn:
        summary, problems = warehouse_problems(conn)
    assert summary is None
    (problem,) = problems
    assert "cannot be read" in problem and "--rebuild" in problem


def test_a_failed_day_and_a_day_short_of_its_count_are_named(copy: Path) -> None:
    failed, short = FIRST, LAST
    with wh.connect(copy) as conn:
        materialize_reports(conn, FIRST, LAST, "UTC")
        start, end = local_day_window(failed, "UTC")
        wh.record_failed(conn, wh.WindowSync(failed, start, end, 1, 0, 0, 0, 0.0, "run-x"))
        conn.execute(
            "DELETE FROM vis.events WHERE event_id = "
            "(SELECT min(event_id) FROM vis.events WHERE local_date = $day)",
            {"day": short},
        )
    problems = _problems(copy)
    assert any("failed" in p and failed.isoformat() in p for p in problems)
    assert any("differ from the API's count" in p and short.isoformat() in p for p in problems)
    assert not any(failed.isoformat() in p for p in problems if "differ" in p)


def test_a_broken_warehouse_is_set_aside_whole(copy: Path) -> None:
    location = WarehouseLocation.parse(copy)
    data = Path(location.data_path)
    before = copy.read_bytes(), sorted(p.relative_to(data) for p in data.rglob("*"))
    catalog, folder = set_aside(location)
    assert not copy.exists() and not data.exists()
    assert catalog.read_bytes() == before[0]
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before[1]
    for moved, original in ((catalog, copy), (folder, data)):
        assert moved.parent == original.parent
        assert moved.name.startswith(original.name + ".broken-")
        assert datetime.now(UTC).strftime("%Y%m%d") in moved.name
