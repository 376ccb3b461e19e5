"""vis-pipeline through Dagster: ``vis-pipeline sync --from D --to D``, one Dagster run.

Runs the command's own entry point in this process (what the console script does), with the
settings it reads from the environment (the API, token, warehouse and DAGSTER_HOME are set by
the caller). The command's per-day lines go to stderr so stdout keeps its one JSON line.

    python -m bench.contenders.dagster_sync --first D --last D
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_helpers import emit, profiled


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=date.fromisoformat, required=True)
    parser.add_argument("--last", type=date.fromisoformat, required=True)
    parser.add_argument("--full", action="store_true", help="fetch settled days again too")
    parser.add_argument("--profile", default=None, help="write a cProfile dump here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = ["sync", "--from", args.first.isoformat(), "--to", args.last.isoformat()]
    if args.full:
        command.append("--full")
    started = time.perf_counter()
    with profiled(args.profile):
        # Importing Dagster and the definitions is the fixed cost every run pays first.
        import vis_pipeline.defs  # noqa: F401
        from vis_pipeline.cli import main as cli_main

        imported = time.perf_counter()
        with redirect_stdout(sys.stderr):
            code = cli_main(command)
    finished = time.perf_counter()
    emit(
        {
            "contender": "dagster",
            "exit_code": code,
            "import_s": round(imported - started, 3),
            "work_s": round(finished - imported, 3),
        }
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
