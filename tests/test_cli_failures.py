"""When something goes wrong, the command says so in one line, with the right exit code.

Every case runs the real command in a process of its own, in an empty folder (no ``.env``),
and checks the exit code, the lines on stderr, that no Python traceback shows, and that nothing
half-written is left behind.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from helpers import assert_same_events, expected_events, warehouse_events

from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import local_day_window

DAYS = SimulatorOptions(seed=9, start="2026-03-02", days=3, calls_per_day=200, users=4)
FIRST = date.fromisoformat(DAYS.start)
LAST = FIRST + timedelta(days=DAYS.days - 1)
RANGE = ["--from", FIRST.isoformat(), "--to", LAST.isoformat()]

STEP_SECONDS = 120
"""Longest any one command of these tests may take."""


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(DAYS) as simulator:
        yield simulator


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty working folder: its warehouse and Dagster home are the defaults inside it."""
    work = tmp_path / "work"
    work.mkdir()
    return work


def _env(folder: Path, sim: SimulatorProcess | None = None, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VIS_", "DAGSTER_"))}
    base |= {"VIS_START_DATE": "2026-01-01", "DAGSTER_HOME": str(folder / "dagster_home")}
    if sim is not None:
        base |= {"VIS_BASE_URL": sim.base_url, "VIS_ACCESS_TOKEN": sim.token}
    return base | extra


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "vis_pipeline.cli", *args]
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    child = _cli(*args, env=env, cwd=cwd)
    out, err = child.communicate(timeout=STEP_SECONDS)
    return Ran(child.returncode, out, err)


def _one_clear_line(ran: Ran, code: int, says: str, *, lines: int = 2) -> None:
    assert ran.code == code, ran.err
    assert "Traceback" not in ran.err
    assert 1 <= len(ran.err_lines) <= lines, ran.err
    assert says in ran.err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VIS_PAGE_SIZE", "0"),
        ("VIS_PAGE_SIZE", "-5"),
        ("VIS_CONCURRENCY", "0"),
        ("VIS_MAX_RETRIES", "-1"),
        ("VIS_TIMEOUT_SECONDS", "0"),
        ("VIS_TIMEZONE", "Mars/Olympus"),
        ("VIS_START_DATE", "yesterday"),
        ("VIS_WAREHOUSE", "vis.duckdb"),
    ],
)
def test_a_bad_setting_stops_before_any_run_and_writes_nothing(
    folder: Path, variable: str, value: str
) -> None:
    env = _env(folder, **{variable: value, "VIS_ACCESS_TOKEN": "a-test-token"})
    _one_clear_line(run("sync", *RANGE, env=env, cwd=folder), 2, variable, lines=1)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sync", "--from", "2026-02-30", "--to", "2026-03-02"], "not a day of the calendar"),
        (["sync", "--from", "03/02/2026", "--to", "2026-03-02"], "YYYY-MM-DD"),
        (["sync", "--from", "2026-03-04", "--to", "2026-03-02"], "before --from"),
        (
            ["export", "dashboard", *RANGE, "--format", "csv", "--output", "x.csv"],
            "only as html",
        ),
    ],
)
def test_usage_errors_exit_2_in_one_line(folder: Path, args: list[str], says: str) -> None:
    ran = run(*args, env=_env(folder, VIS_ACCESS_TOKEN="a-test-token"), cwd=folder)
    _one_clear_line(ran, 2, says)
    assert list(folder.iterdir()) == []


def test_a_long_range_asks_for_yes_and_says_what_it_costs(folder: Path) -> None:
    env = _env(folder, VIS_ACCESS_TOKEN="a-test-token", VIS_START_DATE="1999-01-01")
    ran = run("sync", "--from", "1999-01-01", "--to", "2026-03-05", env=env, cwd=folder)
    days = (date(2026, 3, 5) - date(1999, 1, 1)).days + 1
    _one_clear_line(ran, 2, f"{days} days will take at least {days} count requests")
    assert "--yes" in ran.err


def test_an_unreachable_api_fails_in_one_line_with_the_log_pointer(folder: Path) -> None:
    env = _env(
        folder,
        VIS_ACCESS_TOKEN="a-test-token",
        VIS_BASE_URL="http://127.0.0.1:9",
        VIS_MAX_RETRIES="1",
    )
    ran = run("sync", *RANGE, env=env, cwd=folder)
    _one_clear_line(ran, 1, "Connection refused", lines=2)
    assert "--verbose" in ran.err_lines[1] and "run " in ran.err_lines[1]
    verbose = run("--verbose", "sync", *RANGE, env=env, cwd=folder)
    assert verbose.code == 1 and 'File "' in verbose.err and len(verbose.err_lines) > 3


def test_a_wrong_token_fails_in_one_line(sim: SimulatorProcess, folder: Path) -> None:
    env = _env(folder, sim, VIS_ACCESS_TOKEN="not-the-token")
    ran = run("sync", *RANGE, env=env, cwd=folder)
    _one_clear_line(ran, 1, "access token was rejected")
    assert "not-the-token" not in ran.err + ran.out


def _truth(sim: SimulatorProcess) -> list[dict]:
    start, _ = local_day_window(FIRST, "UTC")
    _, end = local_day_window(LAST, "UTC")
    return sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))


def _stopped_mid_sync(sim: SimulatorProcess, folder: Path, stop: signal.Signals) -> Ran:
    """A sync stopped by ``stop`` while its pages come slowly."""
    sim.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=0.5)
    try:
        child = _cli("sync", *RANGE, env=_env(folder, sim), cwd=folder)
        deadline = time.monotonic() + 60
        while sim.control.stats()["total"] < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        child.send_signal(stop)
        out, err = child.communicate(timeout=STEP_SECONDS)
    finally:
        sim.control.reset_behaviour()
        sim.control.reset_stats()
    return Ran(child.returncode, out, err)


def test_ctrl_c_exits_130_in_one_line(sim: SimulatorProcess, folder: Path) -> None:
    ran = _stopped_mid_sync(sim, folder, signal.SIGINT)
    _one_clear_line(ran, 130, "interrupted", lines=1)


def test_a_killed_run_shows_as_failed_and_status_says_so(
    sim: SimulatorProcess, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = _stopped_mid_sync(sim, folder, signal.SIGKILL)
    assert ran.code == -signal.SIGKILL
    status = run("status", env=_env(folder, sim), cwd=folder)
    _one_clear_line(status, 1, "the process running it died", lines=1)
    monkeypatch.setenv("DAGSTER_HOME", str(folder / "dagster_home"))
    with dg.DagsterInstance.from_config(str(folder / "dagster_home")) as instance:
        (record,) = instance.get_runs()
    assert record.status == dg.DagsterRunStatus.FAILURE
    # A plain sync afterwards brings every day back, equal to the truth.
    assert run("sync", *RANGE, env=_env(folder, sim), cwd=folder).code == 0
    warehouse = folder / "data" / "warehouse.sqlite"
    assert_same_events(warehouse_events(warehouse), expected_events(_truth(sim), "UTC"))
    assert run("status", env=_env(folder, sim), cwd=folder).code == 0


def test_a_damaged_warehouse_fails_status_and_rebuild_brings_it_back(
    sim: SimulatorProcess, folder: Path
) -> None:
    env = _env(folder, sim)
    assert run("sync", *RANGE, env=env, cwd=folder).code == 0
    assert run("status", env=env, cwd=folder).code == 0
    warehouse = folder / "data" / "warehouse.sqlite"
    catalog_size = warehouse.stat().st_size
    events = folder / "data" / "warehouse-data" / "vis" / "events"
    damaged = max(events.rglob("*.parquet"), key=lambda p: p.stat().st_size)
    with damaged.open("r+b") as handle:  # a bad disk: 4 KB in the middle of the data
        handle.seek(damaged.stat().st_size // 2 // 4096 * 4096)
        handle.write(os.urandom(4096))
    _one_clear_line(run("status", env=env, cwd=folder), 1, "cannot be read", lines=1)
    rebuilt = run("sync", "--rebuild", *RANGE, env=env, cwd=folder)
    assert rebuilt.code == 0, rebuilt.err
    assert_same_events(warehouse_events(warehouse), expected_events(_truth(sim), "UTC"))
    assert run("status", env=env, cwd=folder).code == 0
    # The damaged warehouse is kept whole beside the new one: its catalog and its data.
    kept = {
        p.name.split(".broken-")[0]: p for p in (folder / "data").iterdir() if ".broken-" in p.name
    }
    assert {"warehouse.sqlite", "warehouse-data"} <= kept.keys()
    assert kept.keys() <= {
        "warehouse.sqlite",
        "warehouse-data",
        "warehouse.sqlite-wal",
        "warehouse.sqlite-shm",
    }
    assert kept["warehouse.sqlite"].stat().st_size == catalog_size
    assert (kept["warehouse-data"] / damaged.relative_to(damaged.parents[4])).exists()


def test_export_and_status_need_no_write_access(sim: SimulatorProcess, folder: Path) -> None:
    env = _env(folder, sim)
    assert run("sync", *RANGE, env=env, cwd=folder).code == 0
    data = folder / "data"
    before = sorted(p.name for p in data.iterdir())
    out = folder.parent / "out"
    out.mkdir()
    data.chmod(0o555)
    (data / "warehouse.sqlite").chmod(0o444)
    try:
        assert run("status", env=env, cwd=folder).code == 0
        args = ["export", "daily_call_volume", *RANGE, "--format", "csv"]
        exported = run(*args, "--output", str(out / "v.csv"), env=env, cwd=folder)
        assert exported.code == 0, exported.err
    finally:
        data.chmod(0o755)
    assert sorted(p.name for p in data.iterdir()) == before
    assert (out / "v.csv").read_text(encoding="utf-8").startswith("local_date")


def test_users_import_names_users_and_refuses_a_bad_file_in_one_line(
    sim: SimulatorProcess, folder: Path
) -> None:
    env = _env(folder, sim)
    people = folder / "people.csv"
    people.write_text("user_id,name\n1,Ann\nx,Bob\n", encoding="utf-8")
    _one_clear_line(run("users", "import", str(people), env=env, cwd=folder), 2, "line 3")
    people.write_text("user_id,name\n1,Ann\n2,Bob\n", encoding="utf-8")
    ran = run("users", "import", str(people), env=env, cwd=folder)
    assert ran.code == 0 and "2 users" in ran.out


def test_help_names_every_command_the_date_format_and_the_settings() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "vis_pipeline.cli", "--help"], capture_output=True, text=True
    )
    for word in ("simulate", "sync", "status", "export", "users", "demo", "ui", "YYYY-MM-DD"):
        assert word in ran.stdout
    assert "VIS_ACCESS_TOKEN" in ran.stdout and "VIS_TIMEZONE" in ran.stdout
    assert "``" not in ran.stdout


def _sync_with_stderr_on(sim: SimulatorProcess, folder: Path, stderr: int) -> int:
    command = [sys.executable, "-m", "vis_pipeline.cli", "sync", *RANGE, "--full"]
    child = subprocess.Popen(
        command, env=_env(folder, sim), cwd=folder, stdout=subprocess.DEVNULL, stderr=stderr
    )
    return child.wait(timeout=STEP_SECONDS)


def test_progress_shows_on_a_terminal_and_not_in_a_file(
    sim: SimulatorProcess, folder: Path
) -> None:
    leader, follower = pty.openpty()
    try:
        assert _sync_with_stderr_on(sim, folder, follower) == 0
        os.close(follower)
        shown = b""
        while select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all of it was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    text = shown.decode(errors="replace")
    assert f"{DAYS.days}/{DAYS.days} days" in text and "events/s" in text
    logged = folder / "sync.log"
    with logged.open("w") as log:
        assert _sync_with_stderr_on(sim, folder, log.fileno()) == 0
    assert logged.read_text() == ""
