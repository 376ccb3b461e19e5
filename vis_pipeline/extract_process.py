"""Window extraction in a child process, streamed back to the caller one window at a time.

Fetching and parsing pages is Python work that holds the GIL, and so is normalising the windows
the caller loads: in one process each waits for the other, and a sync runs at the speed of one
core. A child process gives the HTTP work an interpreter of its own. It runs the same
``VISClient.iter_windows`` and writes each finished window to a pipe; a write blocks while the
caller is behind, so only a few windows are ever held, whatever the range.

The child learns the client's settings, token included, from its standard input: the token never
appears on a command line or in the environment. Its log records and its errors cross the pipe
and are raised or logged again in the caller, with their own types and logger names.

    frames, child to caller: 8-byte little-endian length, then a pickled tuple
    ("log", level, logger name, message) | ("window", WindowResult without events, events JSON)
    | ("error", exception) | ("done",)
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from vis_pipeline.client import ClientSettings
from vis_pipeline.extract import WindowResult
from vis_pipeline.retry import VISError

_T = TypeVar("_T")

Window = tuple[datetime, datetime]

_LENGTH = struct.Struct("<Q")
"""The frame header: the pickled frame's length in bytes."""

_PROTOCOL = pickle.HIGHEST_PROTOCOL
"""Both ends run the same interpreter, so the newest pickle protocol is always understood."""

READY_WINDOWS = 1
"""Windows the caller's side holds normalised ahead of the one being loaded."""

_STOP_POLL_SECONDS = 0.1
"""How often the reader, blocked on a full hand-over queue, checks whether the caller left."""


@dataclass(frozen=True)
class _Job:
    """What the child is asked to do: build this client, extract these windows in order."""

    settings: ClientSettings
    windows: list[Window]
    log_level: int
    """The caller's level for the project's loggers: records below it are not sent."""


class ExtractionProcessError(VISError):
    """The extraction process failed in a way that is not one of the client's own errors."""


# -- the caller's side ---------------------------------------------------------------------


class ExtractionProcess:
    """A child process ready to extract windows: started at once, told its windows later.

    Starting it before the caller knows which windows to fetch hides the child's start-up (an
    interpreter and its imports) behind the caller's own preparations. Use it as a context
    manager; closing it stops the child, whatever it is doing.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._used = False
        # The package must be importable in the child however this process found it.
        package_root = str(Path(__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "vis_pipeline.extract_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def __enter__(self) -> ExtractionProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child, whatever it is doing, and close its pipes."""
        child = self._child
        if child.poll() is None:
            child.kill()  # never waited for: a child never given windows may still be importing
        child.wait()
        if child.stdin is not None and not child.stdin.closed:
            with contextlib.suppress(OSError):
                child.stdin.close()
        if child.stdout is not None:
            child.stdout.close()

    def iter_windows(
        self, windows: Sequence[Window], then: Callable[[WindowResult], _T]
    ) -> Iterator[_T]:
        """``then`` of each window's result, in order; the process serves one such call.

        ``then`` runs in this process, on a reader thread, one window ahead of the caller: the
        child fetches, this process normalises, the caller loads, all at once. Leaving the loop
        early (or an error) stops the child.
        """
        if self._used:
            raise RuntimeError("an extraction process serves one list of windows")
        self._used = True
        windows = list(windows)
        if not windows:
            return
        level = logging.getLogger("vis_pipeline").getEffectiveLevel()
        child = self._child
        assert child.stdin is not None
        try:
            child.stdin.write(pickle.dumps(_Job(self._settings, windows, level), _PROTOCOL))
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child is gone already: its reader reports how it ended
        handover: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=READY_WINDOWS)
        stop = threading.Event()
        reader = threading.Thread(
            target=_read_frames,
            args=(child, then, handover, stop),
            name="vis-extract-reader",
            daemon=True,
        )
        reader.start()
        try:
            delivered = 0
            while True:
                kind, value = handover.get()
                if kind == "error":
                    raise value
                if kind == "done":
                    break
                delivered += 1
                yield value
            if delivered != len(windows):
                raise ExtractionProcessError(
                    f"the extraction process returned {delivered} of {len(windows)} windows"
                )
        finally:
            stop.set()
            if child.poll() is None:
                child.kill()  # its reader then sees the stream end
            child.wait()
            reader.join()


def iter_windows_in_child(
    settings: ClientSettings, windows: Sequence[Window], then: Callable[[WindowResult], _T]
) -> Iterator[_T]:
    """``ExtractionProcess(settings).iter_windows(windows, then)``, the process closed after."""
    with ExtractionProcess(settings) as process:
        yield from process.iter_windows(windows, then)


def _read_frames(
    child: subprocess.Popen[bytes],
    then: Callable[[WindowResult], Any],
    handover: queue.Queue[tuple[str, Any]],
    stop: threading.Event,
) -> None:
    """Read the child's frames until it is done: log records, windows (through ``then``), errors."""
    assert child.stdout is not None
    try:
        while True:
            frame = _read_frame(child.stdout)
            if frame is None:
                code = child.wait()
                raise ExtractionProcessError(
                    f"the extraction process ended before finishing (exit code {code})"
                )
            kind = frame[0]
            if kind == "log":
                _, level, name, message = frame
                logging.getLogger(name).log(level, "%s", message)
            elif kind == "window":
                _, result, events = frame
                ready = then(replace(result, events=orjson.loads(events)))
                if not _hand_over(handover, ("window", ready), stop):
                    return
            elif kind == "error":
                raise frame[1]
            else:
                _hand_over(handover, ("done", None), stop)
                return
    except BaseException as exc:
        if not stop.is_set():
            _hand_over(handover, ("error", exc), stop)


def _read_frame(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next frame, or None when the stream ends before a whole one."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    frame: tuple[Any, ...] = pickle.loads(body)
    return frame


def _hand_over(
    handover: queue.Queue[tuple[str, Any]], item: tuple[str, Any], stop: threading.Event
) -> bool:
    """Put ``item`` for the caller; False when the caller has stopped listening."""
    while not stop.is_set():
        try:
            handover.put(item, timeout=_STOP_POLL_SECONDS)
        except queue.Full:
            continue
        return True
    return False


# -- the child's side ----------------------------------------------------------------------


class _FrameWriter:
    """Writes frames to the caller; the client's threads log through it too."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, frame: tuple[Any, ...]) -> None:
        body = pickle.dumps(frame, protocol=_PROTOCOL)
        with self._lock:
            self._stream.write(_LENGTH.pack(len(body)))
            self._stream.write(body)
            self._stream.flush()


class _ForwardingHandler(logging.Handler):
    """Sends each log record to the caller, which logs it again under the same logger name."""

    def __init__(self, writer: _FrameWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # the caller is gone: nothing to tell it
            self._writer.write(("log", record.levelno, record.name, record.getMessage()))


def _pack(result: WindowResult) -> tuple[WindowResult, bytes]:
    """A window for the pipe: its events as one JSON document, the rest pickled as it is.

    orjson writes the events (which orjson parsed) several times faster than pickle would.
    """
    return replace(result, events=[]), orjson.dumps(result.events)


def _portable(exc: BaseException, token: str) -> BaseException:
    """``exc`` if it crosses the pipe intact, else an ExtractionProcessError saying what it was."""
    try:
        pickle.loads(pickle.dumps(exc, protocol=_PROTOCOL))
    except Exception:
        text = f"{type(exc).__name__}: {exc}"
        return ExtractionProcessError(text.replace(token, "[redacted]") if token else text)
    return exc


def _extract(job: _Job, writer: _FrameWriter) -> None:
    with job.settings.client() as client:
        for result, events in client.iter_windows(job.windows, _pack):
            writer.write(("window", result, events))


def main() -> int:
    """The child: read the job, stream the windows, say it is done (or what went wrong)."""
    request = sys.stdin.buffer.read()
    if not request:
        return 0  # closed without windows: nothing was left to fetch
    job: _Job = pickle.loads(request)
    # Frames get standard output to themselves: anything else printed goes to standard error.
    frames = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    writer = _FrameWriter(frames)
    root = logging.getLogger()
    root.handlers[:] = [_ForwardingHandler(writer)]
    root.setLevel(job.log_level)
    try:
        _extract(job, writer)
        writer.write(("done",))
    except BrokenPipeError:
        return 0  # the caller stopped reading: it has what it wanted, or has gone
    except BaseException as exc:
        try:
            writer.write(("error", _portable(exc, job.settings.token)))
        except BrokenPipeError:
            return 0
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
