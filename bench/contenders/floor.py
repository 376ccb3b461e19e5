"""The wire's floor: every page of every day fetched and parsed, nothing kept but the ids.

Counts every day (getEventsCount), then fetches pages 0..n-1 of each day with a thread pool over
one httpx.Client, at the client's concurrency, and parses each body with orjson. No validation,
no normalisation, no storage: whatever a real sync costs beyond this is the sync's own cost.

    python -m bench.contenders.floor --base-url URL --first 2026-01-01 --days 30
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_helpers import TOKEN_ENV, day_windows, emit, profiled

COUNT_PATH = "/self/events/count"
"""getEventsCount, relative to the base URL."""

EVENTS_PATH = "/self/events"
"""listEvents, relative to the base URL."""

TIMEOUT_SECONDS = 30.0
"""Per-request timeout: generous, the floor never retries."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--first", type=date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", default=None, help="write a cProfile dump here")
    return parser.parse_args(argv)


def fetch_all(
    client: httpx.Client, windows: list[tuple[int, int]], page_size: int, concurrency: int
) -> tuple[int, set[int]]:
    """Fetch every page of every window; return (pages fetched, distinct ids seen)."""

    def count(window: tuple[int, int]) -> int:
        params = {"fromDate": window[0], "toDate": window[1]}
        response = client.get(COUNT_PATH, params=params)
        response.raise_for_status()
        return int(orjson.loads(response.content)["count"])

    def page(job: tuple[int, int, int]) -> list[int]:
        start, end, number = job
        params = {
            "fromDate": start,
            "toDate": end,
            "offset": number,
            "size": page_size,
            "sort": "startTime",
            "order": "ASC",
        }
        response = client.get(EVENTS_PATH, params=params)
        response.raise_for_status()
        return [record["id"] for record in orjson.loads(response.content)]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        counts = list(pool.map(count, windows))
        jobs = [
            (start, end, number)
            for (start, end), total in zip(windows, counts, strict=True)
            for number in range(-(-total // page_size))
        ]
        ids: set[int] = set()
        for page_ids in pool.map(page, jobs):
            ids.update(page_ids)
    return len(jobs), ids


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    token = os.environ[TOKEN_ENV]
    windows = day_windows(args.first, args.days, args.tz)
    started = time.perf_counter()
    with profiled(args.profile):
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        with httpx.Client(
            base_url=args.base_url,
            headers={"Authorization": f"Bearer {token}"},
            limits=limits,
            timeout=TIMEOUT_SECONDS,
        ) as client:
            pages, ids = fetch_all(client, windows, args.page_size, args.concurrency)
    emit(
        {
            "contender": "floor",
            "pages": pages,
            "distinct_ids": len(ids),
            "id_sum": sum(ids),
            "work_s": round(time.perf_counter() - started, 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
