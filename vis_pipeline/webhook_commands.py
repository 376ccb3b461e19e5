"""The real-time commands of ``vis-pipeline``: receive, drain, webhooks, and the live demo.

Kept apart from ``cli.py``, which only declares them and hands them their parsed arguments.
Expected failures print one line and exit 1 (a usage error exits 2, through the CLI); the
signing key is never printed: commands name its file, never its value.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import orjson

from vis_pipeline.catalog import location_of
from vis_pipeline.settings import Settings

if TYPE_CHECKING:
    import duckdb

    from vis_pipeline.client import VISClient
    from vis_pipeline.live import Drained

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_RECEIVER_PORT = 8090
"""Port ``vis-pipeline receive`` listens on unless told otherwise."""


class Usage(Exception):
    """Input the user can fix (the CLI prints it and exits 2)."""


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Declare receive, drain and webhooks on the CLI's sub-commands."""
    receive = commands.add_parser(
        "receive", help="receive signed webhook deliveries into the spool (until Ctrl-C)"
    )
    receive.add_argument("--host", default="127.0.0.1", help="address to listen on")
    receive.add_argument(
        "--port", type=int, default=DEFAULT_RECEIVER_PORT, help="port (0: any free port)"
    )
    drain = commands.add_parser("drain", help="merge the spooled deliveries into the warehouse")
    drain.add_argument("--follow", action="store_true", help="keep draining until Ctrl-C")
    drain.add_argument("--every", type=float, default=0.5, help="seconds between looks (--follow)")
    drain.add_argument(
        "--reports-every", type=float, default=60.0, help="seconds between report refreshes"
    )
    webhooks = commands.add_parser("webhooks", help="the webhook subscription")
    actions = webhooks.add_subparsers(dest="webhooks_action", required=True)
    subscribe = actions.add_parser("subscribe", help="subscribe a URL to CALL events (signed)")
    subscribe.add_argument("--url", required=True, help="where the API delivers (the receiver)")
    actions.add_parser("list", help="the account's webhooks, this project's marked")
    for name, what in (("renew", "renew"), ("unsubscribe", "delete")):
        action = actions.add_parser(name, help=f"{what} this project's webhooks (or one)")
        action.add_argument("--id", dest="webhook_id", help="only this webhook")


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``receive``, ``drain`` or ``webhooks`` with the parsed ``args``."""
    from vis_pipeline.errors import VISError
    from vis_pipeline.webhook_signing import SigningKeyError

    try:
        if args.command == "receive":
            return run_receive(settings, args.host, args.port)
        if args.command == "drain":
            return run_drain(settings, args.follow, args.every, args.reports_every)
        return run_webhooks(settings, args.webhooks_action, args)
    except (SigningKeyError, VISError) as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Usage as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_USAGE


# -- receive and drain ----------------------------------------------------------------------


def run_receive(settings: Settings, host: str, port: int) -> int:
    """Serve the receiver until SIGINT or SIGTERM (one JSON line on stdout once it listens)."""
    from vis_pipeline.receiver import serve

    serve(settings, host, port)
    return EXIT_OK


def run_drain(settings: Settings, follow: bool, every: float, reports_every: float) -> int:
    """Drain the spool until it is empty (or until stopped, with ``follow``), a line per
    batch."""
    from vis_pipeline.live import drain_spool, follow_spool
    from vis_pipeline.spool import Spool, spool_folder

    spool = Spool(spool_folder(settings.webhook_path))
    open_warehouse = _warehouse_opener(settings)
    if not follow:
        # Batch after batch until nothing is left, the reports with the last one.
        while (drained := drain_spool(spool, open_warehouse, settings.timezone)).deliveries:
            _print_drained(drained)
        return EXIT_OK
    with _stop_signals() as stopped:
        follow_spool(
            spool,
            open_warehouse,
            settings.timezone,
            every=every,
            reports_every=reports_every,
            should_stop=stopped,
            on_drained=_print_drained,
        )
    return EXIT_OK


def _warehouse_opener(
    settings: Settings,
) -> Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]:
    """Opens the settings' warehouse for writing, under its lock."""
    from vis_pipeline.live import warehouse_writer

    return partial(warehouse_writer, location_of(settings))


def _print_drained(drained: Drained) -> None:
    days = ", ".join(day.isoformat() for day in drained.days) or "none"
    print(
        f"drained {drained.deliveries} deliveries: {drained.events} events "
        f"({drained.inserted} new, {drained.stale} behind the warehouse, {drained.rejected} "
        f"rejected); days {days}",
        flush=True,
    )


@contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    """A function telling whether SIGINT or SIGTERM came; the loop ends between drains."""
    received: list[int] = []
    previous = {
        number: signal.signal(number, lambda signum, _frame: received.append(signum))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield lambda: bool(received)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


# -- webhooks -------------------------------------------------------------------------------


@contextmanager
def _client(settings: Settings) -> Iterator[VISClient]:
    from vis_pipeline.auth import has_credentials
    from vis_pipeline.client import ClientSettings

    if not has_credentials(settings):
        raise Usage(
            "no credentials: set VIS_ACCESS_TOKEN, VIS_TOKEN_URL (OAuth 2.0) or VIS_TOKEN_COMMAND"
        )
    with ClientSettings.from_settings(settings).client() as client:
        yield client


def run_webhooks(settings: Settings, action: str, args: argparse.Namespace) -> int:
    """subscribe, list, renew or unsubscribe."""
    from vis_pipeline import subscriptions as subs
    from vis_pipeline.webhook_signing import key_path

    home = settings.webhook_path
    with _client(settings) as client:
        if action == "subscribe":
            hook = subs.subscribe(client, home, args.url)
            print(f"subscribed webhook {hook['id']}: {hook['url']}, expires {hook['expireAt']}")
            print(f"signing key: {key_path(home)} (readable by you only; never printed)")
            return EXIT_OK
        if action == "list":
            ours = {item.webhook_id for item in subs.recorded(home)}
            _print_webhooks(client.list_webhooks(), ours)
            return EXIT_OK
        recorded = [item.webhook_id for item in subs.recorded(home)]
        chosen = [args.webhook_id] if args.webhook_id else recorded
        if not chosen:
            raise Usage("no subscription on record: `vis-pipeline webhooks subscribe --url URL`")
        for webhook_id in chosen:
            if action == "renew":
                hook = subs.renew(client, home, webhook_id)
                print(f"renewed webhook {webhook_id}: expires {hook['expireAt']}")
            elif subs.unsubscribe(client, home, webhook_id):
                print(f"deleted webhook {webhook_id}")
            else:
                print(f"webhook {webhook_id} was already gone; forgotten")
    return EXIT_OK


def _print_webhooks(hooks: list[dict], ours: set[str]) -> None:
    print(f"{'id':<10} {'ours':<4} {'status':<7} {'failed':<6} {'attempts':>8} {'failures':>8}  "
          f"{'expires':<24}  url")  # fmt: skip
    for hook in hooks:
        stats = hook.get("statistics") or {}
        print(
            f"{hook['id']!s:<10} {'yes' if str(hook['id']) in ours else '':<4} "
            f"{hook.get('status', ''):<7} {stats.get('failed', '')!s:<6} "
            f"{stats.get('totalAttempts', 0):>8} {stats.get('totalFailures', 0):>8}  "
            f"{hook.get('expireAt', ''):<24}  {hook.get('url', '')}"
        )


# -- the live demo --------------------------------------------------------------------------


class SimulatorClock(Protocol):
    """What the live demo needs of the simulator: its clock (the CLI hands over the control)."""

    def advance(self, seconds: float) -> str: ...


@contextmanager
def receiver_process(settings: Settings, environment: dict[str, str]) -> Iterator[str]:
    """``vis-pipeline receive`` on a free loopback port; yields the URL to subscribe."""
    command = [sys.executable, "-m", "vis_pipeline.cli", "receive", "--port", "0"]
    process = subprocess.Popen(
        command,
        env={**environment, "VIS_WEBHOOK_HOME": str(settings.webhook_path.resolve())},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the receiver did not start")
        yield f"{orjson.loads(line)['url']}vis/events"
    finally:
        process.terminate()
        process.wait(10)


def run_live_demo(
    clock: SimulatorClock,
    settings: Settings,
    environment: dict[str, str],
    seconds: int,
    speed: float = 120.0,
) -> int:
    """Subscribe a receiver, run the simulator's clock ``speed`` times faster than real time for
    ``seconds``, and show calls landing in vis.events (a line a second)."""
    from vis_pipeline import subscriptions as subs
    from vis_pipeline.live import drain_spool, warehouse_writer
    from vis_pipeline.reports import materialize_reports
    from vis_pipeline.spool import Spool, spool_folder
    from vis_pipeline.webhook_signing import key_or_new, key_path

    home = settings.webhook_path
    key_or_new(key_path(home))
    spool = Spool(spool_folder(home))
    open_warehouse = _warehouse_opener(settings)
    with receiver_process(settings, environment) as url, _client(settings) as client:
        hook = subs.subscribe(client, home, url)
        print(f"\nlive: webhook {hook['id']} delivers to {url}; the clock runs {speed:g}x")
        touched: set[date] = set()
        try:
            for _ in range(seconds):
                now = clock.advance(speed)
                time.sleep(1.0)
                drained = drain_spool(
                    spool, open_warehouse, settings.timezone, refresh_reports=False
                )
                touched.update(drained.days)
                _print_live_line(settings, now, drained.events)
        finally:
            subs.unsubscribe(client, home, str(hook["id"]))
        if touched:
            with warehouse_writer(location_of(settings)) as conn:
                materialize_reports(conn, min(touched), max(touched), settings.timezone)
    return EXIT_OK


def _print_live_line(settings: Settings, now: str, landed: int) -> None:
    """One line: the simulated time, and what vis.events holds of that local day."""
    from vis_pipeline.live import warehouse_writer

    day = datetime.fromisoformat(now).astimezone(ZoneInfo(settings.timezone)).date()
    with warehouse_writer(location_of(settings)) as conn:
        total, live = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT is_final) FROM vis.events "
            "WHERE local_date = ?",
            [day],
        ).fetchall()[0]
    print(f"  {now}  +{landed:>4} events   {day}: {total:>6} calls in vis.events, {live:>3} live",
          flush=True)  # fmt: skip
