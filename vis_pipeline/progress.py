"""A sync's progress on a terminal: one status line, redrawn, and nothing at all elsewhere.

The library says how far it is through the ``vis_pipeline.progress`` logger (and the client says
when it waits to retry, through ``vis_pipeline.client``); both are quiet unless someone listens.
The command listens only when its standard error is a terminal, so a log file or a pipe never
fills with progress lines.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

PROGRESS_LOGGER = "vis_pipeline.progress"
"""Where the sync reports each day it finishes."""

WATCHED = (PROGRESS_LOGGER, "vis_pipeline.client")
"""Loggers whose INFO records become the status line (the client's say when it retries)."""

_CLEAR = "\r\033[K"


class StatusLine(logging.Handler):
    """Draws each record over the previous one on a terminal line."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self._stream.write(_CLEAR + record.getMessage()[:width])
        self._stream.flush()

    def clear(self) -> None:
        """Remove the status line."""
        self._stream.write(_CLEAR)
        self._stream.flush()


@contextmanager
def on_terminal(stream: TextIO | None = None) -> Iterator[bool]:
    """Show progress on ``stream`` (default: standard error) while the block runs, if it is a
    terminal; yields whether it is."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield False
        return
    line = StatusLine(stream)
    project = logging.getLogger("vis_pipeline")
    saved = project.level
    # INFO for the project's loggers, so the extraction process sends its retry records too;
    # only the watched loggers have a handler, the others' INFO records go nowhere.
    project.setLevel(logging.INFO)
    for name in WATCHED:
        logging.getLogger(name).addHandler(line)
    try:
        yield True
    finally:
        for name in WATCHED:
            logging.getLogger(name).removeHandler(line)
        project.setLevel(saved)
        line.clear()
