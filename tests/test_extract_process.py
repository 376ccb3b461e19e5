"""Extraction in a child process: the same windows as in-process, errors and logs carried back."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psutil
import pytest
from conftest import SMALL

from vis_pipeline.client import ClientSettings, VISAuthError, VISClient
from vis_pipeline.extract import WindowResult
from vis_pipeline.extract_process import ExtractionProcessError, iter_windows_in_child
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.simulator.process import SimulatorProcess

FIRST = datetime.combine(date.fromisoformat(SMALL.start), datetime.min.time(), UTC)
WINDOWS = [(FIRST + timedelta(days=d), FIRST + timedelta(days=d + 1)) for d in range(SMALL.days)]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _settings(sim: SimulatorProcess, **changes: Any) -> ClientSettings:
    settings = VISClient(sim.base_url, sim.token).settings
    assert settings is not None
    return replace(settings, **changes)


def _same(result: WindowResult) -> WindowResult:
    return result


def _extraction_children() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children()
        if "vis_pipeline.extract_process" in " ".join(child.cmdline())
    ]


def test_windows_from_the_child_equal_the_truth_and_the_in_process_extraction(
    fresh_simulator: SimulatorProcess,
) -> None:
    sim = fresh_simulator
    from_child = list(iter_windows_in_child(_settings(sim), WINDOWS, _same))
    with VISClient(sim.base_url, sim.token) as client:
        in_process = list(client.iter_windows(WINDOWS))
    assert [r.events for r in from_child] == [r.events for r in in_process]
    assert [r.stats.window_count for r in from_child] == [r.stats.window_count for r in in_process]
    for (start, end), result in zip(WINDOWS, from_child, strict=True):
        truth = sim.control.truth(_ms(start), _ms(end))
        assert sorted(e["id"] for e in result.events) == sorted(e["id"] for e in truth)
        assert (result.start, result.end) == (start, end)


def test_then_runs_in_the_calling_process(fresh_simulator: SimulatorProcess) -> None:
    pids = list(iter_windows_in_child(_settings(fresh_simulator), WINDOWS, lambda _: os.getpid()))
    assert pids == [os.getpid()] * len(WINDOWS)


def test_a_refused_token_raises_the_clients_own_error_without_the_token(
    fresh_simulator: SimulatorProcess,
) -> None:
    secret = "not-the-token-3f9a1c"
    with pytest.raises(VISAuthError) as caught:
        list(iter_windows_in_child(_settings(fresh_simulator, token=secret), WINDOWS, _same))
    assert caught.value.status == 401
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert not _extraction_children()


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
    fresh_simulator: SimulatorProcess,
) -> None:
    windows = iter_windows_in_child(_settings(fresh_simulator), WINDOWS, _same)
    next(windows)
    (child,) = _extraction_children()
    token = fresh_simulator.token
    assert token not in " ".join(child.cmdline())
    assert all(token not in value for value in child.environ().values())
    windows.close()


def test_leaving_early_stops_the_child(fresh_simulator: SimulatorProcess) -> None:
    windows = iter_windows_in_child(_settings(fresh_simulator), WINDOWS, _same)
    next(windows)
    (child,) = _extraction_children()
    windows.close()
    assert not child.is_running()


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
