"""The retry policy and budget, on their own: which failures repeat, and how long to wait."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from vis_pipeline.errors import VISRetriesExhausted
from vis_pipeline.retry import (
    DEFAULT_RETRY_AFTER_CAP,
    BodyError,
    RetryBudget,
    RetryPolicy,
    parse_retry_after,
)


def _policy(**overrides: object) -> RetryPolicy:
    """A policy whose jitter always picks the top of its range, so delays are exact."""
    return RetryPolicy(random=lambda: 1.0, **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert RetryPolicy().retries_status(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 422, 501])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert not RetryPolicy().retries_status(status)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.WriteError("broken pipe"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.PoolTimeout("no connection"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message"),
        BodyError("unparsable body"),
    ],
)
def test_transient_failures_are_retried(exc: Exception) -> None:
    assert RetryPolicy().retries_exception(exc)


@pytest.mark.parametrize(
    "exc",
    [ValueError("bug"), httpx.UnsupportedProtocol("ftp"), KeyError("x"), RuntimeError("closed")],
)
def test_programming_errors_are_not_retried(exc: Exception) -> None:
    assert not RetryPolicy().retries_exception(exc)


def test_non_idempotent_requests_repeat_only_when_never_sent() -> None:
    policy = RetryPolicy()
    assert policy.retries_exception(httpx.ConnectError("refused"), idempotent=False)
    assert not policy.retries_exception(httpx.ReadTimeout("timed out"), idempotent=False)
    assert not policy.retries_exception(BodyError("garbage"), idempotent=False)


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = _policy(base=0.5, cap=3.0)
    assert [policy.delay_for(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_is_full_jitter() -> None:
    draws = iter([0.0, 0.25, 0.999])
    policy = RetryPolicy(base=1.0, cap=100.0, random=lambda: next(draws))
    assert policy.delay_for(3) == 0.0
    assert policy.delay_for(3) == 1.0
    assert policy.delay_for(3) == pytest.approx(3.996)


def test_retry_after_seconds_is_honoured_instead_of_backoff() -> None:
    policy = _policy(base=10.0)
    assert policy.delay_for(1, "2") == 2.0
    assert policy.delay_for(4, "0") == 0.0
    assert policy.delay_for(1, " 1.5 ") == 1.5


def test_retry_after_is_capped() -> None:
    assert _policy().delay_for(1, "86400") == DEFAULT_RETRY_AFTER_CAP
    assert _policy(retry_after_cap=5.0).delay_for(1, "60") == 5.0


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(7.0)
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "-5"])
def test_unusable_retry_after_falls_back_to_backoff(header: str | None) -> None:
    policy = _policy(base=0.5)
    expected = 0.0 if header == "-5" else 0.5  # a negative wait means "now"
    assert policy.delay_for(1, header) == expected


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base=-1.0)


def test_policy_is_frozen_and_its_repr_is_plain() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_attempts = 3  # type: ignore[misc]
    assert "sleep" not in repr(policy)


def test_budget_counts_down_and_refuses_when_empty() -> None:
    budget = RetryBudget(3)
    assert [budget.try_spend() for _ in range(5)] == [True, True, True, False, False]
    assert budget.spent == 3
    assert budget.remaining == 0


def test_ratio_budget_grows_with_requests() -> None:
    budget = RetryBudget(100, ratio=0.5, floor=1)
    assert budget.try_spend()
    assert not budget.try_spend()
    for _ in range(10):
        budget.record_request()
    assert budget.remaining == 5  # 1 + 0.5 * 10, one spent
    for _ in range(1000):
        budget.record_request()
    assert budget.remaining == 99  # capped by max_retries


def test_budget_is_thread_safe() -> None:
    budget = RetryBudget(1000)
    granted: list[int] = []
    lock = threading.Lock()

    def spend() -> None:
        mine = sum(budget.try_spend() for _ in range(500))
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 1000
    assert budget.spent == 1000


def test_new_budget_follows_the_policy() -> None:
    policy = RetryPolicy(budget=2)
    first, second = policy.new_budget(), policy.new_budget()
    assert first.try_spend() and first.try_spend() and not first.try_spend()
    assert second.remaining == 2


def test_exhausted_error_names_operation_window_and_page() -> None:
    window = (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC))
    error = VISRetriesExhausted("listEvents", 6, "RemoteProtocolError: cut").located(window, 3)
    text = str(error)
    assert "listEvents" in text and "6 attempt" in text and "RemoteProtocolError" in text
    assert "2026-01-05T00:00:00+00:00" in text and "page 3" in text
    assert error.window == window and error.page == 3
    budget = VISRetriesExhausted("getUser", 2, "HTTP 500", budget_exhausted=True)
    assert "budget" in str(budget)
