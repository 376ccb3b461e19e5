"""vis-pipeline through Dagster: ``vis-pipeline sync --from D --to D``, one Dagster run.

Runs what the command runs, in this process: the settings read from the environment (the API,
token, warehouse and DAGSTER_HOME are set by the caller), then ``run_sync`` (one Dagster run of
the sync job over the range). Whatever it prints goes to stderr, so stdout keeps its one JSON
line.

    python -m bench.contenders.dagster_sync --first D --last D
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
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
    started = time.perf_counter()
    with profiled(args.profile):
        # Importing Dagster and the definitions is the fixed cost every run pays first.
        import vis_pipeline.defs  # noqa: F401
        from vis_pipeline.cli import run_sync
        from vis_pipeline.settings import Settings

        imported = time.perf_counter()
        # Dagster's own console output must not reach stdout, which carries the JSON line.
        with redirect_stdout(sys.stderr):
            outcome = run_sync(Settings.from_env(), args.first, args.last, full=args.full)
    finished = time.perf_counter()
    emit(
        {
            "contender": "dagster",
            "success": outcome.success,
            "run_id": outcome.run_id,
            "statuses": dict(Counter(str(day["status"]) for day in outcome.days)),
            "import_s": round(imported - started, 3),
            "work_s": round(finished - imported, 3),
        }
    )
    if not outcome.success:
        print(f"sync failed: {outcome.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
