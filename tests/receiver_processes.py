"""The webhook receiver as a test runs it: ``vis-pipeline receive`` in a process of its own.

A helper module, not a test module: the real-time tests share it.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import orjson

START_SECONDS = 30.0
"""How long the receiver may take to listen."""


def free_port() -> int:
    """A loopback port free right now (the receiver is restarted on it after a kill)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReceiverProcess:
    """``vis-pipeline receive`` on loopback with ``webhook_home`` as its webhook folder.

    ``before`` is Python run in the child before the command (a test's own stand-in for a
    slow disk, say); the command itself is the project's entry point, unchanged. Its stderr,
    every run's, is kept in ``log_path`` for the test to search.
    """

    def __init__(self, webhook_home: Path, port: int | None = None, before: str = "") -> None:
        self.home = webhook_home
        self.port = port or free_port()
        self.before = before
        self.url = f"http://127.0.0.1:{self.port}/vis/events"
        self.log_path = webhook_home.parent / f"receiver-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def command(self) -> list[str]:
        arguments = ["receive", "--host", "127.0.0.1", "--port", str(self.port)]
        main = f"from vis_pipeline.cli import main\nraise SystemExit(main({arguments!r}))"
        return [sys.executable, "-c", f"{self.before}\n{main}"]

    def start(self) -> ReceiverProcess:
        """Start the child and wait until it says where it listens."""
        env = {**os.environ, "VIS_WEBHOOK_HOME": str(self.home)}
        self._buffer = b""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.home.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        announced = orjson.loads(self.next_line())
        assert announced["url"] == f"http://127.0.0.1:{self.port}/"
        return self

    def next_line(self, timeout: float = START_SECONDS) -> bytes:
        """The next line the child writes on stdout (RuntimeError if it dies or is silent)."""
        process = self.process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"no line from the receiver: {self.log()[-2000:]}")
                if selector.select(0.2):
                    self._buffer += os.read(process.stdout.fileno(), 4096)
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self._close()

    def stop(self) -> None:
        """Stop it the way an operator would (SIGTERM), killed if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def log(self) -> str:
        """Everything the receiver wrote on stderr, in every run so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> ReceiverProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
