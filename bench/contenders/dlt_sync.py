"""The same sync done the way a dlt user would: RESTClient, a paginator, a merge resource.

One request window per local day through ``fromDate``/``toDate``; each day's page total comes
from getEventsCount (the API gives no total in its pages, and a short page is not proof of the
end); a ``PageNumberPaginator`` walks ``offset`` from page 0; a ``@dlt.resource`` with
``primary_key="id"`` and ``write_disposition="merge"`` loads into a fresh DuckDB file.

    python -m bench.contenders.dlt_sync --base-url URL --warehouse FILE --first D --days N
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_helpers import TOKEN_ENV, day_windows, emit, profiled

DATASET = "vis_dlt"
"""Schema the events land in inside the DuckDB file (table ``events``)."""

PIPELINE_NAME = "vis_bench"
"""Name of the dlt pipeline (its state lives in a working folder beside the warehouse)."""

QUIET_DLT_ENV = {
    # dlt phones home by default; the benchmark talks to loopback only.
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "RUNTIME__LOG_LEVEL": "WARNING",
}
"""dlt configuration set before dlt is imported: no telemetry, quiet logs."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--first", type=date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--profile", default=None, help="write a cProfile dump here")
    return parser.parse_args(argv)


def build_pipeline(args: argparse.Namespace, token: str) -> tuple[Any, Any]:
    """The dlt pipeline and its events resource over the days of ``args``."""
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator

    client = RESTClient(base_url=args.base_url, auth=BearerTokenAuth(token), data_selector="$")
    windows = day_windows(args.first, args.days, args.tz)

    @dlt.resource(name="events", primary_key="id", write_disposition="merge")
    def events() -> Iterator[list[dict[str, Any]]]:
        for start, end in windows:
            window = {"fromDate": start, "toDate": end}
            total = client.get("/self/events/count", params=window).json()["count"]
            if total == 0:
                continue
            paginator = PageNumberPaginator(
                base_page=0,
                page_param="offset",
                total_path=None,
                maximum_page=-(-total // args.page_size),
            )
            params = {**window, "size": args.page_size, "sort": "startTime", "order": "ASC"}
            yield from client.paginate("/self/events", params=params, paginator=paginator)

    work_dir = args.warehouse.parent / f"{args.warehouse.stem}.dlt"
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(work_dir),
        destination=dlt.destinations.duckdb(str(args.warehouse)),
        dataset_name=DATASET,
    )
    return pipeline, events


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(QUIET_DLT_ENV)
    token = os.environ[TOKEN_ENV]
    args.warehouse.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with profiled(args.profile):
        pipeline, events = build_pipeline(args, token)
        imported = time.perf_counter()
        # run() is extract + normalize + load; called one by one to time each stage.
        pipeline.extract(events())
        extracted = time.perf_counter()
        pipeline.normalize()
        normalized = time.perf_counter()
        info = pipeline.load()
    finished = time.perf_counter()
    emit(
        {
            "contender": "dlt",
            "loads": len(info.loads_ids),
            "failed_jobs": bool(info.has_failed_jobs),
            "import_s": round(imported - started, 3),
            "extract_s": round(extracted - imported, 3),
            "normalize_s": round(normalized - extracted, 3),
            "load_s": round(finished - normalized, 3),
            "work_s": round(finished - imported, 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
