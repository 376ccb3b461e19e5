"""The ``vis-pipeline`` command: simulate, sync, status, export, demo, ui.

Expected failures (bad input, an unreachable API, a rejected token) print one clear line and
exit non-zero (2 for usage errors); tracebacks are for bugs only.

Settings come from the environment and the ``.env`` of the working directory, read the way
Dagster reads it (see :mod:`vis_pipeline.envfile`), so the command and the UI agree.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path

from vis_pipeline.envfile import (
    env_file,
    project_environment,
    write_demo_env_file,
    written_by_demo,
)
from vis_pipeline.settings import Settings, SettingsError, variable_of

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

CODE_LOCATION = "vis_pipeline.defs"
"""The module Dagster loads the code location from (``Definitions`` built from settings)."""

QUIET_DAGSTER_WARNINGS = (
    "ignore:Parameter `backfill_policy`",
    "ignore:Function `dev_command` is superseded",
)
"""``PYTHONWARNINGS`` filters for the UI's processes: Dagster repeats these on every load (the
single-run backfill policy is beta; ``dagster dev`` has a successor) and they are not the user's
concern."""

DAGSTER_DEFAULTS = "vis_pipeline.dagster_defaults"
"""The package whose ``dagster.yaml`` holds the default instance settings (the run queue)."""

DEMO_TOKEN = "demo-token"
"""Token the demo's simulator accepts: it guards nothing but a local simulator."""


class UsageError(Exception):
    """Input the user can fix: printed without a traceback, exit code 2."""


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync run through Dagster did."""

    success: bool
    run_id: str
    days: list[dict[str, object]]
    error: str | None = None


def parse_day(text: str) -> date:
    """A calendar day written as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from vis_pipeline.exports import FORMATS, exportable_names
    from vis_pipeline.simulator.process import add_arguments as add_simulator_arguments

    parser = argparse.ArgumentParser(prog="vis-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="serve the VIS simulator on loopback")
    add_simulator_arguments(simulate)

    sync = commands.add_parser("sync", help="sync local days of events into the warehouse")
    sync.add_argument("--from", dest="first", type=parse_day, required=True, help="first day")
    sync.add_argument("--to", dest="last", type=parse_day, required=True, help="last day")
    sync.add_argument("--full", action="store_true", help="fetch settled days again too")

    commands.add_parser("status", help="what the warehouse holds")

    export = commands.add_parser("export", help="write a report of local days to a file")
    export.add_argument("report", choices=exportable_names())
    export.add_argument("--from", dest="first", type=parse_day, required=True, help="first day")
    export.add_argument("--to", dest="last", type=parse_day, required=True, help="last day")
    export.add_argument("--format", dest="fmt", choices=FORMATS, required=True)
    export.add_argument("--output", type=Path, required=True, help="file to write")

    demo = commands.add_parser("demo", help="simulator + sync + summary, no setup needed")
    demo.add_argument("--days", type=int, default=30)
    demo.add_argument("--calls-per-day", type=int, default=1000)
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep the simulator running afterwards (until Ctrl-C), so the UI can run more",
    )

    ui = commands.add_parser("ui", help="the Dagster UI and daemon on this project's instance")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ui.add_argument("--port", type=int, default=3000, help="port to listen on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster flags single-run backfills as beta on every load; it is not the user's concern.
    warnings.filterwarnings("ignore", message=".*backfill_policy.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            # The demo writes its own .env (the file of an earlier demo must not steer it) and
            # brings its own token: the user's credentials are none of its business.
            settings = Settings.from_env(_without_credentials(os.environ))
            return run_demo(settings, args.days, args.calls_per_day, serve=args.serve)
        environment = project_environment()
        if environment != dict(os.environ):
            _restart_with(environment, argv)
        settings = Settings.from_env()
        if args.command == "simulate":
            from vis_pipeline.simulator.process import main as simulate

            return simulate(list(argv if argv is not None else sys.argv[1:])[1:])
        if args.command == "sync":
            if args.last < args.first:
                raise UsageError(f"--to {args.last} is before --from {args.first}")
            return _print_sync(run_sync(settings, args.first, args.last, full=args.full))
        if args.command == "status":
            return show_status(settings)
        if args.command == "export":
            if args.last < args.first:
                raise UsageError(f"--to {args.last} is before --from {args.first}")
            return run_export(settings, args.report, args.first, args.last, args.fmt, args.output)
        return run_ui(settings, args.host, args.port)
    except (UsageError, SettingsError) as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _without_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without any variable that gives the client a token."""
    credentials = {variable_of(name) for name in ("access_token", *OTHER_CREDENTIALS)}
    return {name: value for name, value in environ.items() if name not in credentials}


def _restart_with(environment: dict[str, str], argv: Sequence[str] | None) -> None:
    """Start this command again with ``environment`` (the ``.env`` applied), replacing this process.

    Dagster applies ``.env`` to its whole process, and the resources read the token as an
    ``EnvVar`` from the process environment; the project never writes ``os.environ``, so the
    command starts again with it instead. Once only: then nothing differs.
    """
    arguments = list(argv if argv is not None else sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "vis_pipeline.cli", *arguments], environment)


def ensure_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME (``dagster_home/`` of the working directory by default), as an absolute path.

    A home without instance settings gets the packaged defaults: a wheel install has no
    checkout to copy them from, and without them runs would not queue for the one DuckDB writer.
    """
    home = Path(settings.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_settings = home / "dagster.yaml"
    if not instance_settings.exists():
        defaults = files(DAGSTER_DEFAULTS).joinpath("dagster.yaml")
        instance_settings.write_text(defaults.read_text(encoding="utf-8"), encoding="utf-8")
    return home


def run_sync(settings: Settings, first: date, last: date, *, full: bool = False) -> SyncOutcome:
    """Materialise the events of local days ``first``..``last`` as one Dagster run."""
    import dagster as dg

    from vis_pipeline.auth import has_credentials
    from vis_pipeline.defs import build_definitions
    from vis_pipeline.defs.jobs import SYNC_JOB, range_tags

    if not has_credentials(settings):
        raise UsageError(
            "no credentials: set VIS_ACCESS_TOKEN, VIS_TOKEN_URL (OAuth 2.0) or VIS_TOKEN_COMMAND"
        )
    earliest = date.fromisoformat(settings.start_date)
    if first < earliest:
        raise UsageError(f"--from {first} is before VIS_START_DATE ({earliest})")
    latest = datetime.now(UTC).date() + timedelta(days=1)
    if last > latest:
        raise UsageError(f"--to {last} is in the future")
    home = ensure_dagster_home(settings)
    job = build_definitions(settings).resolve_job_def(SYNC_JOB)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=range_tags(first, last),
            run_config={
                "ops": {"vis__events": {"config": {"full": full}}},
                # The run's full log is in DAGSTER_HOME (and the UI); failures are summed up below.
                "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            },
            raise_on_error=False,
        )
    return SyncOutcome(
        success=result.success,
        run_id=result.run_id,
        days=_days_of_run(settings, result.run_id) if result.success else [],
        error=None if result.success else _first_failure(result),
    )


def _first_failure(result: object) -> str:
    """The message of the first failed step, without its traceback."""
    for event in result.all_events:  # type: ignore[attr-defined]
        if event.is_step_failure:
            error = event.step_failure_data.error
            # Dagster wraps the user's exception: the project's own error says it best, else
            # the innermost cause does.
            while error.cause is not None and not error.cls_name.startswith("VIS"):
                error = error.cause
            return f"{event.step_key}: {error.message.strip()}"
    return "the run failed"


def _days_of_run(settings: Settings, run_id: str) -> list[dict[str, object]]:
    from vis_pipeline import warehouse as wh

    with wh.connect(settings.warehouse_path, read_only=True) as conn:
        return wh.run_days(conn, run_id)


def _print_sync(outcome: SyncOutcome) -> int:
    if not outcome.success:
        print(f"vis-pipeline: sync failed (run {outcome.run_id}): {outcome.error}", file=sys.stderr)
        return EXIT_FAILED
    for day in outcome.days:
        print(
            f"{day['local_date']}  {day['status']:<8} api {day['api_count']:>7}  "
            f"loaded {day['loaded']:>7}  rejected {day['rejected']:>4}"
        )
    print(f"run {outcome.run_id}: {len(outcome.days)} days")
    return EXIT_OK


def show_status(settings: Settings) -> int:
    """Print what the warehouse holds; exit 1 when it is missing or does not reconcile."""
    from vis_pipeline import warehouse as wh

    if not settings.warehouse_path.exists():
        print(
            f"vis-pipeline: no warehouse at {settings.warehouse}; run `vis-pipeline sync` first",
            file=sys.stderr,
        )
        return EXIT_FAILED
    with wh.connect(settings.warehouse_path, read_only=True) as conn:
        summary = wh.status_summary(conn)
    for key, value in summary.items():
        print(f"{key:>22}: {value}")
    return EXIT_OK if not summary.get("unreconciled_days") else EXIT_FAILED


def run_export(
    settings: Settings, report: str, first: date, last: date, fmt: str, output: Path
) -> int:
    """Write one report (or the dashboard page) of local days ``first``..``last`` to ``output``."""
    from vis_pipeline import warehouse as wh
    from vis_pipeline.exports import ExportError, export_report
    from vis_pipeline.locking import warehouse_lock

    if not settings.warehouse_path.exists():
        print(
            f"vis-pipeline: no warehouse at {settings.warehouse}; run `vis-pipeline sync` first",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        with (
            warehouse_lock(settings.warehouse),
            wh.connect(settings.warehouse_path, read_only=True) as conn,
        ):
            written = export_report(conn, report, first, last, fmt, output, tz=settings.timezone)
    except ExportError as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(written)
    return EXIT_OK


def run_demo(settings: Settings, days: int, calls_per_day: int, *, serve: bool = False) -> int:
    """Start a simulator, sync its whole range through Dagster, and say where to look.

    The sync is the user's own command, run with the simulator's address and token in its
    environment: the demo shows exactly what ``vis-pipeline sync`` does, and the token never
    enters this process's environment. The same values go to ``.env``, so that ``vis-pipeline
    ui`` (and any command) started from this folder reproduces the demo; with ``serve`` the
    simulator stays up until Ctrl-C, so the UI can run more partitions, backfills and checks.
    """
    from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

    if not written_by_demo(env_file()):
        raise UsageError(
            f"{env_file()} holds settings the demo did not write; the demo will not replace "
            "them: run it from another folder"
        )
    first = datetime.now(UTC).date() - timedelta(days=days)
    last = first + timedelta(days=days - 1)
    options = SimulatorOptions(
        start=first.isoformat(),
        days=days,
        calls_per_day=calls_per_day,
        tz=settings.timezone,
        token=DEMO_TOKEN,
    )
    print(f"starting the VIS simulator: {days} days x ~{calls_per_day} calls a day")
    with SimulatorProcess(options) as sim:
        demo_settings = replace(
            settings,
            base_url=sim.base_url,
            access_token=sim.token,
            **dict.fromkeys(OTHER_CREDENTIALS, ""),
            start_date=first.isoformat(),
            warehouse=str(settings.warehouse_path.resolve()),
            dagster_home=str(ensure_dagster_home(settings)),
        )
        demo_variables = demo_environment(demo_settings)
        write_demo_env_file(env_file(), demo_variables)
        command = [sys.executable, "-m", "vis_pipeline.cli", "sync"]
        command += ["--from", first.isoformat(), "--to", last.isoformat()]
        environment = {**os.environ, **demo_variables}
        code = subprocess.run(command, env=environment, check=False).returncode
        if code != EXIT_OK:
            return code
        show_status(demo_settings)
        page = Path("exports") / f"dashboard_{first.isoformat()}_{last.isoformat()}.html"
        if run_export(demo_settings, "dashboard", first, last, "html", page) != EXIT_OK:
            return EXIT_FAILED
        _print_where_to_look(demo_settings, page, serving=serve)
        if serve:
            _wait_for_stop_signal()
    return EXIT_OK


OTHER_CREDENTIALS = (
    "token_url",
    "client_id",
    "client_secret",
    "username",
    "password",
    "token_command",
)
"""Settings of the other sources of tokens: the demo sets them empty, so that a user's own OAuth
or command settings can neither clash with its token nor reach its simulator."""

DEMO_SETTINGS = (
    "base_url",
    "access_token",
    *OTHER_CREDENTIALS,
    "start_date",
    "timezone",
    "warehouse",
    "dagster_home",
)
"""The settings that reproduce the demo: its simulator and token, its days, zone and files."""


def demo_environment(settings: Settings) -> dict[str, str]:
    """The variables (and values) of the demo's settings, as ``.env`` and its sync get them."""
    return {variable_of(name): str(getattr(settings, name)) for name in DEMO_SETTINGS}


def _print_where_to_look(settings: Settings, page: Path, *, serving: bool) -> None:
    print(
        "\nwhere to look:\n"
        f"  report page: {page.resolve()}\n"
        f"  warehouse:   {settings.warehouse}  (tables documented in docs/tables.md)\n"
        f"  Dagster UI:  vis-pipeline ui  (from this folder: {env_file().name} holds the demo's"
        " settings)"
    )
    if serving:
        print(
            f"\nserving the simulator at {settings.base_url} until Ctrl-C: in the UI, materialise"
            " more partitions, launch a backfill or execute a check",
            flush=True,
        )
    else:
        print("  (the simulator has stopped: `vis-pipeline demo --serve` keeps it up for the UI)")


def _wait_for_stop_signal() -> None:
    """Block until Ctrl-C or SIGTERM, either of which ends the demo the same quiet way."""
    stopping = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    try:
        signal.sigwait(stopping)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_ui(settings: Settings, host: str, port: int) -> int:
    """Become ``dagster dev`` on the project's code location and DAGSTER_HOME.

    ``dagster dev`` runs the webserver and the daemon (schedules, backfills, the run queue) and
    reads the same ``.env``; replacing this process lets Ctrl-C reach it directly, so it stops
    its own children. Returns only if it cannot be started.
    """
    home = ensure_dagster_home(settings)
    command = [sys.executable, "-m", "dagster", "dev", "-m", CODE_LOCATION]
    command += ["--host", host, "--port", str(port)]
    environment = {**os.environ, "DAGSTER_HOME": str(home)}
    environment["PYTHONWARNINGS"] = ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), *QUIET_DAGSTER_WARNINGS])
    )
    print(
        f"Dagster UI on http://{host}:{port}  (instance {home}, location {CODE_LOCATION})",
        flush=True,
    )
    sys.stderr.flush()
    # A shell script's background job starts with SIGINT ignored, and dagster dev maps SIGTERM
    # to its SIGINT handler: left so, nothing but SIGKILL (which strands its children) stops it.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_DFL)
    os.execve(sys.executable, command, environment)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
