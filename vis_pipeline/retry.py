"""When and how long to wait before asking the VIS API again.

A frozen :class:`RetryPolicy` says which answers and failures are worth repeating and how long
to wait (exponential backoff with full jitter, or the server's ``Retry-After``, capped). A
:class:`RetryBudget`, shared by every request of one client, bounds the total number of retries
so a sick API cannot turn one sync into a retry storm.
"""

from __future__ import annotations

import random as _random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from vis_pipeline.settings import DEFAULTS

RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses that describe a passing condition (timeout, throttling, a sick gateway)."""

DEFAULT_MAX_ATTEMPTS = DEFAULTS.max_retries + 1
"""Attempts per request, the first included, before giving up on it (VIS_MAX_RETRIES + 1)."""

DEFAULT_BACKOFF_BASE = 0.25
"""Seconds: the backoff ceiling after the first failure (doubled after each further one)."""

DEFAULT_BACKOFF_CAP = 8.0
"""Seconds: the largest backoff ceiling, however many failures came before."""

DEFAULT_RETRY_AFTER_CAP = 30.0
"""Seconds: the longest ``Retry-After`` honoured, so one header cannot stall a sync for hours."""

DEFAULT_RETRY_BUDGET = 1000
"""Retries one client may spend in its lifetime, across all its requests and threads."""

DEFAULT_BUDGET_FLOOR = 20
"""Retries always allowed by a ratio budget, however few requests were made so far."""


class BodyError(Exception):
    """A success answer whose body is not the JSON expected (cut short or garbage)."""


RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.DecodingError,
    BodyError,
)
"""Failures of one exchange that say nothing about the next one."""

UNSENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
"""Failures that happen before the request reaches the server: safe to repeat for any method."""


class RetryBudget:
    """Retries left to one client: a fixed number, or a fraction of the requests made so far.

    Thread-safe; every request reports itself with :meth:`record_request` and every retry asks
    :meth:`try_spend` first.
    """

    def __init__(
        self,
        max_retries: int = DEFAULT_RETRY_BUDGET,
        *,
        ratio: float | None = None,
        floor: int = DEFAULT_BUDGET_FLOOR,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if ratio is not None and ratio < 0:
            raise ValueError("ratio must be >= 0")
        self._max = max_retries
        self._ratio = ratio
        self._floor = floor
        self._lock = threading.Lock()
        self._requests = 0
        self._spent = 0

    def _allowance(self) -> int:
        if self._ratio is None:
            return self._max
        return min(self._max, self._floor + int(self._ratio * self._requests))

    def record_request(self) -> None:
        """Count one request sent (retries included)."""
        with self._lock:
            self._requests += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when none is left."""
        with self._lock:
            if self._spent >= self._allowance():
                return False
            self._spent += 1
            return True

    @property
    def spent(self) -> int:
        """Retries taken so far."""
        with self._lock:
            return self._spent

    @property
    def remaining(self) -> int:
        """Retries still allowed right now."""
        with self._lock:
            return max(0, self._allowance() - self._spent)

    def __repr__(self) -> str:
        return f"RetryBudget(spent={self.spent}, remaining={self.remaining})"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` value (seconds or HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN: a header no one can honour
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are repeated, how often, and how long to wait in between."""

    statuses: frozenset[int] = RETRYABLE_STATUSES
    exceptions: tuple[type[BaseException], ...] = RETRYABLE_EXCEPTIONS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base: float = DEFAULT_BACKOFF_BASE
    cap: float = DEFAULT_BACKOFF_CAP
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP
    budget: int = DEFAULT_RETRY_BUDGET
    budget_ratio: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base < 0 or self.cap < 0 or self.retry_after_cap < 0:
            raise ValueError("delays must be >= 0")

    @property
    def portable(self) -> bool:
        """Whether a copy in another process behaves the same: it sleeps and draws at random
        with the standard library's functions, not with callables of its caller's."""
        return self.sleep is time.sleep and self.random is _random.random

    def retries_status(self, status: int) -> bool:
        """Whether an answer with this status is worth asking again."""
        return status in self.statuses

    def retries_exception(self, exc: BaseException, *, idempotent: bool = True) -> bool:
        """Whether a failed exchange is worth repeating.

        A request that may have reached the server is only repeated when repeating it is
        harmless (``idempotent``); one that never left is always safe to send again.
        """
        if not isinstance(exc, self.exceptions):
            return False
        return idempotent or isinstance(exc, UNSENT_EXCEPTIONS)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff after ``attempt`` failed attempts (1-based)."""
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return self.random() * ceiling

    def delay_for(self, attempt: int, retry_after_header: str | None = None) -> float:
        """Seconds to wait after ``attempt`` failures: ``Retry-After`` (capped), else backoff."""
        honoured = parse_retry_after(retry_after_header)
        if honoured is not None:
            return min(honoured, self.retry_after_cap)
        return self.backoff(attempt)

    def new_budget(self) -> RetryBudget:
        """A fresh budget for one client."""
        return RetryBudget(self.budget, ratio=self.budget_ratio)
