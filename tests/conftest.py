"""Shared fixtures: a VIS simulator on a free loopback port, a temp warehouse, a Dagster home."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from vis_pipeline.records import FINAL_STATES
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.warehouse import connect

SMALL = SimulatorOptions(seed=11, start="2026-03-02", days=3, calls_per_day=300, users=6)
"""A small data set: fast to generate and sync, still with ties, midnights and live calls."""


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    """A small simulator in its own process, shared by one test module.

    Tests that change its behaviour (faults, readings) reset it when they finish.
    """
    with SimulatorProcess(SMALL) as sim:
        yield sim


@pytest.fixture
def fresh_simulator(simulator: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The module's simulator, with its behaviour and statistics reset before and after."""
    simulator.control.reset_behaviour()
    simulator.control.reset_stats()
    yield simulator
    simulator.control.reset_behaviour()
    simulator.control.reset_stats()


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    """Where a test's DuckDB warehouse file lives (created by the code under test)."""
    return tmp_path / "warehouse" / "warehouse.duckdb"


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME with the project's dagster.yaml, set for the test."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    project_yaml = files("vis_pipeline.dagster_defaults").joinpath("dagster.yaml")
    (home / "dagster.yaml").write_text(project_yaml.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def instant(value: str | None) -> datetime | None:
    """The independent reading of an API instant: the standard library's ISO parser."""
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def expected_row(record: dict, tz: str) -> dict:
    """The ``vis.events`` row (without synced_at) of one API record, computed with ``datetime``
    rather than the project's pandas normalisation."""
    start = instant(record["startTime"])
    return {
        "event_id": record["id"],
        "external_id": record.get("externalId"),
        "record_type": record["type"],
        "account_id": record["accountId"],
        "user_id": record["userId"],
        "uci_id": record["uciId"],
        "direction": record["direction"],
        "caller_id": record.get("callerId"),
        "phone_number": record["phoneNumber"],
        "state": record["state"],
        "is_final": record["state"] in FINAL_STATES,
        "start_time": start,
        "answer_time": instant(record.get("answerTime")),
        "end_time": instant(record.get("endTime")),
        "duration_ms": record.get("duration"),
        "sms_data": record.get("smsData"),
        "local_date": start.astimezone(ZoneInfo(tz)).date(),
    }


def expected_events(truth: list[dict], tz: str) -> pd.DataFrame:
    """What ``vis.events`` must hold for these API records, sorted by event_id."""
    rows = [expected_row(record, tz) for record in truth]
    return pd.DataFrame(rows).sort_values("event_id", ignore_index=True)


def warehouse_events(path: Path) -> pd.DataFrame:
    """``vis.events`` (timestamps in UTC) sorted by event_id, without synced_at."""
    with connect(path, read_only=True) as conn:
        frame = conn.execute("SELECT * EXCLUDE (synced_at) FROM vis.events ORDER BY event_id").df()
    # DuckDB hands DATE columns to pandas as timestamps; the contract is a calendar date.
    frame["local_date"] = frame["local_date"].dt.date
    return frame


def assert_same_events(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Row for row and field for field, with clear messages on the first difference."""
    assert sorted(actual["event_id"]) == sorted(expected["event_id"]), (
        f"ids differ: {len(set(actual.event_id) - set(expected.event_id))} unexpected, "
        f"{len(set(expected.event_id) - set(actual.event_id))} missing"
    )
    actual_rows = _as_python_rows(actual)
    expected_rows = _as_python_rows(expected[list(actual.columns)])
    for got, want in zip(actual_rows, expected_rows, strict=True):
        assert got == want


def _as_python_rows(frame: pd.DataFrame) -> list[dict]:
    def plain(value: object) -> object:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime().astimezone(UTC)
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        if hasattr(value, "item"):
            return value.item()
        return value

    return [{key: plain(value) for key, value in row.items()} for row in frame.to_dict("records")]
