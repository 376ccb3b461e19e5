"""Two writers on one warehouse at once, as real processes, with readers querying meanwhile.

On a PostgreSQL catalog (a throwaway server the module starts), two ``vis-pipeline sync`` of
different days, started together, write at the same time: both must land, the warehouse must
equal the simulator's truth, and the readers must never see an error nor a day half loaded. On
the SQLite catalog the same two commands take turns through the writer lock: the one that has
to wait says so on its standard error, and both land. Skipped, with the reason, where no
PostgreSQL server is installed (the SQLite case always runs).

Where two writers' commits do conflict (DuckLake refuses a commit that writes to a table another
commit deleted from since it began), a day's load and a report build are tried again: shown here
deterministically on the PostgreSQL catalog, with another writer's commit slipped in just before
the first commit. (On a SQLite catalog an open write transaction keeps the catalog file locked,
so writers cannot even get that far: the writer lock queues them.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster_processes import PostgresServer, clean_environment
from helpers import assert_same_events, expected_events, warehouse_events

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation
from vis_pipeline.client import VISClient
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.reports import REPORTS, materialize_reports
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import sync_days

OPTIONS = SimulatorOptions(seed=31, start="2026-03-02", days=4, calls_per_day=800, users=6)
FIRST = date.fromisoformat(OPTIONS.start)
DAYS = [FIRST + timedelta(days=n) for n in range(OPTIONS.days)]
HALVES = ((DAYS[0], DAYS[1]), (DAYS[2], DAYS[3]))
"""The days each of the two writers syncs."""

CATALOG_DATABASE = "vis_warehouse"
STEP_SECONDS = 150
"""Longest a sync may take here (two cores shared with the readers and the simulator)."""

WAITING = "waiting for the warehouse: pid "
"""How the writer lock's wait message begins (``locking._say_waiting``)."""

READER = r"""
import json, sys, time
from pathlib import Path
from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation

location = WarehouseLocation.parse(sys.argv[1], sys.argv[2])
output, stop, reconnect = Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5] == "reconnect"
conn, opened = None, False
with output.open("w") as lines:
    while not stop.exists():
        try:
            if conn is None:
                conn = wh.connect(location, read_only=True)
            rows = conn.execute("select local_date, count(*) from vis.events group by 1")
            seen = {day.isoformat(): count for day, count in rows.fetchall()}
            opened = True
        except Exception as exc:
            # Before the first writer has created the warehouse there is nothing to read.
            seen = {"error" if opened else "before": f"{type(exc).__name__}: {exc}"}
            conn = None
        lines.write(json.dumps(seen) + "\n")
        lines.flush()
        if reconnect and conn is not None:
            conn.close()
            conn = None
        # Paced, to leave the writers most of the machine: a new connection alone costs about
        # half a second of CPU (extensions loaded, catalog attached).
        time.sleep(1.0 if reconnect else 0.05)
"""
"""A reader in a process of its own: one JSON line per query (the events per local day) in its
output file; DuckDB's own output (a progress bar on a slow query) goes to its stdout."""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(OPTIONS) as simulator:
        yield simulator


@dataclass
class Command:
    """A process started by the test, its output in files of the test's folder."""

    process: subprocess.Popen[str]
    out: Path
    err: Path

    def finish(self, timeout: float = STEP_SECONDS) -> tuple[int, str, str]:
        """Wait for the process; its exit code, standard output and standard error."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return code, self.out.read_text(), self.err.read_text()


def start(command: Sequence[str], env: Mapping[str, str], cwd: Path, name: str) -> Command:
    out, err = cwd / f"{name}.out", cwd / f"{name}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            list(command), env=dict(env), cwd=cwd, stdout=stdout, stderr=stderr, text=True
        )
    return Command(process, out, err)


def start_sync(env: Mapping[str, str], folder: Path, first: date, last: date) -> Command:
    """``vis-pipeline sync --from first --to last`` with a Dagster home of its own."""
    work = folder / f"sync-{first}"
    work.mkdir()
    command = [sys.executable, "-m", "vis_pipeline.cli", "sync"]
    command += ["--from", first.isoformat(), "--to", last.isoformat()]
    return start(command, {**env, "DAGSTER_HOME": str(work / "dagster_home")}, work, "sync")


def start_reader(env: Mapping[str, str], folder: Path, stop: Path, mode: str) -> Command:
    """A reader querying the warehouse until ``stop`` exists; ``mode`` is ``reconnect`` (a
    connection per query) or ``keep`` (one connection for every query)."""
    work = folder / f"reader-{mode}"
    work.mkdir()
    where = [env["VIS_WAREHOUSE"], env.get("VIS_WAREHOUSE_DATA", "")]
    command = [sys.executable, "-c", READER, *where, str(work / "readings"), str(stop), mode]
    return start(command, env, work, "reader")


@dataclass(frozen=True)
class Outcome:
    """What the two writers printed and the readers saw."""

    writers: list[tuple[int, str, str]]
    readings: list[dict[str, int]]
    errors: list[str]
    seconds: float


def sync_together(env: Mapping[str, str], folder: Path, readers: Sequence[str]) -> Outcome:
    """Both halves synced by two processes started together, ``readers`` querying meanwhile."""
    stop = folder / "stop-readers"
    began = time.monotonic()
    reading = [start_reader(env, folder, stop, mode) for mode in readers]
    writing = [start_sync(env, folder, first, last) for first, last in HALVES]
    try:
        writers = [command.finish() for command in writing]
        seconds = time.monotonic() - began
    finally:
        stop.touch()
        for command in reading:
            code, _, err = command.finish(60)
            assert code == 0, err
    files = [command.out.with_name("readings") for command in reading]
    observations = [json.loads(line) for file in files for line in file.read_text().splitlines()]
    return Outcome(
        writers=writers,
        readings=[o for o in observations if "error" not in o and "before" not in o],
        errors=[o["error"] for o in observations if "error" in o],
        seconds=seconds,
    )


def truth(sim: SimulatorProcess, days: Sequence[date] = DAYS) -> list[dict]:
    """The simulator's events of ``days`` (consecutive UTC days)."""
    start_ms = int(datetime.combine(days[0], datetime.min.time(), UTC).timestamp() * 1000)
    end_ms = start_ms + len(days) * 86_400_000
    return sim.control.truth(start_ms, end_ms)


def assert_both_landed(
    outcome: Outcome, sim: SimulatorProcess, location: WarehouseLocation
) -> None:
    """Both exit 0; the warehouse equals the truth; every reading showed whole days only."""
    for code, out, err in outcome.writers:
        assert code == 0, out + err
        assert "Traceback" not in err, err
    events = warehouse_events(location)
    assert_same_events(events, expected_events(truth(sim), "UTC"))
    final = events.groupby("local_date").size()
    assert sorted(final.index) == DAYS
    assert not outcome.errors, outcome.errors[:3]
    assert outcome.readings, "no reader read anything"
    for reading in outcome.readings:
        seen = {date.fromisoformat(day): count for day, count in reading.items()}
        half_loaded = {day: n for day, n in seen.items() if n != final.get(day, 0)}
        assert not half_loaded, f"a reader saw {half_loaded} (final: {final.to_dict()})"


def assert_reports_as_recomputed(
    location: WarehouseLocation | Path, days: Sequence[date] = DAYS
) -> None:
    """Each report table holds what one computation over ``days`` gives (no day twice)."""
    with wh.connect(location) as conn:
        stored = {name: _rows(conn, name) for name in REPORTS}
        materialize_reports(conn, days[0], days[-1], "UTC")
        for name in REPORTS:
            again = _rows(conn, name)
            assert len(stored[name]) == len(again), name
            for old, new in zip(stored[name], again, strict=True):
                assert all(map(_same, old, new)), f"{name}: stored {old}, computed {new}"


def _same(stored: object, computed: object) -> bool:
    # A mean rounded to 3 decimals may differ in its last digit between two computations: the
    # order in which DuckDB's threads add floating-point values is not fixed.
    if isinstance(stored, float) and isinstance(computed, float):
        return abs(stored - computed) <= 0.0011
    return stored == computed


def _rows(conn: object, name: str) -> list[tuple]:
    columns = [c for c in REPORTS[name].columns if c not in {"as_of", "waited_hours"}]
    sql = f"SELECT {', '.join(columns)} FROM reports.{name} ORDER BY ALL"
    return conn.execute(sql).fetchall()  # type: ignore[attr-defined]


def writer_environment(sim: SimulatorProcess, **warehouse: str) -> dict[str, str]:
    return clean_environment(
        VIS_BASE_URL=sim.base_url,
        VIS_ACCESS_TOKEN=sim.token,
        VIS_START_DATE=FIRST.isoformat(),
        **warehouse,
    )


@pytest.fixture
def catalog(postgres: PostgresServer) -> Iterator[str]:
    """A new, empty database for the warehouse's catalog; dropped afterwards."""
    admin = postgres.connect("postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{CATALOG_DATABASE}"')
            cursor.execute(f'CREATE DATABASE "{CATALOG_DATABASE}"')
        yield (
            f"ducklake:postgres:dbname={CATALOG_DATABASE} host=127.0.0.1 "
            f"port={postgres.port} user={postgres.USER}"
        )
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{CATALOG_DATABASE}" WITH (FORCE)')
    finally:
        admin.close()


def test_two_syncs_of_other_days_write_a_postgres_catalog_at_once(
    sim: SimulatorProcess,
    postgres: PostgresServer,
    catalog: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "lake-data"
    # The password goes through libpq's own variable, never into the catalog's value.
    monkeypatch.setenv("PGPASSWORD", postgres.PASSWORD)
    env = writer_environment(
        sim, VIS_WAREHOUSE=catalog, VIS_WAREHOUSE_DATA=str(data), PGPASSWORD=postgres.PASSWORD
    )
    location = WarehouseLocation.parse(catalog, str(data))
    # The lake is created first so that the readers, started with the writers, have a lake to
    # read from their first query (a reader does not create one).
    wh.connect(location).close()
    outcome = sync_together(env, tmp_path, readers=["reconnect", "keep"])
    assert_both_landed(outcome, sim, location)
    for _, _, err in outcome.writers:
        assert postgres.PASSWORD not in err
        assert WAITING not in err, "a writer waited for the other: no lock on PostgreSQL"
    assert_reports_as_recomputed(location)
    print(f"postgres: two syncs at once in {outcome.seconds:.1f} s, {len(outcome.readings)} reads")


def test_two_syncs_of_other_days_take_turns_on_a_sqlite_catalog(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    catalog = tmp_path / "warehouse" / "warehouse.sqlite"
    env = writer_environment(sim, VIS_WAREHOUSE=str(catalog))
    outcome = sync_together(env, tmp_path, readers=["reconnect"])
    location = WarehouseLocation.parse(catalog)
    assert_both_landed(outcome, sim, location)
    # Whichever started second waited for the other, and said so in a clear line.
    waits = [line for _, _, err in outcome.writers for line in err.splitlines()]
    assert any(line.startswith(WAITING) for line in waits), waits
    assert all(line.startswith(WAITING) and " is writing to it " in line for line in waits), waits
    assert_reports_as_recomputed(location)
    print(f"sqlite: two syncs at once in {outcome.seconds:.1f} s, {len(outcome.readings)} reads")


# ----------------------------------------------------------------------------------------------
# Conflicting commits, one at a time


class CommitAfterAnother:
    """A warehouse connection whose first commit comes right after ``other`` has committed
    through a connection of its own: as when a second writer finishes first. Every commit
    DuckLake refuses is kept in ``refused``."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, other: Callable[[], object]) -> None:
        self._conn = conn
        self._other: Callable[[], object] | None = other
        self.refused: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    def commit(self) -> object:
        if self._other is not None:
            other, self._other = self._other, None
            other()
        try:
            return self._conn.commit()
        except duckdb.TransactionException as exc:
            self.refused.append(str(exc))
            raise


def sync(sim: SimulatorProcess, open_warehouse: Callable, days: Sequence[date]) -> None:
    """Fetch ``days`` again whatever the warehouse holds (``--full``), through the library."""
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        sync_days(extractor, open_warehouse, days, "UTC", full=True)


@pytest.fixture
def lake(catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WarehouseLocation:
    """A new warehouse on the PostgreSQL catalog, opened by this process."""
    monkeypatch.setenv("PGPASSWORD", PostgresServer.PASSWORD)
    return WarehouseLocation.parse(catalog, str(tmp_path / "lake-data"))


def writer(location: WarehouseLocation) -> Callable[[], AbstractContextManager]:
    """Opens a connection for writing each time it is called (``sync_days``' argument)."""
    return lambda: wh.connect(location)


def test_a_day_whose_load_conflicts_with_another_writer_is_loaded_again(
    sim: SimulatorProcess, lake: WarehouseLocation
) -> None:
    first, second = DAYS[0], DAYS[1]
    sync(sim, writer(lake), [first, second])

    # While the first day is re-synced, the second day's re-sync replaces its rows of the same
    # tables and commits first: DuckLake refuses the first day's commit (it writes to tables
    # another commit deleted from since it began), and the load runs again.
    slipped: list[CommitAfterAnother] = []

    @contextmanager
    def open_warehouse() -> Iterator[CommitAfterAnother]:
        with wh.connect(lake) as conn:
            slipped.append(CommitAfterAnother(conn, lambda: sync(sim, writer(lake), [second])))
            yield slipped[-1]

    sync(sim, open_warehouse, [first])
    [refused] = slipped[0].refused
    assert "Transaction conflict" in refused
    expected = expected_events(truth(sim, [first, second]), "UTC")
    assert_same_events(warehouse_events(lake), expected)
    with wh.connect(lake, read_only=True) as conn:
        loads = conn.execute(
            "SELECT local_date, count(*) FROM vis.sync_windows WHERE status = 'loaded' "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert loads == [(first, 2), (second, 2)]


def test_reports_whose_commit_conflicts_with_another_writer_are_built_again(
    sim: SimulatorProcess, lake: WarehouseLocation
) -> None:
    first, second = DAYS[0], DAYS[1]
    sync(sim, writer(lake), [first, second])
    with wh.connect(lake) as conn:
        materialize_reports(conn, first, second, "UTC")

    # Both replace rows of the same report tables (kept inside the catalog: a few rows a day).
    def other_writer() -> None:
        with wh.connect(lake) as other:
            materialize_reports(other, second, second, "UTC")

    with wh.connect(lake) as conn:
        slipped = CommitAfterAnother(conn, other_writer)
        materialize_reports(slipped, first, first, "UTC")  # type: ignore[arg-type]
    [refused] = slipped.refused
    assert "Transaction conflict" in refused
    assert_reports_as_recomputed(lake, [first, second])


def test_writers_meeting_an_empty_postgres_catalog_at_once_all_open_it(
    lake: WarehouseLocation,
) -> None:
    # Each writer races the others to create DuckLake's tables and the project's schema; the
    # losers attach again and find them made.
    start = threading.Barrier(4)

    def open_it(_: int) -> list[str]:
        start.wait()
        with wh.connect(lake) as conn:
            rows = conn.execute("SELECT fingerprint FROM vis.schema_version").fetchall()
            return [row[0] for row in rows]

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(open_it, range(4)))
    assert all(versions == [wh.schema_fingerprint()] for versions in seen), seen
