"""An inter-process lock that queues the writers of a warehouse whose catalog takes one at a time.

A SQLite catalog takes one committing writer at a time, and two syncs interleaving their days
would only fight over it. Writers (a sync, a drain, a user import) therefore take this lock
for as long as they hold the warehouse open for writing, and a second one waits its turn,
saying once what it waits for, instead of failing. Readers never take it: DuckLake gives them
a snapshot whatever the writer does. A PostgreSQL catalog takes concurrent writers and needs
no lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_TIMEOUT_SECONDS: float | None = None
"""How long a writer waits for another: without limit by default, as the other one ends by
itself (a dead holder's lock is released by the system)."""

WAIT_REPORT_SECONDS = 60.0
"""How often a waiting writer says again that it still waits."""

_POLL_SECONDS = 0.05

_log = logging.getLogger(__name__)


class WarehouseBusy(TimeoutError):
    """Another process held the warehouse for longer than the caller's timeout."""


def _holder(handle_path: Path) -> str:
    """Who holds the lock, as its holder wrote it (empty when unknown)."""
    try:
        return handle_path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


_reported: set[Path] = set()
"""Locks this process has already said it waits for: a run takes the lock once per step, and
the user needs to be told once, not at every step."""


def _say_waiting(path: Path, waited: float) -> None:
    if waited < WAIT_REPORT_SECONDS and path in _reported:
        return
    _reported.add(path)
    holder = _holder(path) or "another writer"
    _log.warning(
        "waiting for the warehouse: %s is writing to it (waited %.0f s; this run goes on "
        "when it ends)",
        holder,
        waited,
    )


@contextmanager
def warehouse_lock(
    path: Path | None,
    timeout: float | None = LOCK_TIMEOUT_SECONDS,
    on_wait: Callable[[Path, float], None] = _say_waiting,
) -> Iterator[None]:
    """Hold the write lock file ``path`` for the ``with`` block; None: no lock is needed.

    While another process holds it, ``on_wait`` is told at once and then every
    ``WAIT_REPORT_SECONDS``; with a ``timeout``, ``WarehouseBusy`` ends the wait.
    """
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    next_report = started
    with path.open("a+", encoding="utf-8") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if timeout is not None and waited > timeout:
                    raise WarehouseBusy(
                        f"the warehouse stayed locked by {_holder(path) or 'another writer'} "
                        f"for {timeout:.0f} s"
                    ) from None
                if time.monotonic() >= next_report:
                    on_wait(path, waited)
                    next_report += WAIT_REPORT_SECONDS
                time.sleep(_POLL_SECONDS)
        try:
            handle.truncate(0)
            handle.write(
                f"pid {os.getpid()} on {socket.gethostname()} since "
                f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n"
            )
            handle.flush()
            yield
        finally:
            handle.truncate(0)
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
