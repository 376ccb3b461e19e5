"""Running the simulator in its own process, and steering it through its control endpoints."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import orjson

from vis_pipeline.simulator.behaviour import Behaviour
from vis_pipeline.simulator.options import SimulatorOptions
from vis_pipeline.simulator.serve import add_arguments, main, options_from_args

__all__ = [
    "Behaviour",
    "SimulatorControl",
    "SimulatorError",
    "SimulatorOptions",
    "SimulatorProcess",
    "add_arguments",
    "main",
    "options_from_args",
]

STARTUP_TIMEOUT_SECONDS = 60.0
"""How long the child may take to generate its data and listen."""

STOP_TIMEOUT_SECONDS = 5.0
"""How long the child may take to exit after it is asked to."""

CONTROL_TIMEOUT_SECONDS = 60.0
"""Timeout of one control request (truth of a large data set takes a moment)."""

_STDERR_TAIL_BYTES = 4000


class SimulatorError(RuntimeError):
    """The simulator could not be started, or a control request failed."""


class SimulatorControl:
    """Client of a running simulator's control endpoints (no auth: it is not the API)."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url.rstrip("/")
        # Loopback only: proxy settings from the environment must not apply.
        self._client = httpx.Client(timeout=CONTROL_TIMEOUT_SECONDS, trust_env=False)

    def __repr__(self) -> str:
        return f"SimulatorControl({self.control_url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, self.control_url + path, **kwargs)
        if response.status_code != 200:
            raise SimulatorError(
                f"{method} {path} answered {response.status_code}: {response.text[:500]}"
            )
        return orjson.loads(response.content)

    def truth(self, from_ms: int | None = None, to_ms: int | None = None) -> list[dict[str, Any]]:
        """Visible events of [from_ms, to_ms) as of the clock, by startTime then id."""
        params = {
            name: value
            for name, value in (("fromDate", from_ms), ("toDate", to_ms))
            if value is not None
        }
        return self._call("GET", "/truth", params=params)

    def users(self) -> list[dict[str, Any]]:
        """Every user of the account."""
        return self._call("GET", "/users")

    def stats(self) -> dict[str, Any]:
        """``{"total", "requests": {operationId: {status: n}}, "faults": {kind: n}}``."""
        return self._call("GET", "/stats")

    def reset_stats(self) -> None:
        """Forget request and fault counts."""
        self._call("POST", "/stats/reset")

    def now(self) -> str:
        """The simulated clock's reading (ISO instant)."""
        return self._call("GET", "/clock")["now"]

    def advance(self, seconds: float) -> str:
        """Move the clock forward by ``seconds``; returns the new reading."""
        return self._call("POST", "/clock", json={"advance_seconds": seconds})["now"]

    def set_now(self, now: str) -> str:
        """Set the clock to the ISO instant ``now``; returns the new reading."""
        return self._call("POST", "/clock", json={"now": now})["now"]

    def behaviour(self) -> dict[str, Any]:
        """The behaviour in force."""
        return self._call("GET", "/behaviour")

    def set_behaviour(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the behaviour in force; returns the behaviour."""
        return self._call("PUT", "/behaviour", content=orjson.dumps(changes))

    def reset_behaviour(self) -> None:
        """Back to no faults and the usual readings."""
        self._call("POST", "/behaviour/reset")

    def inject(self, records: list[Any]) -> None:
        """Add raw records, served as they are and visible at once."""
        self._call("POST", "/events", content=orjson.dumps(records))

    def revoke_refresh_tokens(self, refresh_token: str | None = None) -> int:
        """Revoke one refresh token, or every one issued so far; how many were live."""
        body = {} if refresh_token is None else {"refresh_token": refresh_token}
        return int(self._call("POST", "/oauth/revoke", content=orjson.dumps(body))["revoked"])

    def expire_access_tokens(self) -> int:
        """End the life of every access token issued so far; how many were live."""
        return int(self._call("POST", "/oauth/expire")["expired"])

    def issued_tokens(self) -> dict[str, list[str]]:
        """``{"access_tokens": [...], "refresh_tokens": [...]}``: every token issued so far."""
        return self._call("GET", "/oauth/tokens")

    def deliveries(self, since: int = 0) -> dict[str, Any]:
        """``{"next": n, "deliveries": [...]}``: the webhook delivery log from line ``since``,
        one line per attempt (kind, event_id, state, moment, queued_at, at, status, outcome)."""
        return self._call("GET", "/webhooks/deliveries", params={"since": since})

    def delivery_activity(self) -> dict[str, int]:
        """``{"queued", "in_flight", "waiting"}``: deliveries not settled yet."""
        return self._call("GET", "/webhooks/activity")

    def wait_for_deliveries(self, timeout: float = 30.0) -> None:
        """Return once no delivery is queued, in flight or waiting; SimulatorError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while any(self.delivery_activity().values()):
            if time.monotonic() > deadline:
                raise SimulatorError(f"webhook deliveries still pending after {timeout:.0f} s")
            time.sleep(0.02)


class SimulatorProcess:
    """A simulator in a child process (``python -m vis_pipeline.simulator``).

    A context manager: the child is always stopped on exit, killed if it will not stop.
    ``behaviour``, when given, is put in force as soon as the child listens (through the
    control endpoint, so ``control.reset_behaviour()`` goes back to the defaults, not to it).
    """

    def __init__(
        self,
        options: SimulatorOptions,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviour: Behaviour | None = None,
    ) -> None:
        self.options = options
        self.behaviour = behaviour
        self.host = host
        self.port = port
        self.token = options.token
        self.base_url = ""
        self.control_url = ""
        self.token_url = ""
        self.pid: int | None = None
        self.control = SimulatorControl("http://unstarted")
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"SimulatorProcess(base_url={self.base_url!r}, pid={self.pid})"

    def command(self) -> list[str]:
        """The child's command line."""
        options = self.options
        flags = {
            "--seed": options.seed,
            "--start": options.start,
            "--days": options.days,
            "--calls-per-day": options.calls_per_day,
            "--users": options.users,
            "--tz": options.tz,
            "--dense-instants-per-day": options.dense_instants_per_day,
            "--dense-instant-size": options.dense_instant_size,
            "--token": options.token,
            "--token-ttl-seconds": options.token_ttl_seconds,
            "--client-id": options.client_id,
            "--client-secret": options.client_secret,
            "--username": options.username,
            "--password": options.password,
            "--host": self.host,
            "--port": self.port,
        }
        if options.now is not None:
            flags["--now"] = options.now
        argv = [sys.executable, "-m", "vis_pipeline.simulator"]
        for flag, value in flags.items():
            argv += [flag, str(value)]
        return argv

    def start(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> SimulatorProcess:
        """Start the child and wait until it listens; SimulatorError (with its stderr) if not."""
        if self._process is not None:
            raise SimulatorError("simulator already started")
        # Outlives this call: closed by stop().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_child_environment(),
        )
        try:
            announcement = orjson.loads(self._read_announcement(timeout))
        except BaseException:
            self.stop()
            raise
        self.base_url = announcement["base_url"]
        self.control_url = announcement["control_url"]
        self.token_url = announcement["token_url"]
        self.pid = announcement["pid"]
        self.control = SimulatorControl(self.control_url)
        if self.behaviour is not None:
            try:
                self.control.set_behaviour(**self.behaviour.to_json())
            except BaseException:
                self.stop()
                raise
        return self

    def _read_announcement(self, timeout: float) -> bytes:
        """The child's first stdout line, once it is written."""
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + timeout
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SimulatorError(f"simulator did not listen within {timeout:.0f} s")
                if not selector.select(min(remaining, 0.5)):
                    if process.poll() is not None:
                        raise SimulatorError(self._death_note())
                    continue
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    process.wait(STOP_TIMEOUT_SECONDS)
                    raise SimulatorError(self._death_note())
                received += chunk
        return received.split(b"\n", 1)[0]

    def _death_note(self) -> str:
        """Why the child died, from its exit code and the end of its stderr."""
        assert self._process is not None and self._stderr is not None
        self._stderr.seek(0)
        tail = self._stderr.read()[-_STDERR_TAIL_BYTES:].decode("utf-8", "replace")
        return f"simulator exited with code {self._process.returncode}:\n{tail}"

    def stop(self) -> None:
        """Stop the child: terminate, then kill if it lingers. Safe to call twice."""
        self.control.close()
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _child_environment() -> dict[str, str]:
    """This environment, with this package importable in the child whatever its cwd."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    current = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_root if not current else f"{package_root}{os.pathsep}{current}"
    return env
