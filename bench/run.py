"""The benchmark: vis-pipeline against the wire's floor and dlt, on the project's simulator.

For each size (calls per day over some days, see ``bench/sizes.py``) it starts the simulator in
its own process, runs every contender in a fresh process of its own, and measures it alone:
wall time, CPU time and peak RSS of that process, the requests the simulator answered for it,
and whether what it loaded is exactly the simulator's truth. The dense day runs the floor and
the library path under unstable ties, with ``sort=id`` accepted and refused, to show what
repairs cost. It prints a table, checks the targets (it reports them, it does not fail on them)
and writes everything to a JSON file.

    python bench/run.py [--sizes 1000,10000,10000x365,year,dense] [--days 30]
                        [--out bench/results/latest.json] [--skip-dlt] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_helpers import (
    REPO_ROOT,
    STDERR_TAIL_CHARS,
    TOKEN_ENV,
    ChildRun,
    Fingerprint,
    TableSpec,
    run_child,
    table_fingerprint,
    truth_fingerprint,
)
from bench.sizes import YEAR_CALLS_PER_DAY, YEAR_DAYS, Size, parse_sizes

if TYPE_CHECKING:
    import numpy as np

    from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

BENCH_TOKEN = "bench-token"
"""Token of the benchmark's own loopback simulator (it guards nothing else)."""

SETTLE_HOURS = 12
"""The simulated clock stands this long after the range ends: every call is over and visible."""

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "latest.json"
"""Where the results go unless ``--out`` says otherwise."""

TIMEOUTS = {
    "floor": 180.0,
    "library": 300.0,
    "dagster": 420.0,
    "dlt": 600.0,
    "reports": 180.0,
}
"""Seconds each kind of contender may run on up to ``TIMEOUT_EVENTS`` events before it is stopped
(and reported as timed out)."""

TIMEOUT_EVENTS = 250_000
"""Events the timeouts are set for; larger data sets get proportionally more time."""

SIMULATOR_START_SECONDS = 60.0
"""How long the simulator may take to generate its data and listen, plus
``SIMULATOR_START_SECONDS_PER_MILLION`` for each million events it may hold."""

SIMULATOR_START_SECONDS_PER_MILLION = 60.0
"""The simulator generates about 60,000 events a second on a loaded core: a year needs more than
the simulator's own default start-up timeout."""

DLT_MAX_EVENTS = 1_000_000
"""Above this many events dlt is left out: it took 129 s for 240,000 events (30 days x 10,000)
and at least grows with the events, so the year would take 30 minutes or more."""

ISSUE_MONTH = Size(YEAR_CALLS_PER_DAY, 30)
"""The dense account's month: 30 days x 10,000 calls a day."""

ISSUE_YEAR = Size(YEAR_CALLS_PER_DAY, YEAR_DAYS)
"""The dense account's year: 365 days x 10,000 calls a day."""

DENSE_LIBRARY_ROWS = {
    "library sort=id": False,
    "library sort=id refused": True,
}
"""The library path's rows on the dense day, by the simulator's ``start_time_sort_only``."""

PROJECT_TABLE = TableSpec("vis.events", "event_id", "state", "start_time", "duration_ms", lake=True)
"""Where vis-pipeline keeps its events (a DuckLake whose SQLite catalog is the path given)."""

DLT_TABLE = TableSpec("vis_dlt.events", "id", "state", "start_time", "duration")
"""Where the dlt contender's events land (dlt turns camelCase into snake_case)."""

PAGE_SIZE = 100
"""Events per page asked of the API, as the project's client asks by default."""

CONCURRENCY = 8
"""Requests in flight at once, as the project's client does by default."""

PROFILE_RATE_HZ = 200
"""py-spy sampling rate when profiling."""

PROFILE_TOP = 15
"""How many functions of each profile are reported."""

PROFILE_MODES = {
    "wall": "main thread, running or waiting (shares of wall time)",
    "cpu": "thread holding the GIL, any thread (shares of Python CPU time)",
}
"""The two py-spy passes of ``--profile`` and what their percentages are shares of."""

MAIN_THREAD_FRAME = "_run_module_as_main ("
"""Every sample of a contender's main thread has this frame at its root."""

IMPORT_FRAME = "_find_and_load ("
"""A frame of the import machinery: its samples are time spent importing."""

PLUMBING_FRAMES = ("<frozen ", "(threading.py)", "(futures/thread.py)", "<module> (", "main (")
"""Frames every sample runs through, whose inclusive share says nothing."""

EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")
"""A traceback's last line: the exception's qualified name, then its message."""

ENV_PREFIXES_DROPPED = ("VIS_", "DAGSTER_HOME")
"""Settings of the caller's shell that must not leak into a contender."""


@dataclass
class Row:
    """One contender at one size: the table's row."""

    contender: str
    size: str
    calls_per_day: int
    days: int
    events: int
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    requests: int | None = None
    vs_floor: float | None = None
    vs_dlt: float | None = None
    exact: bool | None = None
    repair_requests: int | None = None
    load_1m: float | None = None
    """The machine's 1-minute load average as the contender started (it still counts the
    contenders just before)."""
    other_cores: float | None = None
    """Cores busy with anything but the contender and the simulator while it ran, on average:
    other work on the machine (and the measuring around it, a few hundredths)."""
    notes: str = ""
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    requests_by_operation: dict[str, int] = field(default_factory=dict)


@dataclass
class Truth:
    """What the simulator holds for the benchmark's range."""

    fingerprint: Fingerprint
    ids: np.ndarray
    """The distinct ids, sorted."""


@dataclass
class SizeRun:
    """Everything one size's contenders share: the simulator, the range, a scratch folder."""

    sim: SimulatorProcess
    size: Size
    first: date
    last: date
    tz: str
    work: Path
    truth: Truth
    base_env: dict[str, str]
    rows: list[Row] = field(default_factory=list)

    def python(self, module: str, *args: str) -> list[str]:
        """Command line running a contender module in a fresh interpreter."""
        return [sys.executable, "-m", f"bench.contenders.{module}", *args]

    def range_args(self) -> list[str]:
        """--first/--last of the benchmark's range."""
        return ["--first", self.first.isoformat(), "--last", self.last.isoformat()]

    def timeout(self, kind: str) -> float:
        """Seconds a contender of ``kind`` may run on this size's events."""
        return TIMEOUTS[kind] * max(1.0, self.truth.fingerprint.count / TIMEOUT_EVENTS)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="1000,10000",
        help="comma-separated: CALLS (a day, over --days days), CALLSxDAYS, year (10000x365), "
        "dense (the dense day)",
    )
    parser.add_argument("--days", type=int, default=30, help="days of a CALLS size")
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the project's contenders at the largest CALLS size",
    )
    args = parser.parse_args(argv)
    try:
        args.sizes = parse_sizes(args.sizes, args.days, PAGE_SIZE)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def usual_sizes(sizes: list[Size], days: int) -> list[Size]:
    """The sizes of the usual table (``--days`` days, no dense instants), by calls a day."""
    return [size for size in sizes if size.days == days and not size.dense]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    usual = usual_sizes(args.sizes, args.days)
    rows: list[Row] = []
    profiles: dict[str, Any] = {}
    data_sets: dict[str, Any] = {}
    for size in args.sizes:
        profile = args.profile and bool(usual) and size == usual[-1]
        size_rows, size_profiles, data_sets[size.label] = bench_size(args, size, profile=profile)
        rows.extend(size_rows)
        profiles.update(size_profiles)
    add_ratios(rows)
    targets = evaluate_targets(rows, usual)
    dense = dense_summary(rows)
    print(format_table(rows))
    print()
    print(format_data_sets(data_sets))
    print()
    print(format_targets(targets))
    if dense:
        print()
        print(format_dense(dense))
    for name, profile in profiles.items():
        print(f"\n{name}: where the time goes (py-spy samples)")
        print(profile["text"])
    report = {
        "meta": machine_meta(args, data_sets, load_before, time.perf_counter() - started),
        "rows": [asdict(row) for row in rows],
        "targets": targets,
        "dense": dense,
        "profiles": profiles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nresults written to {display_path(args.out)}")
    return 0


def bench_size(
    args: argparse.Namespace, size: Size, *, profile: bool
) -> tuple[list[Row], dict[str, Any], dict[str, Any]]:
    """Every contender at one size, against one simulator started for it; also what the
    simulator held and how long it took to start."""
    first = size.first_day(datetime.now(UTC).date())
    options = simulator_options(args, size, first)
    print(f"== {size.describe()}: starting the simulator", file=sys.stderr)
    with (
        started_simulator(options, size) as (sim, start_s),
        tempfile.TemporaryDirectory(prefix="vis-bench-") as work,
    ):
        print(f"   simulator listening after {start_s:.1f} s", file=sys.stderr)
        truth = read_truth(sim, options)
        print(f"   truth: {truth.fingerprint.count} events", file=sys.stderr)
        run = SizeRun(
            sim=sim,
            size=size,
            first=first,
            last=first + timedelta(days=size.days - 1),
            tz=args.tz,
            work=Path(work),
            truth=truth,
            base_env=contender_env(),
        )
        if size.dense:
            run_dense_day(run)
        else:
            run_usual(run, skip_dlt=args.skip_dlt)
        profiles = profile_project(run) if profile else {}
    data_set = {
        "description": size.describe(),
        "first_day": first.isoformat(),
        "events": truth.fingerprint.count,
        "simulator_start_s": round(start_s, 1),
    }
    return run.rows, profiles, data_set


def simulator_options(args: argparse.Namespace, size: Size, first: date) -> SimulatorOptions:
    """The simulator's data set for ``size``, its clock 12 hours past the range."""
    from vis_pipeline.records import format_instant_ms
    from vis_pipeline.simulator.process import SimulatorOptions

    options = SimulatorOptions(
        seed=args.seed,
        start=first.isoformat(),
        days=size.days,
        calls_per_day=size.calls_per_day,
        tz=args.tz,
        token=BENCH_TOKEN,
        now=None,
        dense_instants_per_day=size.dense_instants,
        dense_instant_size=size.dense_instant_size,
    )
    _, range_end = options.range_ms()
    return replace(options, now=format_instant_ms(range_end + SETTLE_HOURS * 3_600_000))


@contextmanager
def started_simulator(
    options: SimulatorOptions, size: Size
) -> Iterator[tuple[SimulatorProcess, float]]:
    """The simulator, listening, and the seconds it took to generate its data and listen.

    It is given time by the events it may hold: a year takes about a minute to generate.
    """
    from vis_pipeline.simulator.process import SimulatorProcess

    sim = SimulatorProcess(options)
    timeout = SIMULATOR_START_SECONDS + (
        SIMULATOR_START_SECONDS_PER_MILLION * size.upper_events() / 1e6
    )
    began = time.perf_counter()
    sim.start(timeout=timeout)
    try:
        yield sim, time.perf_counter() - began
    finally:
        sim.stop()


def read_truth(sim: SimulatorProcess, options: SimulatorOptions) -> Truth:
    """The simulator's truth over the range, asked for day by day (a year in one answer would
    be over a gigabyte of JSON), as a fingerprint and the sorted ids."""
    days = (
        sim.control.truth(options.day_start_ms(day), options.day_start_ms(day + 1))
        for day in range(options.days)
    )
    fingerprint, ids = truth_fingerprint(record for records in days for record in records)
    return Truth(fingerprint, ids)


def run_usual(run: SizeRun, *, skip_dlt: bool) -> None:
    """The usual contenders: floor, library, Dagster, dlt (unless too big) and reports."""
    run_floor(run)
    run_library(run)
    run_library_with_busy_reader(run)
    run_dagster(run)
    if run.truth.fingerprint.count > DLT_MAX_EVENTS:
        skip(run, "dlt", f"skipped: over {DLT_MAX_EVENTS:,} events it would take 30+ minutes")
    elif not skip_dlt:
        run_dlt(run)
    run_reports(run)


def run_dense_day(run: SizeRun) -> None:
    """The dense day under unstable ties: the floor, then the library path with ``sort=id``
    accepted and refused (each on a fresh warehouse file)."""
    run.sim.control.set_behaviour(unstable_ties=True, start_time_sort_only=False)
    run_floor(run)
    for name, refused in DENSE_LIBRARY_ROWS.items():
        run.sim.control.set_behaviour(start_time_sort_only=refused)
        run_library(run, name=name, rerun=False)


def skip(run: SizeRun, name: str, why: str) -> None:
    """A row for a contender that was not run, saying why."""
    print(f"   {name}: {why}", file=sys.stderr)
    run.rows.append(new_row(run, name, notes=why))


def new_row(run: SizeRun, name: str, **values: Any) -> Row:
    """A row of this size."""
    return Row(
        contender=name,
        size=run.size.label,
        calls_per_day=run.size.calls_per_day,
        days=run.size.days,
        events=run.truth.fingerprint.count,
        **values,
    )


def contender_env(**extra: str) -> dict[str, str]:
    """The caller's environment without its VIS settings, plus the benchmark's token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES_DROPPED)}
    return {**env, TOKEN_ENV: BENCH_TOKEN, **extra}


def measure(
    run: SizeRun,
    name: str,
    argv: list[str],
    *,
    kind: str,
    env: dict[str, str] | None = None,
    verify: Callable[[ChildRun], tuple[bool | None, str]] | None = None,
    notes: Callable[[dict[str, Any]], str] = lambda result: "",
) -> Row:
    """Run one contender in its own process, with the simulator's request count around it."""
    print(f"   {name} ...", file=sys.stderr, flush=True)
    run.sim.control.reset_stats()
    load = os.getloadavg()[0]
    before = busy_snapshot(run.sim.pid)
    child = run_child(argv, env=env or run.base_env, timeout=run.timeout(kind))
    stats = run.sim.control.stats()
    row = new_row(
        run,
        name,
        wall_s=round(child.wall_s, 3),
        cpu_s=round(child.cpu_s, 3),
        peak_rss_mb=round(child.peak_rss_mb, 1),
        requests=int(stats.get("total", 0)),
        repair_requests=child.result.get("repair_requests"),
        load_1m=round(load, 2),
        other_cores=other_cores(before, run.sim.pid, child),
        result=child.result,
        requests_by_operation=requests_by_operation(stats),
    )
    if not child.ok:
        reason = "timed out" if child.timed_out else f"exit {child.returncode}"
        row.error = f"{reason}: {last_line(child.stderr_tail)}"
        row.result["stderr_tail"] = child.stderr_tail
    elif verify is not None:
        row.exact, detail = verify(child)
        row.notes = "; ".join(part for part in (notes(child.result), detail) if part)
    else:
        row.notes = notes(child.result)
    print(f"   {name}: {row.wall_s:.2f} s{' ERROR' if row.error else ''}", file=sys.stderr)
    run.rows.append(row)
    return row


BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")
"""The fields of the machine's CPU times that count as busy (guest time is inside user)."""


def busy_snapshot(sim_pid: int | None) -> tuple[float, float]:
    """CPU seconds the machine's cores and the simulator have been busy so far."""
    import psutil

    times = psutil.cpu_times()
    machine = sum(getattr(times, name, 0.0) for name in BUSY_FIELDS)
    try:
        simulator = sum(psutil.Process(sim_pid).cpu_times()[:2])
    except (psutil.Error, ValueError):
        simulator = 0.0
    return machine, simulator


def other_cores(before: tuple[float, float], sim_pid: int | None, child: ChildRun) -> float | None:
    """Cores busy with anything but the contender and the simulator while it ran, on average."""
    if not child.wall_s:
        return None
    machine, simulator = busy_snapshot(sim_pid)
    elsewhere = (machine - before[0]) - (simulator - before[1]) - child.cpu_s
    return round(max(0.0, elsewhere) / child.wall_s, 2)


def last_line(text: str) -> str:
    """The line of a child's stderr that names its exception (else its last line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if EXCEPTION_LINE.match(line):
            return line
    return lines[-1] if lines else "(no output)"


def requests_by_operation(stats: dict[str, Any]) -> dict[str, int]:
    """Requests per operation id, whatever status they got."""
    per_op = stats.get("requests", {})
    return {op: sum(int(n) for n in by_status.values()) for op, by_status in per_op.items()}


def verify_table(
    run: SizeRun, path: Path, spec: TableSpec
) -> Callable[[ChildRun], tuple[bool | None, str]]:
    """A check that the events table in ``path`` holds exactly the truth."""

    def check(child: ChildRun) -> tuple[bool, str]:
        try:
            fingerprint, ids = table_fingerprint(path, spec)
        except Exception as exc:  # a missing table or file is a failed check, not a crash
            return False, f"unreadable: {type(exc).__name__}: {exc}"
        return compare(run.truth, fingerprint, ids)

    return check


def compare(truth: Truth, fingerprint: Fingerprint, ids: np.ndarray) -> tuple[bool, str]:
    """Whether a loaded table is exactly the truth, and what differs when it is not (``ids``:
    the table's distinct ids, sorted)."""
    import numpy as np

    if fingerprint == truth.fingerprint and np.array_equal(ids, truth.ids):
        return True, ""
    diffs = [
        f"{key} {value} != {getattr(truth.fingerprint, key)}"
        for key, value in fingerprint.as_dict().items()
        if value != getattr(truth.fingerprint, key)
    ]
    missing = len(np.setdiff1d(truth.ids, ids, assume_unique=True))
    extra = len(np.setdiff1d(ids, truth.ids, assume_unique=True))
    return False, f"missing {missing}, extra {extra}; " + ", ".join(diffs)


def run_floor(run: SizeRun) -> None:
    days = str(run.size.days)
    argv = run.python(
        "floor",
        "--base-url",
        run.sim.base_url,
        "--first",
        run.first.isoformat(),
        "--days",
        days,
        "--tz",
        run.tz,
        "--page-size",
        str(PAGE_SIZE),
        "--concurrency",
        str(CONCURRENCY),
    )

    def verify(child: ChildRun) -> tuple[bool, str]:
        truth = run.truth.fingerprint
        got = (child.result.get("distinct_ids"), child.result.get("id_sum"))
        exact = got == (truth.count, truth.id_sum)
        return exact, "" if exact else f"distinct ids {got[0]} != {truth.count}"

    measure(
        run, "floor", argv, kind="floor", verify=verify, notes=lambda r: f"{r.get('pages')} pages"
    )


def library_argv(run: SizeRun, path: Path) -> list[str]:
    """The library contender's command: the size's range into the warehouse at ``path``."""
    return run.python(
        "direct",
        "--base-url",
        run.sim.base_url,
        "--warehouse",
        str(path),
        "--tz",
        run.tz,
        *run.range_args(),
    )


def run_library(run: SizeRun, name: str = "library", *, rerun: bool = True) -> None:
    """The library path on a fresh warehouse file (``name`` its folder), then its re-run."""
    path = run.work / name.replace(" ", "-") / "warehouse.sqlite"
    argv = library_argv(run, path)
    verify = verify_table(run, path, PROJECT_TABLE)
    measure(run, name, argv, kind="library", verify=verify, notes=sync_notes)
    if rerun:
        measure(run, f"{name} re-run", argv, kind="library", verify=verify, notes=sync_notes)


BUSY_READER_ROW = "library + busy reader"
"""The library path's first sync again, on a fresh warehouse, while a reader queries it."""

BUSY_READER_START_SECONDS = 60.0
"""How long the busy reader may take to import before the sync starts without it."""


def run_library_with_busy_reader(run: SizeRun) -> None:
    """The library path's first sync while a reader process queries the warehouse in a loop:
    the reader starts before it and stops after, and is not part of the row's figures."""
    folder = run.work / "library-busy-reader"
    folder.mkdir(parents=True)
    path = folder / "warehouse.sqlite"
    argv = library_argv(run, path)
    with busy_reader(run, path, folder) as reader:
        row = measure(
            run,
            BUSY_READER_ROW,
            argv,
            kind="library",
            verify=verify_table(run, path, PROJECT_TABLE),
            notes=sync_notes,
        )
    summary = reader()
    row.result["reader"] = summary
    plain = find(run.rows, "library", run.size.label)
    versus = (
        f"{row.wall_s / plain.wall_s:.2f} x library; "
        if plain and plain.wall_s and row.wall_s and not row.error
        else ""
    )
    row.notes = f"{versus}{reader_notes(summary)}; {row.notes}"


@contextmanager
def busy_reader(run: SizeRun, path: Path, folder: Path) -> Iterator[Callable[[], dict[str, Any]]]:
    """The busy reader in a process of its own for the block; yields how to get its summary
    once the block has ended (the reader is then stopped)."""
    ready, stop, out = folder / "reader.ready", folder / "reader.stop", folder / "reader.json"
    argv = run.python(
        "busy_reader",
        "--warehouse",
        str(path),
        "--ready",
        str(ready),
        "--stop",
        str(stop),
        "--out",
        str(out),
    )
    with (folder / "reader.log").open("wb") as log:
        reader = subprocess.Popen(argv, cwd=REPO_ROOT, env=run.base_env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + BUSY_READER_START_SECONDS
        while not ready.exists() and reader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        yield lambda: reader_summary(reader, out, folder / "reader.log")
    finally:
        stop.touch()
        try:
            reader.wait(timeout=run.timeout("library"))
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()


def reader_summary(reader: subprocess.Popen[bytes], out: Path, log: Path) -> dict[str, Any]:
    """What the busy reader did, or why it said nothing."""
    if reader.returncode == 0 and out.exists():
        return json.loads(out.read_text(encoding="utf-8"))
    tail = log.read_text(encoding="utf-8", errors="replace")[-STDERR_TAIL_CHARS:]
    return {"errors": None, "first_error": f"reader exit {reader.returncode}: {last_line(tail)}"}


def reader_notes(summary: dict[str, Any]) -> str:
    """The busy reader's figures for the row's notes."""
    if summary.get("queries") is None:
        return f"reader failed: {summary.get('first_error')}"
    text = (
        f"reader {summary['queries']} queries ({summary['queries_per_s']}/s), "
        f"{summary['errors']} errors, {summary['states_seen']} states seen, "
        f"{summary['half_day_count']} half days"
    )
    if summary.get("first_error"):
        text += f" (first: {summary['first_error']})"
    return text


def sync_notes(result: dict[str, Any]) -> str:
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(result.get("statuses", {}).items()))
    return f"{statuses}; {result.get('pages')} pages; import {result.get('import_s')} s"


def dagster_env(run: SizeRun, warehouse: Path, home: Path) -> dict[str, str]:
    """What ``vis-pipeline sync`` reads: the API, the warehouse, the range, a fresh Dagster home."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return contender_env(
        VIS_BASE_URL=run.sim.base_url,
        VIS_WAREHOUSE=str(warehouse),
        VIS_START_DATE=run.first.isoformat(),
        VIS_TIMEZONE=run.tz,
        DAGSTER_HOME=str(home),
    )


def run_dagster(run: SizeRun) -> None:
    path = run.work / "dagster" / "warehouse.sqlite"
    env = dagster_env(run, path, run.work / "dagster_home")
    verify = verify_table(run, path, PROJECT_TABLE)
    argv = run.python("dagster_sync", *run.range_args())
    measure(run, "dagster", argv, kind="dagster", env=env, verify=verify, notes=dagster_notes)
    measure(
        run, "dagster re-run", argv, kind="dagster", env=env, verify=verify, notes=dagster_notes
    )
    # One settled day: what every Dagster run pays before it does any real work.
    one_day = run.python(
        "dagster_sync", "--first", run.last.isoformat(), "--last", run.last.isoformat()
    )
    measure(
        run,
        "dagster 1 settled day",
        one_day,
        kind="dagster",
        env=env,
        verify=verify,
        notes=dagster_notes,
    )


def dagster_notes(result: dict[str, Any]) -> str:
    return f"import+defs {result.get('import_s')} s, run {result.get('work_s')} s"


def run_dlt(run: SizeRun) -> None:
    path = run.work / "dlt" / "warehouse.duckdb"
    days = str(run.size.days)
    argv = run.python(
        "dlt_sync",
        "--base-url",
        run.sim.base_url,
        "--warehouse",
        str(path),
        "--first",
        run.first.isoformat(),
        "--days",
        days,
        "--tz",
        run.tz,
        "--page-size",
        str(PAGE_SIZE),
    )
    measure(
        run,
        "dlt",
        argv,
        kind="dlt",
        verify=verify_table(run, path, DLT_TABLE),
        notes=dlt_notes,
    )


def dlt_notes(result: dict[str, Any]) -> str:
    stages = ("import", "extract", "normalize", "load")
    return ", ".join(f"{stage} {result.get(stage + '_s')} s" for stage in stages)


def run_reports(run: SizeRun) -> None:
    path = run.work / "library" / "warehouse.sqlite"
    argv = run.python("reports", "--warehouse", str(path), "--tz", run.tz, *run.range_args())
    measure(run, "reports", argv, kind="reports", notes=reports_notes)


def reports_notes(result: dict[str, Any]) -> str:
    rows = sum(result.get("rows", {}).values())
    return f"materialize {result.get('work_s')} s, {rows} rows"


def profile_project(run: SizeRun) -> dict[str, Any]:
    """Where the project's contenders spend their time, sampled with py-spy (fresh files).

    Two passes: ``wall`` samples the main thread whether it runs or waits (its samples add up
    to the wall time), ``cpu`` samples only the thread holding the GIL (Python's CPU time, in
    any thread).
    """
    if shutil.which("py-spy") is None:
        print("   py-spy not installed: no profiles (pip install py-spy)", file=sys.stderr)
        return {}
    profiles: dict[str, dict[str, Any]] = {}
    for mode in PROFILE_MODES:
        for name, argv, env in profile_jobs(run, run.work / f"profile-{mode}"):
            profiles.setdefault(name, {})[mode] = profile_one(run, name, mode, argv, env)
    for profile in profiles.values():
        profile["text"] = "\n".join(
            f"  [{mode}] {PROFILE_MODES[mode]}\n{profile[mode]['text']}" for mode in PROFILE_MODES
        )
    return profiles


def profile_jobs(run: SizeRun, work: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """The project's contenders in the order they need each other: sync, re-run, reports."""
    size = run.size.label
    library = work / "library" / "warehouse.sqlite"
    library_argv = run.python(
        "direct",
        "--base-url",
        run.sim.base_url,
        "--warehouse",
        str(library),
        "--tz",
        run.tz,
        *run.range_args(),
    )
    reports_argv = run.python(
        "reports", "--warehouse", str(library), "--tz", run.tz, *run.range_args()
    )
    dagster_argv = run.python("dagster_sync", *run.range_args())
    dagster = dagster_env(run, work / "dagster" / "warehouse.sqlite", work / "dagster_home")
    return [
        (f"library @ {size}", library_argv, run.base_env),
        (f"library re-run @ {size}", library_argv, run.base_env),
        (f"reports @ {size}", reports_argv, run.base_env),
        (f"dagster @ {size}", dagster_argv, dagster),
        (f"dagster re-run @ {size}", dagster_argv, dagster),
    ]


def profile_one(
    run: SizeRun, name: str, mode: str, argv: list[str], env: dict[str, str]
) -> dict[str, Any]:
    print(f"   profiling {name} ({mode}) ...", file=sys.stderr, flush=True)
    raw = run.work / f"profile-{len(os.listdir(run.work))}.txt"
    flags = ["--threads", "--idle"] if mode == "wall" else ["--gil"]
    spy = ["py-spy", "record", "--rate", str(PROFILE_RATE_HZ), *flags]
    spy += ["--format", "raw", "--output", str(raw), "--"]
    child = run_child(spy + argv, env=env, timeout=run.timeout("dagster"))
    if not raw.exists():
        return {"error": last_line(child.stderr_tail), "text": "  (no samples)"}
    summary = summarise_samples(raw.read_text(), main_thread_only=mode == "wall")
    summary["wall_s"] = round(child.wall_s, 3)
    return summary


def summarise_samples(
    raw: str, top: int = PROFILE_TOP, *, main_thread_only: bool = False
) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks.

    Plumbing frames (interpreter start, thread workers, the import machinery) are left out of
    the inclusive ranking, which would otherwise be all plumbing; imports get their own share.
    """
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = imports = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if main_thread_only and MAIN_THREAD_FRAME not in stack:
            continue
        count = int(count_text)
        total += count
        raw_frames = [f for f in stack.split(";") if not f.startswith(("thread ", "process "))]
        if not raw_frames:
            continue
        frames = [frame_name(frame) for frame in raw_frames]
        # Own time keeps the line: it says which statement waits or computes.
        leaf = frame_name(raw_frames[-1], keep_line=True)
        own[leaf] = own.get(leaf, 0) + count
        imports += count if any(IMPORT_FRAME in frame for frame in frames) else 0
        for frame in set(frames):
            if not any(marker in frame for marker in PLUMBING_FRAMES):
                inclusive[frame] = inclusive.get(frame, 0) + count

    def share(n: int) -> float:
        return round(100 * n / max(total, 1), 1)

    def ranked(table: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(table.items(), key=lambda item: item[1], reverse=True)[:top]
        return [(frame, share(n)) for frame, n in best]

    self_top, incl_top = ranked(own), ranked(inclusive)
    lines = [f"  {total} samples; importing modules: {share(imports)}%", "  self %   function"]
    lines += [f"  {pct:6.1f}   {frame}" for frame, pct in self_top]
    lines += ["  incl %   function"] + [f"  {pct:6.1f}   {frame}" for frame, pct in incl_top]
    return {
        "samples": total,
        "imports_pct": share(imports),
        "self": self_top,
        "inclusive": incl_top,
        "text": "\n".join(lines),
    }


def frame_name(frame: str, *, keep_line: bool = False) -> str:
    """``func (path/to/file.py:12)`` -> ``func (to/file.py)``, one entry per function (or
    ``func (to/file.py:12)`` with ``keep_line``)."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    filename, _, line = where.rpartition(":")
    if not filename:
        filename, line = where, ""
    short = "/".join(Path(filename).parts[-2:])
    return f"{name} ({short}:{line})" if keep_line and line else f"{name} ({short})"


def add_ratios(rows: list[Row]) -> None:
    """Each row's wall time over the floor's and dlt's at the same size."""
    for row in rows:
        if row.wall_s is None or row.error:
            continue
        for attr, reference in (("vs_floor", "floor"), ("vs_dlt", "dlt")):
            base = find(rows, reference, row.size)
            if base is not None and base.wall_s and not base.error:
                setattr(row, attr, round(row.wall_s / base.wall_s, 2))


def find(rows: list[Row], contender: str, size: str) -> Row | None:
    """The row of ``contender`` at the size labelled ``size``, if it ran."""
    return next((r for r in rows if r.contender == contender and r.size == size), None)


Check = tuple[str, str, float | None, str, float]
"""A target: what is measured, at which size, the value (None: not measured), op and limit."""


def evaluate_targets(rows: list[Row], usual: list[Size]) -> list[dict[str, Any]]:
    """The targets, met or not (None when a number is missing).

    The standing ones at the largest usual size (``--days`` days), the memory one against the
    smallest; the dense account's (issue A) at 30 days and at a year of 10,000 calls a day.
    """

    def value(contender: str, size: str, attr: str = "wall_s") -> float | None:
        row = find(rows, contender, size)
        if row is None or row.error or row.wall_s is None:
            return None
        if attr == "work_s":
            return row.result.get("work_s")
        return getattr(row, attr)

    def ratio(top: float | None, bottom: float | None) -> float | None:
        return None if top is None or not bottom else round(top / bottom, 3)

    checks: list[Check] = []
    if usual:
        checks += standing_checks(value, ratio, usual[-1].label, usual[0].label)
    checks += dense_account_checks(value, ratio)
    return [
        {
            "target": name,
            "size": size,
            "value": measured,
            "limit": f"{op} {limit}",
            "met": None if measured is None else within(measured, op, limit),
            "missed_by_pct": missed_by(measured, op, limit),
        }
        for name, size, measured, op, limit in checks
    ]


def standing_checks(
    value: Callable[..., float | None],
    ratio: Callable[[float | None, float | None], float | None],
    big: str,
    small: str,
) -> list[Check]:
    """The benchmark's standing targets, at the largest usual size ``big``."""
    # Between a size and itself the memory ratio says nothing.
    memory = (
        ratio(value("library", big, "peak_rss_mb"), value("library", small, "peak_rss_mb"))
        if big != small
        else None
    )
    return [
        (
            "library wall / floor wall",
            big,
            ratio(value("library", big), value("floor", big)),
            "<=",
            1.5,
        ),
        (
            "dlt wall / dagster wall",
            big,
            ratio(value("dlt", big), value("dagster", big)),
            ">=",
            10.0,
        ),
        ("library peak RSS / at the smallest size", f"{big} / {small}", memory, "<=", 1.5),
        (
            "library re-run wall / first sync wall",
            big,
            ratio(value("library re-run", big), value("library", big)),
            "<=",
            0.10,
        ),
        (
            "library re-run work / first sync work (in-process, no start-up)",
            big,
            ratio(value("library re-run", big, "work_s"), value("library", big, "work_s")),
            "<=",
            0.10,
        ),
        ("reports materialise s", big, value("reports", big, "work_s"), "<=", 2.0),
    ]


def dense_account_checks(
    value: Callable[..., float | None],
    ratio: Callable[[float | None, float | None], float | None],
) -> list[Check]:
    """The dense account's targets (issue A): 30 days and a year of 10,000 calls a day."""
    month, year = ISSUE_MONTH.label, ISSUE_YEAR.label
    return [
        (
            "library wall / floor wall",
            month,
            ratio(value("library", month), value("floor", month)),
            "<=",
            1.3,
        ),
        (
            "dagster wall / floor wall",
            month,
            ratio(value("dagster", month), value("floor", month)),
            "<=",
            2.0,
        ),
        (
            "dagster wall / floor wall (start-up amortised)",
            year,
            ratio(value("dagster", year), value("floor", year)),
            "<=",
            1.3,
        ),
        (
            "dagster peak RSS, year / 30 days",
            f"{year} / {month}",
            ratio(value("dagster", year, "peak_rss_mb"), value("dagster", month, "peak_rss_mb")),
            "<=",
            1.5,
        ),
        (
            "library peak RSS, year / 30 days",
            f"{year} / {month}",
            ratio(value("library", year, "peak_rss_mb"), value("library", month, "peak_rss_mb")),
            "<=",
            1.5,
        ),
    ]


def within(measured: float, op: str, limit: float) -> bool:
    return measured <= limit if op == "<=" else measured >= limit


def missed_by(measured: float | None, op: str, limit: float) -> float | None:
    """How far past its limit a missed target is, in percent of the limit (None: met)."""
    if measured is None or within(measured, op, limit):
        return None
    return round(100 * abs(measured - limit) / limit, 1)


def dense_summary(rows: list[Row]) -> list[dict[str, Any]]:
    """What repairs cost on the dense day, per library row: its requests, those spent on
    repairs, and those beyond the floor's (which pages the day once and repairs nothing)."""
    floor = find(rows, "floor", "dense")
    summary = []
    for name in DENSE_LIBRARY_ROWS:
        row = find(rows, name, "dense")
        if row is None or row.error:
            continue
        requests = row.result.get("requests")
        repairs = row.repair_requests or 0
        summary.append(
            {
                "contender": name,
                "pages": row.result.get("pages"),
                "requests": requests,
                "repair_requests": repairs,
                "repair_share_pct": round(100 * repairs / requests, 1) if requests else None,
                "requests_beyond_floor": (
                    None
                    if floor is None or floor.requests is None or row.requests is None
                    else row.requests - floor.requests
                ),
                "floor_requests": None if floor is None else floor.requests,
                "wall_s": row.wall_s,
                "vs_floor": row.vs_floor,
                "exact": row.exact,
            }
        )
    return summary


TABLE_COLUMNS = (
    ("contender", "contender", "<23"),
    ("calls/day", "calls_per_day", ">9"),
    ("days", "days", ">4"),
    ("events", "events", ">9"),
    ("wall s", "wall_s", ">8.2f"),
    ("CPU s", "cpu_s", ">7.2f"),
    ("peak MB", "peak_rss_mb", ">8.1f"),
    ("requests", "requests", ">8"),
    ("repairs", "repair_requests", ">7"),
    ("x floor", "vs_floor", ">7.2f"),
    ("x dlt", "vs_dlt", ">6.2f"),
    ("exact", "exact", ">5"),
    ("other", "other_cores", ">5.2f"),
)
"""The printed table: header, Row attribute, format."""


def format_table(rows: list[Row]) -> str:
    """The results as a fixed-width text table (notes and errors after it)."""

    def cell(row: Row, attr: str, spec: str) -> str:
        value = getattr(row, attr)
        width = spec[1:].split(".")[0].rstrip("fd")
        if value is None:
            return format("-", f">{width}")
        if isinstance(value, bool):
            return format("yes" if value else "NO", f">{width}")
        return format(value, spec)

    header = "  ".join(
        format(title, spec[:1] + spec[1:].split(".")[0].rstrip("fd"))
        for title, _, spec in TABLE_COLUMNS
    )
    lines = [header + "  notes", "-" * (len(header) + 7)]
    for row in rows:
        cells = "  ".join(cell(row, attr, spec) for _, attr, spec in TABLE_COLUMNS)
        lines.append(f"{cells}  {row.error or row.notes}")
    return "\n".join(lines)


def format_targets(targets: list[dict[str, Any]]) -> str:
    lines = ["targets (reported, not asserted):"]
    for target in targets:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
        missed = target.get("missed_by_pct")
        by = f", {missed}% past it" if missed is not None else ""
        lines.append(
            f"  {verdict:<6} {target['target']} @ {target['size']}: {target['value']} "
            f"(target {target['limit']}{by})"
        )
    return "\n".join(lines)


def format_data_sets(data_sets: dict[str, dict[str, Any]]) -> str:
    """Each size's data set and how long its simulator took to generate it and listen."""
    lines = ["data sets (simulator start-up: generating the data, then listening):"]
    for label, data_set in data_sets.items():
        lines.append(
            f"  {label:<10} {data_set['description']}, from {data_set['first_day']}: "
            f"{data_set['events']:,} events, simulator up in {data_set['simulator_start_s']} s"
        )
    return "\n".join(lines)


def format_dense(summary: list[dict[str, Any]]) -> str:
    """What repairs cost on the dense day."""
    lines = ["dense day: what repairs cost (the library path's own request counts)"]
    for item in summary:
        exact = {True: "exact", False: "NOT exact", None: "-"}[item["exact"]]
        lines.append(
            f"  {item['contender']:<24} {item['pages']} pages, {item['requests']} requests, "
            f"{item['repair_requests']} for repairs ({item['repair_share_pct']}%); "
            f"{item['requests_beyond_floor']} requests beyond the floor's "
            f"{item['floor_requests']}; {item['wall_s']} s ({item['vs_floor']} x floor); {exact}"
        )
    return "\n".join(lines)


def machine_meta(
    args: argparse.Namespace,
    data_sets: dict[str, Any],
    load_before: tuple[float, ...],
    seconds: float,
) -> dict[str, Any]:
    """What the figures depend on: the machine, the versions, the code, the data sets, the
    load around."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: package_version(name)
            for name in ("duckdb", "dagster", "dlt", "httpx", "pandas", "pyarrow", "orjson")
        },
        "code": code_version(),
        "days": args.days,
        "sizes": [size.label for size in args.sizes],
        "data_sets": data_sets,
        "tz": args.tz,
        "seed": args.seed,
        "page_size": PAGE_SIZE,
        "concurrency": CONCURRENCY,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "total_seconds": round(seconds, 1),
    }


def code_version() -> dict[str, Any]:
    """The commit measured and the project files that differed from it (the working tree is
    what ran)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "vis_pipeline", "bench", "sql")
    return {
        "commit": git("rev-parse", "HEAD").strip() or None,
        # Each line is two status letters, a space and the path.
        "uncommitted": [line[3:] for line in changed.splitlines() if line.strip()],
    }


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def display_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
