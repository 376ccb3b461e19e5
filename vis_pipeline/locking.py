"""An inter-process lock around warehouse writes.

DuckDB lets one process at a time open a file for writing. Runs that overlap (a backfill launched
as separate runs, the schedule firing during a manual sync) take this lock for as long as they
hold the warehouse open for writing, so they queue for the file instead of failing on DuckDB's
lock. A sync holds it for its whole run, fetching included: it keeps one connection open so
that each day is not paid a checkpoint of its own.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_TIMEOUT_SECONDS = 600.0
"""How long a writer waits for another before giving up with a clear error."""

_POLL_SECONDS = 0.05


class WarehouseBusy(TimeoutError):
    """Another process held the warehouse for longer than the lock timeout."""


@contextmanager
def warehouse_lock(database: str | Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the write lock of ``database`` (a sibling ``.lock`` file) for the ``with`` block."""
    path = Path(f"{database}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarehouseBusy(
                        f"the warehouse {Path(database).name} stayed locked by another run "
                        f"for {timeout:.0f} s"
                    ) from None
                time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
