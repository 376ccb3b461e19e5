"""The vis-pipeline command: syncs through Dagster into a real warehouse, and clear failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from helpers import assert_same_events, expected_events, warehouse_events

from vis_pipeline import warehouse as wh
from vis_pipeline.cli import main
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import local_day_window

FORTNIGHT = SimulatorOptions(seed=5, start="2026-03-02", days=14, calls_per_day=250, users=5)
"""14 days that include the spring daylight-saving change in New York (2026-03-08)."""

FIRST = date.fromisoformat(FORTNIGHT.start)
LAST = FIRST + timedelta(days=FORTNIGHT.days - 1)


@pytest.fixture(scope="module")
def fortnight() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(FORTNIGHT) as sim:
        yield sim


@pytest.fixture
def pipeline_env(
    monkeypatch: pytest.MonkeyPatch, dagster_home: Path, warehouse_path: Path, tmp_path: Path
) -> pytest.MonkeyPatch:
    """Environment of a pipeline pointed at nothing yet: tests add the API and time zone.

    The working directory is the test's own: a ``.env`` left in the checkout by a demo would
    otherwise steer the command (and make it start again, replacing the test's process).
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIS_WAREHOUSE", str(warehouse_path))
    monkeypatch.setenv("VIS_START_DATE", "2026-01-01")
    return monkeypatch


def point_at(env: pytest.MonkeyPatch, sim: SimulatorProcess, tz: str = "UTC") -> None:
    env.setenv("VIS_BASE_URL", sim.base_url)
    env.setenv("VIS_ACCESS_TOKEN", sim.token)
    env.setenv("VIS_TIMEZONE", tz)


def truth_between(sim: SimulatorProcess, first: date, last: date, tz: str) -> list[dict]:
    start, _ = local_day_window(first, tz)
    _, end = local_day_window(last, tz)
    return sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_sync_of_a_fortnight_equals_the_truth_and_a_rerun_changes_nothing(
    fortnight: SimulatorProcess,
    pipeline_env: pytest.MonkeyPatch,
    warehouse_path: Path,
    tz: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_at(pipeline_env, fortnight, tz)
    args = ["sync", "--from", FIRST.isoformat(), "--to", LAST.isoformat()]
    assert main(args) == 0
    truth = truth_between(fortnight, FIRST, LAST, tz)
    first = warehouse_events(warehouse_path)
    assert_same_events(first, expected_events(truth, tz))

    assert main(args) == 0
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, tz))
    with wh.connect(warehouse_path, read_only=True) as conn:
        statuses = conn.execute(
            "SELECT status, count(*) FROM vis.sync_windows GROUP BY ALL ORDER BY 1"
        ).fetchall()
    # The second run fetched again only the day whose calls were still live at "now".
    live_days = {row["local_date"] for row in first.to_dict("records") if not row["is_final"]}
    assert dict(statuses) == {
        "loaded": FORTNIGHT.days + len(live_days),
        "settled": FORTNIGHT.days - len(live_days),
    }
    assert "loaded" in capsys.readouterr().out

    assert main(["status"]) == 0
    assert str(FORTNIGHT.days) in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["sync", "--from", "2026-02-30", "--to", "2026-03-01"],
        ["sync", "--from", "2026-03-05", "--to", "2026-03-01"],
        ["sync", "--from", "2026-03-01", "--to", "2026-03-02", "--frobnicate"],
        ["sync", "--from", "2025-01-01", "--to", "2025-01-02"],
        ["sync"],
    ],
    ids=["bad-date", "to-before-from", "unknown-option", "before-start-date", "missing-dates"],
)
def test_usage_errors_exit_2_with_a_message_and_no_traceback(
    pipeline_env: pytest.MonkeyPatch, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        code = main(args)
        raise SystemExit(code)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() and "Traceback" not in err


def test_an_unreachable_api_fails_with_a_clear_message(
    pipeline_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline_env.setenv("VIS_BASE_URL", "http://127.0.0.1:9/t/vbc.prod/vis/v1")
    pipeline_env.setenv("VIS_ACCESS_TOKEN", "t0ken-that-must-not-leak")
    pipeline_env.setenv("VIS_MAX_RETRIES", "1")
    pipeline_env.setenv("VIS_TIMEOUT_SECONDS", "1")
    assert main(["sync", "--from", "2026-03-02", "--to", "2026-03-02"]) == 1
    captured = capsys.readouterr()
    assert "sync failed" in captured.err
    assert "t0ken-that-must-not-leak" not in captured.err + captured.out


def test_a_wrong_token_fails_at_once_without_leaking_it(
    fortnight: SimulatorProcess,
    pipeline_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_at(pipeline_env, fortnight)
    pipeline_env.setenv("VIS_ACCESS_TOKEN", "wrong-secret-token")
    fortnight.control.reset_stats()
    assert main(["sync", "--from", FIRST.isoformat(), "--to", FIRST.isoformat()]) == 1
    captured = capsys.readouterr()
    assert "401" in captured.err or "token" in captured.err.lower()
    assert "wrong-secret-token" not in captured.err + captured.out
    assert fortnight.control.stats()["total"] <= 2


def test_a_sync_killed_midway_then_run_again_equals_the_truth(
    pipeline_env: pytest.MonkeyPatch,
    warehouse_path: Path,
) -> None:
    options = replace(FORTNIGHT, seed=9, calls_per_day=1500)
    with SimulatorProcess(options) as sim:
        point_at(pipeline_env, sim)
        # Slow pages so the kill lands while windows are still being fetched and written.
        sim.control.set_behaviour(probability=0.2, kinds=["slow"], slow_seconds=0.3, seed=3)
        args = ["sync", "--from", FIRST.isoformat(), "--to", LAST.isoformat()]
        child = subprocess.Popen(
            [sys.executable, "-m", "vis_pipeline.cli", *args],
            env=dict(os.environ),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while (
                sim.control.stats()["requests"].get("listEvents") is None
                or sum(sim.control.stats()["requests"]["listEvents"].values()) < 40
            ):
                assert child.poll() is None, "the sync finished before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        sim.control.reset_behaviour()
        assert main(args) == 0
        truth = truth_between(sim, FIRST, LAST, "UTC")
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, "UTC"))


def project_free_environment(**values: str) -> dict[str, str]:
    """This process's environment without any project or Dagster setting, plus ``values``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("VIS_", "DAGSTER_"))}
    return {**kept, **values}


def test_the_env_file_gives_the_settings_and_the_token_and_wins_as_in_dagster(
    fortnight: SimulatorProcess, tmp_path: Path
) -> None:
    warehouse = tmp_path / "from-env-file.sqlite"
    (tmp_path / ".env").write_text(
        f"VIS_BASE_URL={fortnight.base_url}\n"
        f"VIS_ACCESS_TOKEN={fortnight.token}\n"
        f"VIS_WAREHOUSE={warehouse}\n"
        "VIS_START_DATE=2026-01-01\n"
        f"DAGSTER_HOME={tmp_path / 'home'}\n"
    )
    # The environment says otherwise: the file wins, as it does for `dagster dev`.
    environment = project_free_environment(VIS_WAREHOUSE=str(tmp_path / "not-this.sqlite"))
    args = ["sync", "--from", FIRST.isoformat(), "--to", FIRST.isoformat()]
    done = subprocess.run(
        [sys.executable, "-m", "vis_pipeline.cli", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "not-this.sqlite").exists()
    assert (tmp_path / "home" / "dagster.yaml").exists()
    truth = truth_between(fortnight, FIRST, FIRST, "UTC")
    assert_same_events(warehouse_events(warehouse), expected_events(truth, "UTC"))


def test_the_demo_will_not_replace_an_env_file_it_did_not_write(
    pipeline_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = "VIS_BASE_URL=https://example.invalid/vis\nVIS_ACCESS_TOKEN=real-secret\n"
    (tmp_path / ".env").write_text(own)
    assert main(["demo", "--days", "1", "--calls-per-day", "10"]) == 2
    assert (tmp_path / ".env").read_text() == own
    err = capsys.readouterr().err
    assert ".env" in err and "real-secret" not in err


def test_a_schedule_cron_that_is_not_one_is_refused_naming_the_variable(
    pipeline_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline_env.setenv("VIS_SCHEDULE_CRON", "every morning")
    assert main(["status"]) == 2
    assert "VIS_SCHEDULE_CRON" in capsys.readouterr().err


def test_ui_becomes_dagster_dev_on_the_projects_home_with_the_same_settings(
    pipeline_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pipeline_env.delenv("DAGSTER_HOME")
    pipeline_env.setenv("VIS_TIMEZONE", "America/New_York")
    became: dict[str, object] = {}

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        became.update(path=path, argv=argv, env=env)

    pipeline_env.setattr(os, "execve", execve)
    # Nor may it reset the test process's own handling of Ctrl-C.
    pipeline_env.setattr(signal, "signal", lambda *_: None)
    main(["ui", "--port", "3999"])
    argv, env = became["argv"], became["env"]
    assert isinstance(argv, list) and isinstance(env, dict)
    dev = ["-m", "dagster", "dev", "-m", "vis_pipeline.defs", "--host", "127.0.0.1"]
    assert argv[1:] == [*dev, "--port", "3999"]
    # The project's own home, seeded with its instance settings (the run queue).
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster_home")
    assert "QueuedRunCoordinator" in (tmp_path / "dagster_home" / "dagster.yaml").read_text()
    assert env["VIS_TIMEZONE"] == "America/New_York"
