"""Serving the simulator on a loopback port, and its command line.

``main`` generates the data set, binds the socket (port 0 picks a free one), starts uvicorn on
it and, once it listens, prints one JSON line ``{"base_url", "control_url", "token_url", "pid"}``
to stdout.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence

import orjson
import uvicorn

from vis_pipeline.simulator.app import SimulatorApp
from vis_pipeline.simulator.control import CONTROL_PREFIX
from vis_pipeline.simulator.options import DEFAULT_TOKEN, SimulatorOptions, default_start
from vis_pipeline.simulator.state import SimulatorState
from vis_pipeline.simulator.tokens import TOKEN_PATH
from vis_pipeline.spec import API_BASE_PATH

DEFAULT_HOST = "127.0.0.1"

DEFAULT_PORT = 8080
"""Port a simulator started by hand listens on (a process started for tests asks for any)."""
"""Interface the simulator listens on unless told otherwise."""

LISTEN_BACKLOG = 2048
"""Pending connections the socket queues (load tests open many at once)."""

_TRUNCATION_COMPLAINT = "ASGI callable returned without completing response."


class _IgnoreTruncations(logging.Filter):
    """Drops the server's complaint about responses cut short: the app does that on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _TRUNCATION_COMPLAINT


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints where it listens once it does."""

    def __init__(self, config: uvicorn.Config, announcement: bytes) -> None:
        super().__init__(config)
        self._announcement = announcement

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            sys.stdout.buffer.write(self._announcement + b"\n")
            sys.stdout.flush()
            if self.greeting:
                sys.stderr.write(self.greeting)
                sys.stderr.flush()

    greeting = ""
    """Lines for a person at a terminal (where to point the pipeline), after the JSON line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags (shared with the project's command line)."""
    defaults = SimulatorOptions()
    parser.add_argument("--seed", type=int, default=defaults.seed, help="data set seed")
    parser.add_argument(
        "--start", default=None, help="first local day, YYYY-MM-DD (default: today - days)"
    )
    parser.add_argument("--days", type=int, default=defaults.days, help="days of history")
    parser.add_argument(
        "--calls-per-day", type=int, default=defaults.calls_per_day, help="weekday mean"
    )
    parser.add_argument("--users", type=int, default=defaults.users, help="users of the account")
    parser.add_argument("--tz", default=defaults.tz, help="local time zone (IANA name)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="access token to accept")
    parser.add_argument(
        "--token-ttl-seconds",
        type=float,
        default=defaults.token_ttl_seconds,
        help="life of an access token from the token endpoint",
    )
    parser.add_argument("--client-id", default=defaults.client_id, help="OAuth client id")
    parser.add_argument(
        "--client-secret", default=defaults.client_secret, help="OAuth client secret"
    )
    parser.add_argument("--username", default=defaults.username, help="password grant's user")
    parser.add_argument("--password", default=defaults.password, help="password grant's password")
    parser.add_argument("--now", default=None, help="first clock reading (default: range end)")
    parser.add_argument(
        "--dense-instants-per-day",
        type=int,
        default=defaults.dense_instants_per_day,
        help="instants a day that each hold --dense-instant-size calls (the first on midnight)",
    )
    parser.add_argument(
        "--dense-instant-size",
        type=int,
        default=defaults.dense_instant_size,
        help="calls at one millisecond in each dense instant",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (0: any free port; default 8080)"
    )


def options_from_args(namespace: argparse.Namespace) -> SimulatorOptions:
    """The options the parsed flags describe."""
    return SimulatorOptions(
        seed=namespace.seed,
        start=namespace.start or default_start(namespace.days),
        days=namespace.days,
        calls_per_day=namespace.calls_per_day,
        users=namespace.users,
        tz=namespace.tz,
        token=namespace.token,
        now=namespace.now,
        dense_instants_per_day=namespace.dense_instants_per_day,
        dense_instant_size=namespace.dense_instant_size,
        token_ttl_seconds=namespace.token_ttl_seconds,
        client_id=namespace.client_id,
        client_secret=namespace.client_secret,
        username=namespace.username,
        password=namespace.password,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def urls(host: str, port: int) -> tuple[str, str, str]:
    """(API base URL, control URL, token URL) of a simulator listening on ``host``:``port``."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    root = f"http://{netloc}"
    return f"{root}{API_BASE_PATH}", f"{root}{CONTROL_PREFIX}", f"{root}{TOKEN_PATH}"


def serve(options: SimulatorOptions, host: str = DEFAULT_HOST, port: int = 0) -> None:
    """Generate the data set and serve it until interrupted (SIGINT/SIGTERM)."""
    app = SimulatorApp(SimulatorState.from_options(options))
    sock = bind(host, port)
    base_url, control_url, token_url = urls(host, sock.getsockname()[1])
    announcement = orjson.dumps(
        {
            "base_url": base_url,
            "control_url": control_url,
            "token_url": token_url,
            "pid": os.getpid(),
        }
    )
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        lifespan="off",
        backlog=LISTEN_BACKLOG,
        timeout_graceful_shutdown=1,
    )
    # After the config: it sets up uvicorn's loggers.
    logging.getLogger("uvicorn.error").addFilter(_IgnoreTruncations())
    server = _AnnouncingServer(config, announcement)
    if sys.stderr.isatty():
        server.greeting = greeting(base_url, control_url, token_url, options.token)
    server.run(sockets=[sock])


def greeting(base_url: str, control_url: str, token_url: str, token: str) -> str:
    """What a person needs to point the pipeline at this simulator (its token is a test value)."""
    return (
        f"VIS simulator listening (Ctrl-C stops it)\n"
        f"  VIS_BASE_URL={base_url}\n"
        f"  VIS_ACCESS_TOKEN={token}\n"
        f"  token endpoint (OAuth 2.0): {token_url}\n"
        f"  control (truth, clock, faults): {control_url}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vis_pipeline.simulator``: serve a simulated VIS API."""
    parser = argparse.ArgumentParser(
        prog="python -m vis_pipeline.simulator", description="Serve a simulated VIS API."
    )
    add_arguments(parser)
    namespace = parser.parse_args(argv)
    try:
        options = options_from_args(namespace)
    except ValueError as exc:
        parser.error(str(exc))
    serve(options, namespace.host, namespace.port)
    return 0
