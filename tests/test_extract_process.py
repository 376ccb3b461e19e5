"""Extraction in a child process: the same windows as in-process, errors and logs carried back."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import SMALL

from vis_pipeline import sync
from vis_pipeline.client import ClientSettings, VISClient
from vis_pipeline.errors import ExtractionProcessError, VISAuthError
from vis_pipeline.extract import ExtractOptions, WindowExtractor, WindowResult
from vis_pipeline.extract_process import ExtractionProcess, _portable
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.warehouse import connect

FIRST = datetime.combine(date.fromisoformat(SMALL.start), datetime.min.time(), UTC)
WINDOWS = [(FIRST + timedelta(days=d), FIRST + timedelta(days=d + 1)) for d in range(SMALL.days)]
MANY_WINDOWS = WINDOWS * 5
"""More windows than the pipe and the reader's queue hold, so that after the first one the child
is still at work (blocked on a full pipe), never already finished and gone."""


def iter_windows_in_child(
    settings: ClientSettings, windows: list[tuple[datetime, datetime]], then: Any
) -> Iterator[Any]:
    """The windows through a fresh extraction process, closed when the loop ends."""
    with ExtractionProcess(settings, ExtractOptions()) as process:
        yield from process.iter_windows(windows, then)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _settings(sim: SimulatorProcess, **changes: Any) -> ClientSettings:
    settings = VISClient(sim.base_url, sim.token).settings
    assert settings is not None
    return replace(settings, **changes)


def _same(result: WindowResult) -> WindowResult:
    return result


def _extraction_children() -> list[psutil.Process]:
    return [child for child in psutil.Process().children() if _is_extraction(child)]


def _is_extraction(child: psutil.Process) -> bool:
    """Whether ``child`` is a live extraction process (an exited child some other test left
    unreaped has no command line to read)."""
    try:
        return "vis_pipeline.extract_process" in " ".join(child.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return False


def test_windows_from_the_child_equal_the_truth_and_the_in_process_extraction(
    fresh_simulator: SimulatorProcess,
) -> None:
    sim = fresh_simulator
    from_child = list(iter_windows_in_child(_settings(sim), WINDOWS, _same))
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        in_process = list(extractor.iter_windows(WINDOWS))
    assert [r.events for r in from_child] == [r.events for r in in_process]
    assert [r.stats.window_count for r in from_child] == [r.stats.window_count for r in in_process]
    for (start, end), result in zip(WINDOWS, from_child, strict=True):
        truth = sim.control.truth(_ms(start), _ms(end))
        assert sorted(e["id"] for e in result.events) == sorted(e["id"] for e in truth)
        assert (result.start, result.end) == (start, end)


def test_then_runs_in_the_calling_process(fresh_simulator: SimulatorProcess) -> None:
    pids = list(iter_windows_in_child(_settings(fresh_simulator), WINDOWS, lambda _: os.getpid()))
    assert pids == [os.getpid()] * len(WINDOWS)


def test_a_refused_token_raises_the_clients_own_error_with_the_childs_traceback(
    fresh_simulator: SimulatorProcess,
) -> None:
    secret = "not-the-token-3f9a1c"
    with pytest.raises(VISAuthError) as caught:
        list(iter_windows_in_child(_settings(fresh_simulator, token=secret), WINDOWS, _same))
    assert caught.value.status == 401
    (note,) = caught.value.__notes__
    assert note.startswith("raised in the extraction process") and "Traceback" in note
    assert all(secret not in text for text in (str(caught.value), repr(caught.value), note))
    assert not _extraction_children()


class _TwoPartError(Exception):
    """An exception whose pickled form cannot be rebuilt (its __init__ wants two arguments)."""

    def __init__(self, what: str, secret: str) -> None:
        super().__init__(f"{what} with {secret}")


def test_an_error_that_cannot_cross_the_pipe_is_described_without_secrets() -> None:
    portable = _portable(_TwoPartError("broke", "s3cret-token"), "s3cret-token")
    crossed = pickle.loads(pickle.dumps(portable))
    assert type(crossed) is ExtractionProcessError
    assert "_TwoPartError: broke with [redacted]" in str(crossed)
    assert "s3cret-token" not in str(crossed) + "".join(crossed.__notes__)


def test_retries_in_the_child_are_logged_by_the_caller(
    fresh_simulator: SimulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    sim = fresh_simulator
    sim.control.set_behaviour(probability=0.2, kinds=["500"], seed=5)
    settings = _settings(sim, retry=RetryPolicy(base=0.0, max_attempts=20))
    with caplog.at_level(logging.INFO, logger="vis_pipeline"):
        results = list(iter_windows_in_child(settings, WINDOWS, _same))
    retries = sum(r.stats.retries for r in results)
    logged = [
        r for r in caplog.records if r.name == "vis_pipeline.client" and "retrying" in r.message
    ]
    assert retries > 0 and len(logged) == retries
    assert sum(len(r.events) for r in results) == len(
        sim.control.truth(*map(_ms, (WINDOWS[0][0], WINDOWS[-1][1])))
    )
    assert all(sim.token not in record.getMessage() for record in caplog.records)


def test_the_token_reaches_the_child_only_through_its_pipe(
    fresh_simulator: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = fresh_simulator.token
    # As under the CLI and Dagster, the token is in this process's environment.
    monkeypatch.setenv("VIS_ACCESS_TOKEN", token)
    monkeypatch.setenv("SOME_URL_WITH_IT", f"https://user:{token}@example.invalid/")
    with closing(iter_windows_in_child(_settings(fresh_simulator), MANY_WINDOWS, _same)) as windows:
        next(windows)
        (child,) = _extraction_children()
        assert token not in " ".join(child.cmdline())
        environment = child.environ()
    assert "VIS_ACCESS_TOKEN" not in environment and "SOME_URL_WITH_IT" not in environment
    assert all(token not in value for value in environment.values())


def _reader_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "vis-extract-reader"]


def test_leaving_early_stops_the_child_and_the_reader(fresh_simulator: SimulatorProcess) -> None:
    windows = iter_windows_in_child(_settings(fresh_simulator), MANY_WINDOWS, _same)
    next(windows)
    (child,) = _extraction_children()
    assert _reader_threads()
    windows.close()
    assert not child.is_running() and not _reader_threads()


_ORPHANED_PARENT = """
import os, sys, time
from datetime import datetime, timedelta, UTC
import psutil
from vis_pipeline.client import VISClient
from vis_pipeline.extract import ExtractOptions
from vis_pipeline.extract_process import ExtractionProcess
start = datetime.fromisoformat(sys.argv[2])
windows = [(start + timedelta(days=d), start + timedelta(days=d + 1)) for d in range(3)]
settings = VISClient(sys.argv[1], os.environ["VIS_ACCESS_TOKEN"]).settings
process = ExtractionProcess(settings, ExtractOptions())
results = process.iter_windows(windows, lambda result: time.sleep(60))
next(results, None)
"""


def test_a_child_whose_caller_is_killed_stops_at_once(fresh_simulator: SimulatorProcess) -> None:
    sim = fresh_simulator
    # Every request fails: without its caller, the child would go on retrying for a minute.
    sim.control.set_behaviour(probability=1.0, kinds=["500"])
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHANED_PARENT, sim.base_url, FIRST.isoformat()],
        env={**os.environ, "VIS_ACCESS_TOKEN": sim.token},
    )
    try:
        deadline = time.monotonic() + 30
        children: list[psutil.Process] = []
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            children = [
                c
                for c in psutil.Process(parent.pid).children()
                if "vis_pipeline.extract_process" in " ".join(c.cmdline())
            ]
        assert children, "the caller never started its extraction process"
        time.sleep(0.5)  # the child is at work, retrying
        parent.kill()
        parent.wait()
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, "the orphaned extraction process kept running"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_failed_load_leaves_no_process_or_thread_behind(
    fresh_simulator: SimulatorProcess, warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_load = sync.load_window
    loads: list[date] = []

    def fail_on_the_second_day(conn: Any, batch: Any, window: Any) -> Any:
        loads.append(window.local_date)
        if len(loads) == 2:
            raise RuntimeError("the disk is full")
        return real_load(conn, batch, window)

    monkeypatch.setattr(sync, "load_window", fail_on_the_second_day)
    days = [window[0].date() for window in WINDOWS]
    with (
        VISClient(fresh_simulator.base_url, fresh_simulator.token) as client,
        WindowExtractor(client) as extractor,
        pytest.raises(RuntimeError, match="the disk is full"),
    ):
        sync.sync_days(extractor, lambda: connect(warehouse_path), days, "UTC")
    assert not _extraction_children() and not _reader_threads()


def test_an_error_in_then_reaches_the_caller_and_stops_the_child(
    fresh_simulator: SimulatorProcess,
) -> None:
    def refuse(result: WindowResult) -> None:
        raise LookupError(f"refused {result.start:%Y-%m-%d}")

    with pytest.raises(LookupError, match=f"refused {FIRST:%Y-%m-%d}"):
        list(iter_windows_in_child(_settings(fresh_simulator), WINDOWS, refuse))
    assert not _extraction_children()


def test_a_child_that_dies_is_reported_not_waited_for(fresh_simulator: SimulatorProcess) -> None:
    def kill_the_child(results: Iterator[WindowResult]) -> None:
        next(results)
        for child in _extraction_children():
            child.kill()
        list(results)

    # The child writes ahead of the caller: slow pages make sure it is still working when killed.
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=0.05)
    with pytest.raises(ExtractionProcessError, match="exit code"):
        kill_the_child(iter_windows_in_child(_settings(fresh_simulator), WINDOWS, _same))
