"""What the benchmark's runner and its contenders share: child processes measured one by one,
day windows, profiling on demand, and fingerprints of loaded data to check it against the truth.

Contenders print exactly one JSON line on stdout (``emit``); everything else goes to stderr.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # contenders import this module: numpy is not part of their start-up
    import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository's top folder: contenders run with it as their working directory."""

TOKEN_ENV = "VIS_ACCESS_TOKEN"
"""Contenders read the API token from this variable, never from their command line."""

FINAL_STATES: frozenset[str] = frozenset(
    {"DETACHED", "REJECTED", "CANCELLED", "ANSWERED", "MISSED"}
)
"""States of a finished call (kept here so the check does not lean on the code it checks)."""

MEASURE_FLAG = "--measure"
"""Runs this module as the measuring process: ``python bench_helpers.py --measure FILE -- CMD``."""

KILL_GRACE_SECONDS = 5.0
"""How long a child that overran its timeout gets between SIGTERM and SIGKILL."""

STDERR_TAIL_CHARS = 2000
"""How much of a failed child's stderr is kept for the report."""


def emit(result: Mapping[str, Any]) -> None:
    """Print a contender's results as its one line of JSON on stdout."""
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def day_windows(first: date, days: int, tz: str) -> list[tuple[int, int]]:
    """Half-open [start, end) epoch-ms windows of ``days`` local days from ``first``."""
    zone = ZoneInfo(tz)
    windows = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        start = datetime.combine(day, dtime(), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), dtime(), zone).astimezone(UTC)
        windows.append((_epoch_ms(start), _epoch_ms(end)))
    return windows


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """Profile the block with cProfile into ``path`` (nothing when ``path`` is None)."""
    if not path:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)


def top_functions(path: Path, limit: int = 15, sort: str = "tottime") -> str:
    """The ``limit`` costliest functions of a cProfile dump, as pstats prints them."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats(sort).print_stats(limit)
    text = out.getvalue()
    # pstats starts with a header of file names and totals; the table is what matters.
    start = text.find("   ncalls")
    return text[start:] if start >= 0 else text


@dataclass
class ChildRun:
    """One contender process, measured on its own (not mixed with other children)."""

    argv: list[str]
    returncode: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    timed_out: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the child exited 0 in time and printed its JSON line."""
        return self.returncode == 0 and not self.timed_out and bool(self.result)


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    cwd: Path = REPO_ROOT,
) -> ChildRun:
    """Run ``argv`` to its end (or ``timeout``) and measure it alone.

    The command is started by a small measuring process (this module run as a script) that
    waits for it with ``wait4``: that gives the command's own CPU time and peak RSS, where
    RUSAGE_CHILDREN deltas would mix in every other child (the simulator among them). The
    measuring process matters because a forked child's peak RSS starts at its parent's RSS:
    forked from a big runner, every contender would look as big as the runner.
    """
    run = ChildRun(argv=list(argv))
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        usage_path = Path(scratch) / "usage.json"
        shim = [sys.executable, str(Path(__file__).resolve()), MEASURE_FLAG, str(usage_path), "--"]
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*shim, *argv],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=str(cwd),
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
        run.returncode = _wait_with_timeout(proc, timeout, run)
        run.wall_s = time.perf_counter() - started
        if usage_path.exists():
            usage = json.loads(usage_path.read_text())
            run.returncode = usage["returncode"]
            run.wall_s, run.cpu_s, run.peak_rss_mb = (
                usage["wall_s"],
                usage["cpu_s"],
                usage["rss_mb"],
            )
        out.seek(0)
        err.seek(0)
        run.result = _last_json_line(out.read().decode("utf-8", "replace"))
        stderr = err.read().decode("utf-8", "replace")
        if not run.ok:
            run.stderr_tail = stderr[-STDERR_TAIL_CHARS:]
    return run


def _wait_with_timeout(proc: subprocess.Popen[bytes], timeout: float, run: ChildRun) -> int:
    """The exit code; past ``timeout`` the child's process group is stopped, then killed."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.timed_out = True
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        return proc.wait()


def measure_command(argv: Sequence[str]) -> int:
    """The measuring process: run the command after ``--`` and write its rusage as JSON.

    ``argv`` is ``USAGE_FILE -- COMMAND...``; the command inherits stdio, environment and
    working directory. Returns the command's exit code.
    """
    usage_path, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit(f"usage: {MEASURE_FLAG} USAGE_FILE -- COMMAND...")
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    tree = _TreeMemory(proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    tree_peak_mb = tree.stop()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here, not by Popen
    measured = {
        "returncode": code,
        "wall_s": wall,
        # Children the command waited for are included (wait4 adds their CPU time).
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # wait4 gives the largest single process of the tree, not the tree's sum: a command
        # that runs part of its work in a child is measured by sampling the whole tree too.
        "rss_mb": max(usage.ru_maxrss / 1024, tree_peak_mb),  # Linux reports kilobytes
    }
    Path(usage_path).write_text(json.dumps(measured))
    return code


TREE_SAMPLE_SECONDS = 0.02
"""How often the measuring process sums the resident memory of the command's process tree."""


class _TreeMemory:
    """The largest summed RSS of a process and its descendants, sampled on a thread."""

    def __init__(self, pid: int) -> None:
        import psutil  # only the measuring process needs it

        self._root = psutil.Process(pid)
        self._psutil = psutil
        self._peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(TREE_SAMPLE_SECONDS):
            total = 0
            try:
                processes = [self._root, *self._root.children(recursive=True)]
            except self._psutil.Error:
                continue
            for process in processes:
                with suppress(self._psutil.Error):
                    total += process.memory_info().rss
            self._peak = max(self._peak, total)

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self._done.set()
        self._thread.join()
        return self._peak / 2**20


def _signal_group(pid: int, sig: int) -> None:
    """Signal the child's own process group (it was started in a new session)."""
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


@dataclass(frozen=True)
class Fingerprint:
    """What must agree between a loaded table and the truth: the ids and sums over the fields."""

    count: int
    distinct_ids: int
    id_sum: int
    final_count: int
    start_ms_sum: int
    duration_sum: int

    def as_dict(self) -> dict[str, int]:
        """A JSON-friendly copy."""
        return dict(self.__dict__)


def truth_fingerprint(truth: Iterable[Mapping[str, Any]]) -> tuple[Fingerprint, np.ndarray]:
    """Fingerprint and distinct ids (sorted) of the simulator's truth, computed record by
    record: ``truth`` may be a generator over days, so a year is never held as records."""
    import numpy as np

    ids: list[int] = []
    count = id_sum = finals = start_sum = duration_sum = 0
    for record in truth:
        count += 1
        ids.append(record["id"])
        id_sum += record["id"]
        finals += record.get("state") in FINAL_STATES
        start = datetime.fromisoformat(record["startTime"]).astimezone(UTC)
        start_sum += _epoch_ms(start)
        duration_sum += record.get("duration") or 0
    distinct = np.unique(np.array(ids, dtype=np.int64))
    return Fingerprint(count, len(distinct), id_sum, finals, start_sum, duration_sum), distinct


@dataclass(frozen=True)
class TableSpec:
    """Where a contender's events live and what its columns are called."""

    table: str
    id_column: str
    state_column: str
    start_column: str
    duration_column: str
    lake: bool = False
    """The path is the SQLite catalog of a DuckLake (vis-pipeline's warehouse), opened the
    project's way; else it is a DuckDB file (dlt's)."""


def open_read_only(path: Path, spec: TableSpec) -> Any:
    """A read-only DuckDB connection on which ``spec.table`` resolves."""
    if spec.lake:
        from vis_pipeline import warehouse

        return warehouse.connect(path, read_only=True)
    import duckdb

    return duckdb.connect(str(path), read_only=True)


def table_fingerprint(path: Path, spec: TableSpec) -> tuple[Fingerprint, np.ndarray]:
    """Fingerprint and distinct ids (sorted) of a contender's events table, from its file."""
    import numpy as np

    finals = ", ".join(f"'{state}'" for state in sorted(FINAL_STATES))
    query = f"""
        SELECT count(*), count(DISTINCT {spec.id_column}),
               coalesce(sum({spec.id_column}::HUGEINT), 0),
               count(*) FILTER (WHERE {spec.state_column} IN ({finals})),
               coalesce(sum(epoch_ms(CAST({spec.start_column} AS TIMESTAMPTZ))::HUGEINT), 0),
               coalesce(sum({spec.duration_column}::HUGEINT), 0)
        FROM {spec.table}
    """
    distinct_ids = f"""
        SELECT DISTINCT {spec.id_column}::BIGINT AS id FROM {spec.table}
        WHERE {spec.id_column} IS NOT NULL ORDER BY 1
    """
    with open_read_only(path, spec) as conn:
        row = conn.execute(query).fetchone()
        ids = np.asarray(conn.execute(distinct_ids).fetchnumpy()["id"], dtype=np.int64)
    assert row is not None
    return Fingerprint(*(int(value) for value in row)), ids


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == MEASURE_FLAG:
        sys.exit(measure_command(sys.argv[2:]))
    sys.exit(f"usage: {MEASURE_FLAG} USAGE_FILE -- COMMAND...")
