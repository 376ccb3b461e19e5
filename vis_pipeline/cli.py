"""The ``vis-pipeline`` command: simulate, sync, status, demo.

Expected failures (bad input, an unreachable API, a rejected token) print one clear line and
exit non-zero (2 for usage errors); tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path

from vis_pipeline.settings import Settings, SettingsError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_DAGSTER_HOME = Path("dagster_home")
"""Dagster's home when DAGSTER_HOME is not set: relative to the working directory, like the
warehouse (from the repository root, the project's committed folder)."""

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster flags single-run backfills as beta on every load; it is not the user's concern.
    warnings.filterwarnings("ignore", message=".*backfill_policy.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
        return run_demo(settings, args.days, args.calls_per_day)
    except (UsageError, SettingsError) as exc:
        print(f"vis-pipeline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to ``dagster_home/``, so runs show in ``dagster dev``.

    A home without instance settings gets the packaged defaults: a wheel install has no
    checkout to copy them from, and without them runs would not queue for the one DuckDB writer.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_settings = home / "dagster.yaml"
    if not instance_settings.exists():
        defaults = files(DAGSTER_DEFAULTS).joinpath("dagster.yaml")
        instance_settings.write_text(defaults.read_text(encoding="utf-8"), encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_sync(settings: Settings, first: date, last: date, *, full: bool = False) -> SyncOutcome:
    """Materialise the events of local days ``first``..``last`` as one Dagster run."""
    import dagster as dg

    from vis_pipeline.defs import build_definitions
    from vis_pipeline.defs.jobs import SYNC_JOB, range_tags

    if not settings.access_token:
        raise UsageError("VIS_ACCESS_TOKEN is not set (the API needs a bearer token)")
    earliest = date.fromisoformat(settings.start_date)
    if first < earliest:
        raise UsageError(f"--from {first} is before VIS_START_DATE ({earliest})")
    latest = datetime.now(UTC).date() + timedelta(days=1)
    if last > latest:
        raise UsageError(f"--to {last} is in the future")
    ensure_dagster_home()
    job = build_definitions(settings).resolve_job_def(SYNC_JOB)
    with dg.DagsterInstance.get() as instance:
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


def run_demo(settings: Settings, days: int, calls_per_day: int) -> int:
    """Start a simulator, sync its whole range through Dagster, and say where to look."""
    from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

    first = datetime.now(UTC).date() - timedelta(days=days)
    options = SimulatorOptions(
        start=first.isoformat(),
        days=days,
        calls_per_day=calls_per_day,
        tz=settings.timezone,
        token=DEMO_TOKEN,
    )
    print(f"starting the VIS simulator: {days} days x ~{calls_per_day} calls a day")
    with SimulatorProcess(options) as sim:
        os.environ.update(
            VIS_BASE_URL=sim.base_url, VIS_ACCESS_TOKEN=sim.token, VIS_START_DATE=first.isoformat()
        )
        demo_settings = Settings.from_env()
        outcome = run_sync(demo_settings, first, first + timedelta(days=days - 1))
        code = _print_sync(outcome)
    if code != EXIT_OK:
        return code
    show_status(demo_settings)
    last = first + timedelta(days=days - 1)
    page = Path("exports") / f"dashboard_{first.isoformat()}_{last.isoformat()}.html"
    if run_export(demo_settings, "dashboard", first, last, "html", page) != EXIT_OK:
        return EXIT_FAILED
    print(
        "\nwhere to look:\n"
        f"  report page: {page.resolve()}\n"
        f"  warehouse:   {demo_settings.warehouse}  (tables documented in docs/tables.md)\n"
        f"  Dagster UI:  DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev"
        f"  (run {outcome.run_id})"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
