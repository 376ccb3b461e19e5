"""Shared fixtures: a VIS simulator on a free loopback port, a temp warehouse, a Dagster home,
a throwaway PostgreSQL server."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage
from dagster_processes import PostgresServer, postgres_bin
from helpers import SMALL

from vis_pipeline.simulator.process import SimulatorProcess


@pytest.fixture(autouse=True)
def _no_dagster_state_storage_left_behind() -> Iterator[None]:
    """Each test starts with no current Dagster definitions-state storage, and leaves none.

    A DagsterInstance makes its storage the current one for as long as it is open; one a test
    leaves to the garbage collector stays current, dead, for the next test of the worker, whose
    definitions then fail to load ("undefined DagsterInstance weakref").
    """
    with set_defs_state_storage(None):
        yield


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
    return tmp_path / "warehouse" / "warehouse.sqlite"


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME with the project's dagster.yaml, set for the test."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    project_yaml = files("vis_pipeline.dagster_defaults").joinpath("dagster.yaml")
    (home / "dagster.yaml").write_text(project_yaml.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the module's own (see ``PostgresServer``); skipped, with the
    reason, where no server binaries are installed."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (.ci/run installs Debian's postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run the server as")
    with PostgresServer(binaries) as server:
        yield server
