"""Window extraction in a child process, streamed back to the caller one window at a time.

Fetching and parsing pages is Python work that holds the GIL, and so is normalising the windows
the caller loads: in one process each waits for the other, and a sync runs at the speed of one
core. A child process gives the HTTP work an interpreter of its own. It runs the same
``WindowExtractor.iter_windows`` and writes each finished window to a pipe; a write blocks while the
caller is behind, so only a few windows are ever held, whatever the range.

The child learns the client's settings, credentials included, from its standard input: no
credential is on a command line, and every variable that may hold one (``SECRET_VARIABLES``),
or that holds a secret the settings carry, is left out of the child's environment. With a
token provider, the child gets the provider's configuration and the access token it holds,
never its refresh token (``vis_pipeline.auth`` says why). The
child's standard input stays open while it works: when it closes (the caller finished, or died)
the child stops at once, so an orphan never goes on calling the API. Its log records and errors
cross the pipe and are logged or raised again in the caller, with their own logger names and
types, secrets scrubbed.

    job, caller to child (standard input): 8-byte little-endian length, then a pickled _Job
    frames, child to caller (a pipe of their own): the same header, then a pickled tuple
    ("log", level, logger name, text) | ("window", WindowResult without events, events JSON)
    | ("failed", WindowFailure) | ("error", exception) | ("done",)
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
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from vis_pipeline.auth import scrub_secrets
from vis_pipeline.client import ClientSettings
from vis_pipeline.errors import ExtractionProcessError
from vis_pipeline.extract import ExtractOptions, WindowExtractor, WindowFailure, WindowResult
from vis_pipeline.settings import SECRET_VARIABLES

_T = TypeVar("_T")

Window = tuple[datetime, datetime]

_LENGTH = struct.Struct("<Q")
"""The header of the job and of every frame: the pickled body's length in bytes."""

_PROTOCOL = pickle.HIGHEST_PROTOCOL
"""Both ends run the same interpreter, so the newest pickle protocol is always understood."""

READY_WINDOWS = 1
"""Windows the caller's side holds normalised ahead of the one being loaded."""

_STOP_POLL_SECONDS = 0.1
"""How often the reader, blocked on a full hand-over queue, checks whether the caller left."""

_CHILD_CODE = (
    "import os, sys; sys.path.append(sys.argv[1]); "
    "from vis_pipeline.extract_process import main; code = main(int(sys.argv[2])); "
    "sys.stderr.flush(); os._exit(code)"
)
"""The child's program. The package's folder goes last on its path: used only when the package
is not installed, never shadowing anything. Run this way, not with ``-m``, the module keeps its
name, so errors pickled in the child name classes the caller can find. It ends with
``os._exit``: the thread watching standard input is still reading it, and a normal exit would
stop on that buffer ("Fatal Python error: _enter_buffered_busy")."""


@dataclass(frozen=True)
class _Job:
    """What the child is asked to do: build this client and extractor, extract these windows."""

    settings: ClientSettings
    options: ExtractOptions
    windows: list[Window]
    log_level: int
    """The caller's level for the project's loggers: records below it are not sent."""


# -- the caller's side ---------------------------------------------------------------------


class ExtractionProcess:
    """A child process ready to extract windows: started at once, told its windows later.

    Starting it before the caller knows which windows to fetch hides the child's start-up (an
    interpreter and its imports) behind the caller's own preparations. Use it as a context
    manager; closing it stops the child and the reader thread, whatever they are doing.
    """

    def __init__(self, settings: ClientSettings, options: ExtractOptions) -> None:
        self._settings = settings
        self._options = options
        self._used = False
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        read_end, write_end = os.pipe()
        try:
            self._child = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CHILD_CODE,
                    str(Path(__file__).resolve().parents[1]),
                    str(write_end),
                ],
                stdin=subprocess.PIPE,
                pass_fds=(write_end,),
                env=_child_environment(settings.secrets()),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._frames = os.fdopen(read_end, "rb")

    def __enter__(self) -> ExtractionProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child and the reader thread, whatever they are doing; close the pipes."""
        self._stop.set()
        child = self._child
        if child.poll() is None:
            child.kill()  # never waited for: a child never given windows may still be importing
        child.wait()
        if self._reader is not None:
            self._reader.join()  # the child is gone, so its frames end and the reader returns
        with contextlib.suppress(OSError):
            if child.stdin is not None:
                child.stdin.close()
        self._frames.close()

    def iter_windows(
        self, windows: Sequence[Window], then: Callable[[WindowResult], _T]
    ) -> Iterator[_T | WindowFailure]:
        """``then`` of each window's result, in order; the process serves one such call.

        A window that could not be read whole comes as its :class:`WindowFailure`, as from
        ``WindowExtractor.iter_windows``.

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
        self._send_job(_Job(self._settings, self._options, windows, level))
        handover: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=READY_WINDOWS)
        self._reader = threading.Thread(
            target=_read_frames,
            args=(self._child, self._frames, then, handover, self._stop),
            name="vis-extract-reader",
            daemon=True,
        )
        self._reader.start()
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
            self.close()

    def _send_job(self, job: _Job) -> None:
        """Write the job; standard input stays open, as the child's sign that the caller lives."""
        stdin = self._child.stdin
        assert stdin is not None
        body = pickle.dumps(job, protocol=_PROTOCOL)
        with contextlib.suppress(BrokenPipeError):  # the child is gone: the reader says how
            stdin.write(_LENGTH.pack(len(body)) + body)
            stdin.flush()


def _child_environment(secrets: Sequence[str]) -> dict[str, str]:
    """This process's environment without the project's secret variables, nor any variable
    holding one of ``secrets``."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in SECRET_VARIABLES and not any(secret in value for secret in secrets if secret)
    }


def _read_frames(
    child: subprocess.Popen[bytes],
    frames: IO[bytes],
    then: Callable[[WindowResult], Any],
    handover: queue.Queue[tuple[str, Any]],
    stop: threading.Event,
) -> None:
    """Read the child's frames until it is done: log records, windows (through ``then``), errors."""
    try:
        while not stop.is_set():
            frame = _read_frame(frames)
            if frame is None:
                code = child.wait()
                raise ExtractionProcessError(
                    f"the extraction process ended before finishing (exit code {code})"
                )
            kind = frame[0]
            if kind == "log":
                _, level, name, text = frame
                logging.getLogger(name).log(level, "%s", text)
            elif kind == "window":
                _, result, events = frame
                ready = then(replace(result, events=orjson.loads(events)))
                if not _hand_over(handover, ("window", ready), stop):
                    return
            elif kind == "failed":
                if not _hand_over(handover, ("window", frame[1]), stop):
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
            self._stream.write(_LENGTH.pack(len(body)) + body)
            self._stream.flush()


class _ForwardingHandler(logging.Handler):
    """Sends each log record to the caller, which logs it again under the same logger name."""

    def __init__(self, writer: _FrameWriter, secrets: Callable[[], Sequence[str]]) -> None:
        super().__init__()
        self._writer = writer
        self._secrets = secrets
        """The secrets as of each record: a provider's tokens change during the extraction."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        try:
            scrubbed = _scrubbed(text, *self._secrets())
            self._writer.write(("log", record.levelno, record.name, scrubbed))
        except BrokenPipeError:
            os._exit(0)  # the caller is gone: stop calling the API on its behalf
        except Exception:  # a record that cannot be sent is not worth failing the sync over
            pass


def _scrubbed(text: str, *secrets: str) -> str:
    return scrub_secrets(text, secrets)


def _pack(result: WindowResult) -> tuple[WindowResult, bytes]:
    """A window for the pipe: its events as one JSON document, the rest pickled as it is.

    orjson writes the events (which orjson parsed) several times faster than pickle would.
    """
    return replace(result, events=[]), orjson.dumps(result.events)


def _portable(exc: BaseException, *secrets: str) -> BaseException:
    """``exc`` with the child's traceback as a note, or an ExtractionProcessError saying what it
    was when it would not survive the pipe; secrets scrubbed either way."""
    where = "".join(traceback.format_exception(exc)).rstrip()
    note = _scrubbed(f"raised in the extraction process:\n{where}", *secrets)
    try:
        exc.add_note(note)
        pickle.loads(pickle.dumps(exc, protocol=_PROTOCOL))
    except Exception:
        text = _scrubbed(f"{type(exc).__name__}: {exc}", *secrets)
        portable = ExtractionProcessError(text)
        portable.add_note(note)
        return portable
    return exc


def _watch_caller(stdin: IO[bytes]) -> None:
    """End this process when the caller closes standard input: it finished, or it died."""
    stdin.read()
    os._exit(0)


def _read_job(stdin: IO[bytes]) -> _Job | None:
    header = stdin.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None  # closed without windows: nothing was left to fetch
    (length,) = _LENGTH.unpack(header)
    job: _Job = pickle.loads(stdin.read(length))
    return job


def _extract(job: _Job, writer: _FrameWriter) -> None:
    with job.settings.client() as client, WindowExtractor(client, job.options) as extractor:
        for item in extractor.iter_windows(job.windows, _pack):
            if isinstance(item, WindowFailure):
                writer.write(("failed", item))
            else:
                writer.write(("window", *item))


def main(frames_fd: int) -> int:
    """The child: read the job, stream the windows, say it is done (or what went wrong)."""
    job = _read_job(sys.stdin.buffer)
    if job is None:
        return 0
    threading.Thread(target=_watch_caller, args=(sys.stdin.buffer,), daemon=True).start()
    writer = _FrameWriter(os.fdopen(frames_fd, "wb"))
    root = logging.getLogger()
    root.handlers[:] = [_ForwardingHandler(writer, job.settings.secrets)]
    root.setLevel(job.log_level)
    try:
        _extract(job, writer)
        writer.write(("done",))
    except BrokenPipeError:
        return 0  # the caller stopped reading: it has what it wanted, or has gone
    except BaseException as exc:
        try:
            writer.write(("error", _portable(exc, *job.settings.secrets())))
        except BrokenPipeError:
            return 0
        return 1
    return 0
