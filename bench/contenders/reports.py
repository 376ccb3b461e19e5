"""Materialise every report over a synced warehouse (``materialize_reports``), timed.

python -m bench.contenders.reports --warehouse FILE --first D --last D
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_helpers import emit, profiled


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--first", type=date.fromisoformat, required=True)
    parser.add_argument("--last", type=date.fromisoformat, required=True)
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--profile", default=None, help="write a cProfile dump here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with profiled(args.profile):
        from vis_pipeline import warehouse
        from vis_pipeline.reports import materialize_reports

        imported = time.perf_counter()
        with warehouse.connect(args.warehouse) as conn:
            opened = time.perf_counter()
            rows = materialize_reports(conn, args.first, args.last, args.tz)
            finished = time.perf_counter()
    emit(
        {
            "contender": "reports",
            "rows": rows,
            "import_s": round(imported - started, 3),
            "open_s": round(opened - imported, 3),
            "work_s": round(finished - opened, 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
