"""Shared fixtures: a VIS simulator on a free loopback port, a temp warehouse, a Dagster home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

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
    return tmp_path / "warehouse" / "vis.duckdb"
