"""The ``vis-pipeline`` command: simulate, sync, status, export, sql, warehouse, demo, ui;
receive, drain and webhooks for real time (``webhook_commands``).

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
from typing import TYPE_CHECKING, NoReturn

from vis_pipeline.envfile import (
    env_file,
    project_environment,
    write_demo_env_file,
    written_by_demo,
)
from vis_pipeline.errors import WarehouseError, first_line_of
from vis_pipeline.progress import on_terminal
from vis_pipeline.settings import OLD_WAREHOUSE_SUFFIXES, Settings, SettingsError, variable_of

if TYPE_CHECKING:
    import duckdb

    from vis_pipeline.catalog import WarehouseLocation

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

WEBHOOK_COMMANDS = ("receive", "drain", "webhooks")
"""The real-time commands, run by ``vis_pipeline.webhook_commands``."""

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
    details: str | None = None
    """The whole failure, trace included, for ``--verbose``."""
    interrupted: bool = False
    """The run was stopped by Ctrl-C (or SIGTERM), not by a failure of its own."""


MAX_DAYS_WITHOUT_YES = 400
"""A sync of more days than this asks for ``--yes``: it costs at least a request a day."""

EPILOG = """dates are local calendar days in VIS_TIMEZONE, written YYYY-MM-DD.
settings come from the environment and ./.env (see the README's table): VIS_BASE_URL,
VIS_ACCESS_TOKEN or VIS_TOKEN_URL/VIS_CLIENT_ID/VIS_CLIENT_SECRET or VIS_TOKEN_COMMAND,
VIS_WAREHOUSE, VIS_TIMEZONE, VIS_START_DATE, VIS_PAGE_SIZE, VIS_CONCURRENCY, VIS_TIMEOUT_SECONDS,
VIS_MAX_RETRIES, DAGSTER_HOME and more.
exit codes: 0 done, 1 failed (one line says why), 2 usage or settings error, 130 interrupted.
query the warehouse: vis-pipeline sql "select * from vis.calls limit 5"; one line each for the
duckdb shell, Python and pandas: vis-pipeline warehouse where."""

INTERRUPTED = {
    "sync": "interrupted; every day already committed stays",
    "warehouse": "interrupted; nothing was changed",
}
"""What Ctrl-C leaves behind, by command (otherwise: just interrupted)."""


def parse_day(text: str) -> date:
    """A calendar day written as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        shaped = len(text) == 10 and text[4] == "-" and text[7] == "-"
        what = "is not a day of the calendar" if shaped else "is not a date written YYYY-MM-DD"
        raise argparse.ArgumentTypeError(f"{text!r} {what}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line (the usage itself is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from vis_pipeline.exports import FORMATS, exportable_names
    from vis_pipeline.simulator.process import add_arguments as add_simulator_arguments
    from vis_pipeline.webhook_commands import add_commands as add_webhook_commands

    parser = _Parser(
        prog="vis-pipeline",
        description="Call history from the VIS API into a DuckLake warehouse, through Dagster.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose", action="store_true", help="on failure, print the whole error with its trace"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defaults = argparse.ArgumentDefaultsHelpFormatter

    simulate = commands.add_parser("simulate", help="serve the VIS simulator on loopback")
    add_simulator_arguments(simulate)

    sync = commands.add_parser(
        "sync", help="sync local days of events into the warehouse", epilog=EPILOG
    )
    sync.add_argument("--from", dest="first", type=parse_day, required=True, help="first day")
    sync.add_argument("--to", dest="last", type=parse_day, required=True, help="last day")
    sync.add_argument("--full", action="store_true", help="fetch settled days again too")
    sync.add_argument(
        "--rebuild",
        action="store_true",
        help="set the warehouse file aside (kept, renamed) and build it again from the API",
    )
    sync.add_argument(
        "--yes", action="store_true", help=f"go ahead with more than {MAX_DAYS_WITHOUT_YES} days"
    )

    commands.add_parser(
        "status", help="what the warehouse holds and what is wrong (exit 1 on any problem)"
    )
    _add_query_commands(commands)

    export = commands.add_parser(
        "export", help="write a report of local days to a file (read-only)", epilog=EPILOG
    )
    export.add_argument("report", choices=exportable_names())
    export.add_argument("--from", dest="first", type=parse_day, required=True, help="first day")
    export.add_argument("--to", dest="last", type=parse_day, required=True, help="last day")
    export.add_argument("--format", dest="fmt", choices=FORMATS, required=True)
    export.add_argument("--output", type=Path, required=True, help="file to write")

    users = commands.add_parser("users", help="the user directory: names the API cannot give")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    imported = users_commands.add_parser(
        "import", help="replace the directory with a CSV whose header holds user_id and name"
    )
    imported.add_argument("file", type=Path, help="the CSV file")
    add_webhook_commands(commands)  # receive, drain, webhooks

    demo = commands.add_parser(
        "demo", help="simulator + sync + summary, no setup needed", formatter_class=defaults
    )
    demo.add_argument("--days", type=int, default=30, help="days of calls")
    demo.add_argument("--calls-per-day", type=int, default=1000, help="calls a day, about")
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep the simulator running afterwards (until Ctrl-C), so the UI can run more",
    )
    demo.add_argument(
        "--live",
        action="store_true",
        help="then run the simulator's clock and watch calls land through webhooks",
    )
    demo.add_argument("--live-seconds", type=int, default=60, help="how long --live runs")

    ui = commands.add_parser(
        "ui", help="the Dagster UI and daemon on this project's instance", formatter_class=defaults
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ui.add_argument("--port", type=int, default=3000, help="port to listen on")
    return parser


def _row_limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows (0: all)")
    return limit


def _add_query_commands(commands: argparse._SubParsersAction) -> None:
    """``sql`` and ``warehouse`` (where, import): the analysts' ways in, and the one-time import
    of an earlier version's warehouse file."""
    from vis_pipeline.ad_hoc import DEFAULT_LIMIT

    sql = commands.add_parser(
        "sql",
        help="run one read-only query on the warehouse and print its rows (or write CSV)",
        epilog='example: vis-pipeline sql "select local_date, count(*) from vis.calls group by 1"',
    )
    sql.add_argument("query", help="one SQL statement (vis.calls, vis.events, reports.* ...)")
    sql.add_argument(
        "--limit",
        type=_row_limit,
        default=DEFAULT_LIMIT,
        help=f"rows printed, the others counted (0: all; default {DEFAULT_LIMIT})",
    )
    sql.add_argument(
        "--csv", metavar="FILE", help="write every row as CSV to FILE instead ('-': stdout)"
    )
    warehouse = commands.add_parser(
        "warehouse",
        help="how to open the warehouse (where); compact it; import an earlier version's file",
    )
    warehouse_commands = warehouse.add_subparsers(dest="warehouse_command", required=True)
    warehouse_commands.add_parser(
        "where", help="print one line each that opens it read-only: duckdb shell, Python, pandas"
    )
    warehouse_commands.add_parser(
        "compact",
        help="merge small files and expire old snapshots now (waits for a sync under way)",
    )
    imported = warehouse_commands.add_parser(
        "import",
        help="copy a warehouse.duckdb of an earlier version (or its EXPORT DATABASE folder) "
        "into the warehouse, once",
    )
    imported.add_argument("old", type=Path, help="the old warehouse.duckdb, or the export folder")
    imported.add_argument(
        "--force",
        "--yes",
        dest="force",
        action="store_true",
        help="replace what the warehouse holds, even events",
    )


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster flags single-run backfills as beta on every load; it is not the user's concern.
    warnings.filterwarnings("ignore", message=".*backfill_policy.*")
    # Dagster marks some of the features the location uses as beta or preview on every load.
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            # The demo writes its own .env (the file of an earlier demo must not steer it) and
            # brings its own token: the user's credentials are none of its business.
            settings = Settings.from_env(_without_credentials(os.environ))
            live_seconds = args.live_seconds if args.live else 0
            return run_demo(
                settings, args.days, args.calls_per_day, serve=args.serve, live=live_seconds
            )
        environment = project_environment()
        if environment != dict(os.environ):
            _restart_with(environment, argv)
        settings = _settings(args)
        if args.command == "simulate":
            from vis_pipeline.simulator.process import main as simulate

            return simulate(list(argv if argv is not None else sys.argv[1:])[1:])
        if args.command == "sync":
            _check_range(args.first, args.last)
            _refuse_unimported_old_file(settings)
            if args.rebuild:
                _set_aside(settings)
            with on_terminal():  # a status line on a terminal, nothing in a log
                outcome = run_sync(
                    settings, args.first, args.last, full=args.full or args.rebuild, yes=args.yes
                )
            return _print_sync(outcome, verbose=args.verbose)
        if args.command == "status":
            return show_status(settings)
        if args.command == "export":
            _check_range(args.first, args.last)
            return run_export(settings, args.report, args.first, args.last, args.fmt, args.output)
        if args.command == "users":
            return import_users(settings, args.file)
        if args.command == "sql":
            return run_sql(settings, args.query, args.limit, args.csv)
        if args.command == "warehouse" and args.warehouse_command == "where":
            return show_where(settings)
        if args.command == "warehouse" and args.warehouse_command == "compact":
            return compact_now(settings)
        if args.command == "warehouse":
            return import_warehouse(settings, args.old, force=args.force)
        if args.command in WEBHOOK_COMMANDS:
            from vis_pipeline.webhook_commands import run_command

            return run_command(settings, args)
        return run_ui(settings, args.host, args.port)
    except (UsageError, SettingsError) as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WarehouseError as exc:  # a location that cannot be used, a catalog that won't open
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"vis-pipeline: {INTERRUPTED.get(args.command, 'interrupted')}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _settings(args: argparse.Namespace) -> Settings:
    """The settings; for an import, a VIS_WAREHOUSE still naming the old file is explained."""
    try:
        return Settings.from_env()
    except SettingsError:
        old = os.environ.get("VIS_WAREHOUSE", "")
        if args.command == "warehouse" and Path(old).suffix.lower() in OLD_WAREHOUSE_SUFFIXES:
            raise UsageError(
                f"VIS_WAREHOUSE still names the old file {old}: set it to the new warehouse's "
                "catalog (or unset it for data/warehouse.sqlite), then run `vis-pipeline "
                f"warehouse import {old}`"
            ) from None
        raise


def _refuse_unimported_old_file(settings: Settings) -> None:
    """A sync about to start an empty warehouse beside an earlier version's file stops and
    says how to import the file instead."""
    from vis_pipeline.catalog import location_of
    from vis_pipeline.old_warehouse import old_file_beside

    try:
        location = location_of(settings)
    except WarehouseError:
        return  # the run itself says what is wrong with the location
    old = old_file_beside(location)
    if old is not None and not location.exists():
        raise UsageError(
            f"{_path_text(old)} is a warehouse of an earlier version and "
            f"{_path_text(location.catalog)} does not exist yet: import it first with "
            f"`vis-pipeline warehouse import {_path_text(old)}` (or move it away to start an "
            "empty warehouse)"
        )


def _no_warehouse(location: WarehouseLocation) -> int:
    """Say that there is no warehouse yet (and how to import an old one found beside it)."""
    from vis_pipeline.old_warehouse import old_file_beside

    old = old_file_beside(location)
    what = f"no warehouse at {location.describe()}"
    if old is None:
        what += "; run `vis-pipeline sync` first"
    else:
        what += f"; import the earlier version's: vis-pipeline warehouse import {_path_text(old)}"
    print(f"vis-pipeline: {what}", file=sys.stderr)
    return EXIT_FAILED


def _path_text(path: Path | str) -> str:
    """``path`` as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_range(first: date, last: date) -> None:
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")


def _set_aside(settings: Settings) -> None:
    """Move the warehouse's catalog and data out of the way before a rebuild (kept, renamed)."""
    from vis_pipeline.catalog import location_of, set_aside

    location = location_of(settings)
    if location.exists():
        for moved in set_aside(location):
            print(f"the old warehouse is kept as {moved}", file=sys.stderr)


def import_users(settings: Settings, path: Path) -> int:
    """Replace the warehouse's user directory with the CSV at ``path``."""
    from vis_pipeline import warehouse as wh
    from vis_pipeline.catalog import location_of
    from vis_pipeline.user_directory import DirectoryError, import_directory

    try:
        with wh.open_writer(location_of(settings)) as conn:
            count = import_directory(conn, path)
    except DirectoryError as exc:
        raise UsageError(str(exc)) from None
    print(f"{count} users in the directory; reports name them from the next report build on")
    return EXIT_OK


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


def run_sync(
    settings: Settings, first: date, last: date, *, full: bool = False, yes: bool = False
) -> SyncOutcome:
    """Materialise the events of local days ``first``..``last`` as one Dagster run."""
    import dagster as dg

    from vis_pipeline.auth import has_credentials
    from vis_pipeline.defs import build_definitions
    from vis_pipeline.defs.jobs import SYNC_JOB, range_tags
    from vis_pipeline.defs.runs import fail_dead_runs, process_tags

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
    days = (last - first).days + 1
    if days > MAX_DAYS_WITHOUT_YES and not yes:
        raise UsageError(
            f"{days} days will take at least {days} count requests and one page request per "
            f"{settings.page_size} events; add --yes to go ahead"
        )
    home = ensure_dagster_home(settings)
    job = build_definitions(settings).resolve_job_def(SYNC_JOB)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        fail_dead_runs(instance)
        result = job.execute_in_process(
            instance=instance,
            tags={**range_tags(first, last), **process_tags()},
            run_config={
                "ops": {"vis__events": {"config": {"full": full}}},
                # The run's full log is in DAGSTER_HOME (and the UI); failures are summed up below.
                "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            },
            raise_on_error=False,
        )
    error, details = (None, None) if result.success else _first_failure(result)
    return SyncOutcome(
        success=result.success,
        run_id=result.run_id,
        days=_days_of_run(settings, result.run_id) if result.success else [],
        error=error,
        details=details,
        interrupted=bool(details) and any(name in details for name in INTERRUPTIONS),
    )


INTERRUPTIONS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
"""What Dagster turns Ctrl-C into inside a run: the run ends, and the command exits 130."""


def _first_failure(result: object) -> tuple[str, str]:
    """The first failed step's message in one line, and the whole failure for ``--verbose``."""
    from vis_pipeline.defs.runs import first_line
    from vis_pipeline.defs.sensors import innermost_message

    for event in result.all_events:  # type: ignore[attr-defined]
        if event.is_step_failure:
            error = event.step_failure_data.error
            # Dagster wraps the user's exception: the project's own error says it best, else
            # the innermost cause does; its first line, since notes and traces follow it.
            message = first_line(innermost_message(error))
            return f"{event.step_key}: {message}", error.to_string()
    return "the run failed", ""


def _days_of_run(settings: Settings, run_id: str) -> list[dict[str, object]]:
    from vis_pipeline import warehouse as wh
    from vis_pipeline.catalog import location_of

    with wh.connect(location_of(settings), read_only=True) as conn:
        return wh.run_days(conn, run_id)


def _print_sync(outcome: SyncOutcome, *, verbose: bool = False) -> int:
    if outcome.interrupted:
        print(
            f"vis-pipeline: interrupted (run {outcome.run_id}); every day already committed stays",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not outcome.success:
        print(f"vis-pipeline: sync failed: {outcome.error}", file=sys.stderr)
        if verbose and outcome.details:
            print(outcome.details.rstrip(), file=sys.stderr)
        else:
            print(
                f"  (run {outcome.run_id}: its whole log in `vis-pipeline ui`, or run again "
                "with --verbose)",
                file=sys.stderr,
            )
        return EXIT_FAILED
    print(f"{'day':<10}  {'status':<8} {'API count':>9}  {'loaded':>7}  {'rejected':>8}")
    for day in outcome.days:
        print(
            f"{day['local_date']!s:<10}  {day['status']:<8} {day['api_count']:>9}  "
            f"{day['loaded']:>7}  {day['rejected']:>8}"
        )
    print(f"run {outcome.run_id}: {len(outcome.days)} days")
    return EXIT_OK


def show_status(settings: Settings) -> int:
    """Print what the warehouse holds and, one line each, every problem; exit 1 on any.

    It reads every table it sums up (so a damaged file shows) and the last sync's real outcome
    from Dagster's run storage; it writes nothing.
    """
    import duckdb

    from vis_pipeline import warehouse as wh
    from vis_pipeline.catalog import location_of
    from vis_pipeline.health import warehouse_problems

    location = location_of(settings)
    if not location.exists():
        return _no_warehouse(location)
    try:
        with wh.connect(location, read_only=True) as conn:
            summary, problems = warehouse_problems(conn)
    except (duckdb.Error, wh.WarehouseError) as exc:
        summary, problems = None, [_unreadable(exc)]
    problems += _last_run_problems(settings)
    for key, value in (summary or {}).items():
        print(f"{key.replace('_', ' '):>22}: {_shown(value)}")
    for problem in problems:
        print(f"vis-pipeline: {problem}", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK


def _shown(value: object) -> str:
    """A summary value as a person reads it: lists and tables as words, never Python syntax."""
    if isinstance(value, dict):
        return ", ".join(f"{key.replace('_', ' ')} {count:,}" for key, count in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) if value else "none"
    return "none" if value is None else str(value)


def _unreadable(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "lock" in text.lower():
        return "the warehouse is being written by a sync; try again when it ends"
    return f"the warehouse cannot be read ({text}); rebuild it: vis-pipeline sync --rebuild"


def _last_run_problems(settings: Settings) -> list[str]:
    """The last sync's failure, from Dagster's run storage (runs whose process died included)."""
    import dagster as dg

    from vis_pipeline.defs.runs import fail_dead_runs, last_sync

    home = Path(settings.dagster_home).resolve()
    if not (home / "dagster.yaml").exists():
        return []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        fail_dead_runs(instance)
        outcome = last_sync(instance)
    if outcome is None or not outcome.failed:
        return []
    why = f": {outcome.message}" if outcome.message else ""
    return [f"the last sync (run {outcome.run_id}) ended {outcome.status}{why}"]


def compact_now(settings: Settings) -> int:
    """Compact the warehouse now, as the maintenance job does, and print what it did."""
    from vis_pipeline.catalog import location_of
    from vis_pipeline.maintenance import compact_warehouse

    retention = timedelta(days=settings.snapshot_retention_days)
    done = compact_warehouse(location_of(settings), retention)
    print(
        f"files read by the current snapshot: {done.files_before} -> {done.files_after}; "
        f"{done.files_merged} merged, {done.snapshots_expired} snapshots expired, "
        f"{done.files_deleted} files deleted ({done.seconds:.1f} s)"
    )
    return EXIT_OK


def run_export(
    settings: Settings, report: str, first: date, last: date, fmt: str, output: Path
) -> int:
    """Write one report (or the dashboard page) of local days ``first``..``last`` to ``output``."""
    import duckdb

    from vis_pipeline import warehouse as wh
    from vis_pipeline.catalog import location_of
    from vis_pipeline.exports import ExportError, check_request, export_report

    try:
        check_request(report, fmt)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    location = location_of(settings)
    if not location.exists():
        return _no_warehouse(location)
    try:
        # Read-only and lock-free: an export reads the last committed snapshot, whatever a sync
        # is doing, and needs no write access anywhere but its output.
        with wh.connect(location, read_only=True) as conn:
            conn.begin()  # one snapshot for every query of the file, whatever a sync commits
            written = export_report(conn, report, first, last, fmt, output, tz=settings.timezone)
            conn.rollback()
    except ExportError as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except duckdb.Error as exc:
        print(f"vis-pipeline: {_unreadable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(written)
    return EXIT_OK


def run_sql(settings: Settings, query: str, limit: int, csv_path: str | None) -> int:
    """Run one read-only query and print its first ``limit`` rows as a table, or write every
    row as CSV to ``csv_path`` (``-``: standard output)."""
    import duckdb

    from vis_pipeline import warehouse as wh
    from vis_pipeline.ad_hoc import QueryError, format_table, run_query
    from vis_pipeline.catalog import location_of

    location = location_of(settings)
    if not location.exists():
        return _no_warehouse(location)
    try:
        # A reader: it sees the last committed snapshot, and DuckDB refuses any write to it.
        with wh.connect(location, read_only=True) as conn:
            if csv_path is None:
                print(format_table(run_query(conn, query, limit)))
            else:
                _write_query_csv(conn, query, csv_path)
    except QueryError as exc:
        raise UsageError(str(exc)) from None
    except (duckdb.Error, wh.WarehouseError) as exc:
        print(f"vis-pipeline: {first_line_of(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader of the output (| head) has gone: the rows it wanted were printed.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _write_query_csv(conn: duckdb.DuckDBPyConnection, query: str, csv_path: str) -> None:
    """Every row of ``query`` as CSV: to standard output, or to a file replaced at once."""
    from vis_pipeline.ad_hoc import write_csv

    if csv_path == "-":
        write_csv(conn, query, sys.stdout)
        return
    target = Path(csv_path)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            rows = write_csv(conn, query, out)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    print(f"{rows:,} rows written to {target}")


def show_where(settings: Settings) -> int:
    """Print the warehouse's location and one line each that opens it read-only: the duckdb
    shell, Python and pandas (ready to paste: the labels are comments)."""
    from vis_pipeline.ad_hoc import access_lines
    from vis_pipeline.catalog import location_of

    location = location_of(settings)
    if not location.exists():
        return _no_warehouse(location)
    lines = access_lines(location)
    print(f"# warehouse: {location.describe()}, data files in {location.data_path}")
    print(f"# the duckdb shell (duckdb {_duckdb_version()}, read-only):\n{lines['duckdb']}")
    print(f"# Python (read-only):\n{lines['python']}")
    print(f"# pandas:\n{lines['pandas']}")
    return EXIT_OK


def _duckdb_version() -> str:
    import duckdb

    return duckdb.__version__


def import_warehouse(settings: Settings, old_path: Path, *, force: bool) -> int:
    """Copy an earlier version's warehouse (file or EXPORT DATABASE folder) into the
    warehouse, in one transaction, and print what each table now holds."""
    from vis_pipeline.catalog import location_of
    from vis_pipeline.old_warehouse import (
        ImportRefused,
        OldWarehouseError,
        import_old_warehouse,
        read_old_warehouse,
    )

    location = location_of(settings)
    try:
        old = read_old_warehouse(old_path)
        imported = import_old_warehouse(location, old, replace=force)
    except ImportRefused as exc:
        raise UsageError(str(exc)) from None
    except (OldWarehouseError, WarehouseError) as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"imported {old_path} into {location.describe()} (rows per table, as in the old one):")
    for table in imported:
        replaced = f"  (replacing {table.replaced:,})" if table.replaced else ""
        print(f"  {table.table:<34} {table.rows:>12,}{replaced}")
    if old.left_out:
        print(f"left out, not the warehouse's: {', '.join(old.left_out)}")
    return EXIT_OK


def run_demo(
    settings: Settings, days: int, calls_per_day: int, *, serve: bool = False, live: int = 0
) -> int:
    """Start a simulator, sync its whole range through Dagster, and say where to look.

    The sync is the user's own command, run with the simulator's address and token in its
    environment: the demo shows exactly what ``vis-pipeline sync`` does, and the token never
    enters this process's environment. The same values go to ``.env``, so that ``vis-pipeline
    ui`` (and any command) started from this folder reproduces the demo; with ``serve`` the
    simulator stays up until Ctrl-C, so the UI can run more partitions, backfills and checks.
    With ``live`` (seconds), the simulator's clock starts at 09:00 on the last day and then runs
    that long through the morning, its calls delivered by webhooks (``run_live_demo``).
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
        now=_live_start(last, settings.timezone) if live else None,
    )
    print(f"starting the VIS simulator: {days} days x ~{calls_per_day} calls a day")
    from vis_pipeline.catalog import location_of

    location = location_of(settings)
    with SimulatorProcess(options) as sim:
        demo_settings = replace(
            settings,
            base_url=sim.base_url,
            access_token=sim.token,
            **dict.fromkeys(OTHER_CREDENTIALS, ""),
            start_date=first.isoformat(),
            # Absolute, so the .env the demo writes works from any folder.
            warehouse=location.catalog if location.kind == "sqlite" else settings.warehouse,
            warehouse_data=location.data_path,
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
        if live:
            from vis_pipeline.webhook_commands import run_live_demo

            run_live_demo(sim.control, demo_settings, environment, live)
        _print_where_to_look(demo_settings, page, serving=serve)
        if serve:
            _wait_for_stop_signal()
    return EXIT_OK


def _live_start(day: date, tz: str) -> str:
    """09:00 local on ``day``, as the simulator's first clock reading for the live demo."""
    from zoneinfo import ZoneInfo

    from vis_pipeline.records import format_instant_ms, to_epoch_ms

    moment = datetime.combine(day, datetime.min.time().replace(hour=9), ZoneInfo(tz))
    return format_instant_ms(to_epoch_ms(moment))


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
    "warehouse_data",
    "dagster_home",
)
"""The settings that reproduce the demo: its simulator and token, its days, zone and files."""


def demo_environment(settings: Settings) -> dict[str, str]:
    """The variables (and values) of the demo's settings, as ``.env`` and its sync get them."""
    return {variable_of(name): str(getattr(settings, name)) for name in DEMO_SETTINGS}


def _print_where_to_look(settings: Settings, page: Path, *, serving: bool) -> None:
    from vis_pipeline.catalog import describe_text

    print(
        "\nwhere to look:\n"
        f"  report page: {page.resolve()}\n"
        f"  warehouse:   {describe_text(settings.warehouse)}  (tables: docs/tables.md)\n"
        '  query it:    vis-pipeline sql "select * from vis.calls limit 5"  (duckdb shell, '
        "Python, pandas: vis-pipeline warehouse where)\n"
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
