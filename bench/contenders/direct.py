"""vis-pipeline as a library: the events asset's own code path, without Dagster.

``sync_days`` with a ``VISClient`` configured as the Dagster resource configures it (the
project's default settings) and ``warehouse.connect`` for each write transaction. Run it on a
warehouse file that already holds the range and it is the re-run: settled days cost one count.

    python -m bench.contenders.direct --base-url URL --warehouse FILE --first D --last D
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_helpers import TOKEN_ENV, emit, profiled


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--first", type=date.fromisoformat, required=True)
    parser.add_argument("--last", type=date.fromisoformat, required=True)
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--full", action="store_true", help="fetch settled days again too")
    parser.add_argument("--profile", default=None, help="write a cProfile dump here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    # Imports are part of what a library user pays, so they sit inside the measured time.
    with profiled(args.profile):
        from vis_pipeline import warehouse
        from vis_pipeline.client import ClientSettings
        from vis_pipeline.extract import ExtractOptions, WindowExtractor
        from vis_pipeline.settings import Settings
        from vis_pipeline.sync import days_between, sync_days

        imported = time.perf_counter()
        settings = replace(Settings(), base_url=args.base_url, access_token=os.environ[TOKEN_ENV])
        with (
            ClientSettings.from_settings(settings).client() as client,
            WindowExtractor(client, ExtractOptions.from_settings(settings)) as extractor,
        ):
            synced = sync_days(
                extractor,
                lambda: warehouse.connect(args.warehouse),
                days_between(args.first, args.last),
                args.tz,
                full=args.full,
            )
    finished = time.perf_counter()
    emit(
        {
            "contender": "library",
            "days": len(synced),
            "statuses": dict(Counter(item.status for item in synced)),
            "loaded": sum(item.loaded for item in synced),
            "rejected": sum(item.rejected for item in synced),
            "pages": sum(item.pages for item in synced),
            "requests": sum(item.requests for item in synced),
            "repair_requests": sum(item.repair_requests for item in synced),
            "retries": sum(item.retries for item in synced),
            "import_s": round(imported - started, 3),
            "work_s": round(finished - imported, 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
