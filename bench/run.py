"""The benchmark: vis-pipeline against the wire's floor and dlt, on the project's simulator.

For each size (calls per day over ``--days`` days) it starts the simulator in its own process,
runs every contender in a fresh process of its own, and measures it alone: wall time, CPU time
and peak RSS of that process, the requests the simulator answered for it, and whether what it
loaded is exactly the simulator's truth. It prints a table, checks the targets (it reports them,
it does not fail on them) and writes everything to a JSON file.

    python bench/run.py [--sizes 1000,10000] [--days 30] [--out bench/results/latest.json]
                        [--skip-dlt] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_helpers import (
    REPO_ROOT,
    TOKEN_ENV,
    ChildRun,
    Fingerprint,
    TableSpec,
    run_child,
    table_fingerprint,
    truth_fingerprint,
)

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
"""Seconds each kind of contender may run before it is stopped (and reported as timed out)."""

PROJECT_TABLE = TableSpec("vis.events", "event_id", "state", "start_time", "duration_ms")
"""Where vis-pipeline keeps its events."""

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
    calls_per_day: int
    events: int
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    requests: int | None = None
    vs_floor: float | None = None
    vs_dlt: float | None = None
    exact: bool | None = None
    notes: str = ""
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    requests_by_operation: dict[str, int] = field(default_factory=dict)


@dataclass
class Truth:
    """What the simulator holds for the benchmark's range."""

    fingerprint: Fingerprint
    ids: set[int]


@dataclass
class SizeRun:
    """Everything one size's contenders share: the simulator, the range, a scratch folder."""

    sim: Any
    calls_per_day: int
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="calls per day, comma-separated")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the project's contenders at the largest size",
    )
    args = parser.parse_args(argv)
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    first = datetime.now(UTC).date() - timedelta(days=args.days)
    rows: list[Row] = []
    profiles: dict[str, Any] = {}
    for size in args.sizes:
        profile = args.profile and size == args.sizes[-1]
        size_rows, size_profiles = bench_size(args, size, first, profile=profile)
        rows.extend(size_rows)
        profiles.update(size_profiles)
    add_ratios(rows)
    targets = evaluate_targets(rows, args.sizes)
    print(format_table(rows))
    print()
    print(format_targets(targets))
    for name, profile in profiles.items():
        print(f"\n{name}: where the time goes (py-spy samples)")
        print(profile["text"])
    report = {
        "meta": machine_meta(args, first, load_before, time.perf_counter() - started),
        "rows": [asdict(row) for row in rows],
        "targets": targets,
        "profiles": profiles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nresults written to {display_path(args.out)}")
    return 0


def bench_size(
    args: argparse.Namespace, size: int, first: date, *, profile: bool
) -> tuple[list[Row], dict[str, Any]]:
    """Every contender at one size, against one simulator started for it."""
    from vis_pipeline.records import format_instant_ms
    from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

    last = first + timedelta(days=args.days - 1)
    options = SimulatorOptions(
        seed=args.seed,
        start=first.isoformat(),
        days=args.days,
        calls_per_day=size,
        tz=args.tz,
        token=BENCH_TOKEN,
        now=None,
    )
    range_start, range_end = options.range_ms()
    settled_now = format_instant_ms(range_end + SETTLE_HOURS * 3_600_000)
    options = replace(options, now=settled_now)
    print(f"== {args.days} days x {size} calls a day: starting the simulator", file=sys.stderr)
    with SimulatorProcess(options) as sim, tempfile.TemporaryDirectory(prefix="vis-bench-") as work:
        fingerprint, ids = truth_fingerprint(sim.control.truth(range_start, range_end))
        print(f"   truth: {fingerprint.count} events", file=sys.stderr)
        run = SizeRun(
            sim=sim,
            calls_per_day=size,
            first=first,
            last=last,
            tz=args.tz,
            work=Path(work),
            truth=Truth(fingerprint, ids),
            base_env=contender_env(),
        )
        run_floor(run)
        run_library(run)
        run_dagster(run)
        if not args.skip_dlt:
            run_dlt(run)
        run_reports(run)
        profiles = profile_project(run) if profile else {}
    return run.rows, profiles


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
    child = run_child(argv, env=env or run.base_env, timeout=TIMEOUTS[kind])
    stats = run.sim.control.stats()
    row = Row(
        contender=name,
        calls_per_day=run.calls_per_day,
        events=run.truth.fingerprint.count,
        wall_s=round(child.wall_s, 3),
        cpu_s=round(child.cpu_s, 3),
        peak_rss_mb=round(child.peak_rss_mb, 1),
        requests=int(stats.get("total", 0)),
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


def compare(truth: Truth, fingerprint: Fingerprint, ids: set[int]) -> tuple[bool, str]:
    """Whether a loaded table is exactly the truth, and what differs when it is not."""
    if fingerprint == truth.fingerprint and ids == truth.ids:
        return True, ""
    diffs = [
        f"{key} {value} != {getattr(truth.fingerprint, key)}"
        for key, value in fingerprint.as_dict().items()
        if value != getattr(truth.fingerprint, key)
    ]
    missing, extra = len(truth.ids - ids), len(ids - truth.ids)
    return False, f"missing {missing}, extra {extra}; " + ", ".join(diffs)


def run_floor(run: SizeRun) -> None:
    days = str((run.last - run.first).days + 1)
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


def run_library(run: SizeRun) -> None:
    path = run.work / "library" / "warehouse.duckdb"
    argv = run.python(
        "direct",
        "--base-url",
        run.sim.base_url,
        "--warehouse",
        str(path),
        "--tz",
        run.tz,
        *run.range_args(),
    )
    verify = verify_table(run, path, PROJECT_TABLE)
    measure(run, "library", argv, kind="library", verify=verify, notes=sync_notes)
    measure(run, "library re-run", argv, kind="library", verify=verify, notes=sync_notes)


def sync_notes(result: dict[str, Any]) -> str:
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(result.get("statuses", {}).items()))
    return f"{statuses}; import {result.get('import_s')} s"


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
    path = run.work / "dagster" / "warehouse.duckdb"
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
    days = str((run.last - run.first).days + 1)
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
    path = run.work / "library" / "warehouse.duckdb"
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
    size = run.calls_per_day
    library = work / "library" / "warehouse.duckdb"
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
    dagster = dagster_env(run, work / "dagster" / "warehouse.duckdb", work / "dagster_home")
    return [
        (f"library @ {size}/day", library_argv, run.base_env),
        (f"library re-run @ {size}/day", library_argv, run.base_env),
        (f"reports @ {size}/day", reports_argv, run.base_env),
        (f"dagster @ {size}/day", dagster_argv, dagster),
        (f"dagster re-run @ {size}/day", dagster_argv, dagster),
    ]


def profile_one(
    run: SizeRun, name: str, mode: str, argv: list[str], env: dict[str, str]
) -> dict[str, Any]:
    print(f"   profiling {name} ({mode}) ...", file=sys.stderr, flush=True)
    raw = run.work / f"profile-{len(os.listdir(run.work))}.txt"
    flags = ["--threads", "--idle"] if mode == "wall" else ["--gil"]
    spy = ["py-spy", "record", "--rate", str(PROFILE_RATE_HZ), *flags]
    spy += ["--format", "raw", "--output", str(raw), "--"]
    child = run_child(spy + argv, env=env, timeout=TIMEOUTS["dagster"])
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
            base = find(rows, reference, row.calls_per_day)
            if base is not None and base.wall_s and not base.error:
                setattr(row, attr, round(row.wall_s / base.wall_s, 2))


def find(rows: list[Row], contender: str, calls_per_day: int) -> Row | None:
    """The row of ``contender`` at ``calls_per_day``, if it ran."""
    return next(
        (r for r in rows if r.contender == contender and r.calls_per_day == calls_per_day), None
    )


def evaluate_targets(rows: list[Row], sizes: list[int]) -> list[dict[str, Any]]:
    """The targets, met or not (None when a number is missing), at the largest size."""
    big, small = sizes[-1], sizes[0]

    def value(contender: str, size: int, attr: str = "wall_s") -> float | None:
        row = find(rows, contender, size)
        if row is None or row.error:
            return None
        if attr == "work_s":
            return row.result.get("work_s")
        return getattr(row, attr)

    def ratio(top: float | None, bottom: float | None) -> float | None:
        return None if top is None or not bottom else round(top / bottom, 3)

    checks = [
        ("library wall / floor wall", ratio(value("library", big), value("floor", big)), "<=", 1.5),
        ("dlt wall / dagster wall", ratio(value("dlt", big), value("dagster", big)), ">=", 10.0),
        (
            f"library peak RSS {big}/day / {small}/day",
            ratio(value("library", big, "peak_rss_mb"), value("library", small, "peak_rss_mb")),
            "<=",
            1.5,
        ),
        (
            "library re-run wall / first sync wall",
            ratio(value("library re-run", big), value("library", big)),
            "<=",
            0.10,
        ),
        (
            "library re-run work / first sync work (in-process, no start-up)",
            ratio(value("library re-run", big, "work_s"), value("library", big, "work_s")),
            "<=",
            0.10,
        ),
        ("reports materialise s", value("reports", big, "work_s"), "<=", 2.0),
    ]
    return [
        {
            "target": name,
            "calls_per_day": big,
            "value": measured,
            "limit": f"{op} {limit}",
            "met": None if measured is None else within(measured, op, limit),
        }
        for name, measured, op, limit in checks
    ]


def within(measured: float, op: str, limit: float) -> bool:
    return measured <= limit if op == "<=" else measured >= limit


TABLE_COLUMNS = (
    ("contender", "contender", "<22"),
    ("calls/day", "calls_per_day", ">9"),
    ("events", "events", ">8"),
    ("wall s", "wall_s", ">8.2f"),
    ("CPU s", "cpu_s", ">7.2f"),
    ("peak MB", "peak_rss_mb", ">8.1f"),
    ("requests", "requests", ">8"),
    ("x floor", "vs_floor", ">7.2f"),
    ("x dlt", "vs_dlt", ">6.2f"),
    ("exact", "exact", ">5"),
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
        lines.append(
            f"  {verdict:<6} {target['target']}: {target['value']} (target {target['limit']}, "
            f"{target['calls_per_day']}/day)"
        )
    return "\n".join(lines)


def machine_meta(
    args: argparse.Namespace, first: date, load_before: tuple[float, ...], seconds: float
) -> dict[str, Any]:
    """What the figures depend on: the machine, the versions, the data set, the load around."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: package_version(name)
            for name in ("duckdb", "dagster", "dlt", "httpx", "pandas", "pyarrow", "orjson")
        },
        "days": args.days,
        "sizes": args.sizes,
        "first_day": first.isoformat(),
        "tz": args.tz,
        "seed": args.seed,
        "page_size": PAGE_SIZE,
        "concurrency": CONCURRENCY,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "total_seconds": round(seconds, 1),
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
