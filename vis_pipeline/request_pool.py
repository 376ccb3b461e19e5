"""A fixed pool of request threads that serves the most urgent request first.

Extraction sends every HTTP request through one such pool, so at most ``workers`` requests are
in flight whatever the number of windows being worked on, and a count that decides what to
fetch next never waits behind another window's pages.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

_T = TypeVar("_T")

URGENT = 0
"""Pool lane of counts and probes: small requests that decide what to fetch next."""

BULK = 1
"""Pool lane of pages."""

_STOP = (2, 0)


class PriorityPool:
    """A fixed pool of worker threads taking the most urgent task first.

    Tasks are ordered by ``(lane, window sequence)``, then by submission: a count never waits
    behind another window's pages, and the window the caller waits for is fetched first. So the
    workers stay busy across window boundaries without ever exceeding ``workers`` requests.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[Any, ...]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: tuple[int, int], call: Callable[[], _T]) -> Future[_T]:
        """Run ``call`` on a worker as soon as nothing more urgent is waiting."""
        future: Future[_T] = Future()
        with self._lock:
            if self._stopped:
                raise RuntimeError("the client is closed")
            self._queue.put((priority, next(self._order), future, call))
        return future

    def _work(self) -> None:
        while True:
            priority, _, future, call = self._queue.get()
            if priority == _STOP:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Cancel what has not started, let running tasks finish, stop the workers."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            while True:
                try:
                    _, _, future, _ = self._queue.get_nowait()
                except queue.Empty:
                    break
                future.cancel()
            for _ in self._threads:
                self._queue.put((_STOP, next(self._order), None, None))
        for thread in self._threads:
            thread.join()
