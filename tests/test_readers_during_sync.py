"""Readers during a sync: each one sees every day wholly before or wholly after its load, and
the sync goes on whatever they do.

Every party is a real process: ``vis-pipeline sync`` (one Dagster run), a reader holding one
read-only connection (``tests/warehouse_reader.py``), ``vis-pipeline status`` and ``export``.
The simulator answers each request a little late, so a sync of ten days lasts long enough to be
watched day by day; what each reader saw is checked against the simulator's truth.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from helpers import assert_same_events, expected_events, warehouse_events
from warehouse_reader import Observation, ReaderProcess, read_once

from vis_pipeline import warehouse as wh
from vis_pipeline.errors import WarehouseError
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import local_day_window

DAYS = SimulatorOptions(seed=17, start="2026-03-02", days=10, calls_per_day=1500, users=6)
FIRST = date.fromisoformat(DAYS.start)
LAST = FIRST + timedelta(days=DAYS.days - 1)

SLOW_SECONDS = 0.3
"""How late the simulator answers every request: a day then takes about a second to fetch, so
the sync's days land one by one while the readers watch."""

STEP_SECONDS = 120
"""Longest any one command of these tests may take."""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(DAYS) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def final_counts(sim: SimulatorProcess) -> dict[date, int]:
    """Events per local day once synced: the truth's."""
    start, _ = local_day_window(FIRST, "UTC")
    _, end = local_day_window(LAST, "UTC")
    truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return dict(Counter(expected_events(truth, "UTC")["local_date"]))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty working folder: its warehouse and Dagster home are the defaults inside it."""
    work = tmp_path / "work"
    work.mkdir()
    return work


def _catalog(folder: Path) -> Path:
    return folder / "data" / "warehouse.sqlite"


def _env(folder: Path, sim: SimulatorProcess) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VIS_", "DAGSTER_"))}
    return base | {
        "VIS_START_DATE": "2026-01-01",
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "VIS_BASE_URL": sim.base_url,
        "VIS_ACCESS_TOKEN": sim.token,
    }


def _range(first: date, last: date) -> list[str]:
    return ["--from", first.isoformat(), "--to", last.isoformat()]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def _start(*args: str, folder: Path, sim: SimulatorProcess) -> subprocess.Popen[str]:
    """The command in a session of its own, so that whatever it starts can be stopped with it."""
    return subprocess.Popen(
        [sys.executable, "-m", "vis_pipeline.cli", *args],
        env=_env(folder, sim),
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(child: subprocess.Popen[str]) -> Ran:
    out, err = child.communicate(timeout=STEP_SECONDS)
    return Ran(child.returncode, out, err)


def run(*args: str, folder: Path, sim: SimulatorProcess) -> Ran:
    return _finish(_start(*args, folder=folder, sim=sim))


@contextmanager
def _slow_api(sim: SimulatorProcess, seconds: float = SLOW_SECONDS) -> Iterator[None]:
    sim.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=seconds)
    try:
        yield
    finally:
        sim.control.reset_behaviour()


@contextmanager
def _syncing(
    first: date, last: date, folder: Path, sim: SimulatorProcess
) -> Iterator[subprocess.Popen[str]]:
    """A sync of ``first``..``last`` under way; stopped with everything it started if the test
    leaves before it ends."""
    child = _start("sync", *_range(first, last), folder=folder, sim=sim)
    try:
        yield child
    finally:
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _synced_days(catalog: Path) -> int | None:
    """Days the warehouse holds a sync row for (None while it cannot be opened yet)."""
    try:
        with wh.connect(catalog, read_only=True) as conn:
            return conn.execute(
                "SELECT count(DISTINCT local_date) FROM vis.sync_windows"
            ).fetchone()[0]
    except (WarehouseError, duckdb.Error):  # not created yet, or its schema not committed yet
        return None


def _wait_for_days(catalog: Path, child: subprocess.Popen[str], at_least: int) -> int:
    """Wait until ``at_least`` days have landed while ``child`` still runs; how many have."""
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        landed = _synced_days(catalog)
        if landed is not None and landed >= at_least:
            return landed
        assert child.poll() is None, f"the sync ended first: {_finish(child)}"
        time.sleep(0.1)
    raise AssertionError(f"{at_least} days did not land within {STEP_SECONDS} s")


def _assert_exact(folder: Path, sim: SimulatorProcess) -> None:
    start, _ = local_day_window(FIRST, "UTC")
    _, end = local_day_window(LAST, "UTC")
    truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    assert_same_events(warehouse_events(_catalog(folder)), expected_events(truth, "UTC"))


def _assert_whole_days(seen: Observation, final_counts: dict[date, int]) -> None:
    """Every day of one snapshot is absent or whole, in each table, and the tables agree."""
    for day, (events, raw, syncs) in seen.days.items():
        assert events in (0, final_counts[day]), f"{day}: {events} of {final_counts[day]}"
        assert raw == events, f"{day}: raw.events {raw}, vis.events {events}"
        assert syncs == (1 if events else 0), f"{day}: {syncs} sync rows, {events} events"


def _sync_beside_a_reader(
    sim: SimulatorProcess, folder: Path, hold_seconds: float = 0.0
) -> list[Observation]:
    """What a reader process saw while the range was synced (slowly) beside it: the sync
    succeeded and is exact, and the reader met no error."""
    catalog = _catalog(folder)
    wh.connect(catalog).close()  # an empty warehouse, so the reader can open it first
    held = ReaderProcess(catalog, folder / "reader", hold_seconds=hold_seconds)
    with held as reader, _slow_api(sim):
        with _syncing(FIRST, LAST, folder, sim) as sync:
            synced = _finish(sync)
        seen = reader.stop()
    assert synced.code == 0, synced.err
    _assert_exact(folder, sim)
    assert [s.error for s in seen if s.error] == []
    return seen


# ----------------------------------------------------------------------------------------------


def test_a_reader_sees_each_day_before_or_after_its_load_and_the_sync_goes_on(
    sim: SimulatorProcess, folder: Path, final_counts: dict[date, int]
) -> None:
    seen = _sync_beside_a_reader(sim, folder)
    for observation in seen:
        _assert_whole_days(observation, final_counts)
    landed = [len(s.landed()) for s in seen]
    # The one connection saw the sync go by: nothing, some days, then every day.
    assert landed[0] == 0 and landed[-1] == DAYS.days, landed
    assert any(0 < n < DAYS.days for n in landed), f"no state between the first and last: {landed}"
    assert landed == sorted(landed), f"a later read saw fewer days: {landed}"


def test_a_reader_in_a_long_transaction_keeps_its_snapshot_and_the_sync_goes_on(
    sim: SimulatorProcess, folder: Path, final_counts: dict[date, int]
) -> None:
    """A transaction held open for the whole sync (a person between two queries, a long
    report): the sync commits every day meanwhile, and the transaction sees none of them."""
    seen = _sync_beside_a_reader(sim, folder, hold_seconds=STEP_SECONDS)
    assert seen[0].days == {}, "the held transaction saw a day committed after it began"
    assert len(seen[-1].landed()) == DAYS.days
    for observation in seen:
        _assert_whole_days(observation, final_counts)


def _status_figures(out: str) -> dict[str, str]:
    """``vis-pipeline status`` lines as {key: value}."""
    return dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in out.splitlines())
        if value
    )


def _count(counts_text: str, name: str) -> int:
    match = re.search(rf"(?:^|, ){name} ([\d,]+)", counts_text)
    assert match, f"no {name!r} in {counts_text!r}"
    return int(match.group(1).replace(",", ""))


def test_status_and_export_during_a_sync_read_the_last_committed_state(
    sim: SimulatorProcess, folder: Path, final_counts: dict[date, int]
) -> None:
    assert run("sync", *_range(FIRST, FIRST), folder=folder, sim=sim).code == 0
    export = ["export", "daily_call_volume", *_range(FIRST, FIRST), "--format", "csv"]
    during, after = folder / "during.csv", folder / "after.csv"
    with (
        _slow_api(sim, 2 * SLOW_SECONDS),
        _syncing(FIRST + timedelta(days=1), LAST, folder, sim) as sync,
    ):
        _wait_for_days(_catalog(folder), sync, at_least=2)
        started = [
            _start("status", folder=folder, sim=sim),
            _start(*export, "--output", str(during), folder=folder, sim=sim),
        ]
        status, exported = (_finish(child) for child in started)
        assert sync.poll() is None, "the sync ended before status and export did: nothing shown"
        synced = _finish(sync)
    assert synced.code == 0, synced.err
    # Status may say the days under way are not whole yet (their reports come at the run's
    # end), but it reads the warehouse: a summary, no failure to read it.
    assert status.code in (0, 1), status.err
    for unwanted in ("Traceback", "cannot be read", "lock", "being written"):
        assert unwanted not in status.err, status.err
    figures = _status_figures(status.out)
    days = int(figures["days synced"])
    assert 2 <= days < DAYS.days, status.out
    # One snapshot: the days it says are synced are the days whose rows it counts.
    counts = figures["counts"]
    whole = sum(final_counts[FIRST + timedelta(days=n)] for n in range(days))
    assert _count(counts, "events") == _count(counts, "raw events") == whole, status.out
    assert _count(counts, "window syncs") == days, status.out
    # The export of a day committed before the sync is the same file after it.
    assert exported.code == 0, exported.err
    assert run(*export, "--output", str(after), folder=folder, sim=sim).code == 0
    assert during.read_bytes() == after.read_bytes()
    assert during.read_text(encoding="utf-8").startswith("local_date")


def test_a_sync_killed_mid_way_leaves_whole_days_and_a_sync_again_makes_it_exact(
    sim: SimulatorProcess, folder: Path, final_counts: dict[date, int]
) -> None:
    catalog = _catalog(folder)
    with _slow_api(sim), _syncing(FIRST, LAST, folder, sim) as sync:
        _wait_for_days(catalog, sync, at_least=2)
        sync.send_signal(signal.SIGKILL)  # the sync's own process, as the OOM killer would
        assert sync.wait(timeout=STEP_SECONDS) == -signal.SIGKILL
    left = read_once(catalog)
    assert 2 <= len(left.landed()) < DAYS.days, left.days
    _assert_whole_days(left, final_counts)
    again = run("sync", *_range(FIRST, LAST), folder=folder, sim=sim)
    assert again.code == 0, again.err
    _assert_exact(folder, sim)
