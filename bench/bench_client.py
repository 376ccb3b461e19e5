"""The client alone: events per second, requests per 1,000 events and peak memory.

Starts the simulator (30 days x 10,000 calls a day by default, page size 100) in its own
process, then extracts the whole range day by day with ``VISClient.iter_windows`` in a fresh
child process that keeps nothing but a count, so the figures are the client's own.

    python bench/bench_client.py [--days 30] [--calls-per-day 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

TOKEN = "bench-token"
"""Token of the benchmark's own loopback simulator (it guards nothing else)."""

FIRST_DAY = date(2026, 9, 1)
"""First simulated day (fixed, so runs compare)."""


def extract(base_url: str, days: int) -> dict[str, float]:
    """Runs in the child: extract every day, keep only counts."""
    from vis_pipeline.client import VISClient
    from vis_pipeline.extract import WindowExtractor
    from vis_pipeline.sync import local_day_window

    windows = [local_day_window(FIRST_DAY + timedelta(days=i), "UTC") for i in range(days)]
    events = requests = retries = 0
    started = time.perf_counter()
    with VISClient(base_url, TOKEN) as client, WindowExtractor(client) as extractor:
        for result in extractor.iter_windows(windows):
            events += len(result.events)
            requests += result.stats.requests
            retries += result.stats.retries
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "events": events,
        "requests": requests,
        "retries": retries,
        "wall_s": wall,
        "peak_rss_mb": peak_mb,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls-per-day", type=int, default=10_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(extract(args.child, args.days)))
        return 0
    options = SimulatorOptions(
        seed=7,
        start=FIRST_DAY.isoformat(),
        days=args.days,
        calls_per_day=args.calls_per_day,
        token=TOKEN,
        now=f"{(FIRST_DAY + timedelta(days=args.days + 1)).isoformat()}T00:00:00.000Z",
    )
    with SimulatorProcess(options) as sim:
        # The child runs first: Linux keeps a process's peak RSS across exec, so a parent that
        # already held the truth would lend the child its own peak.
        done = subprocess.run(
            [sys.executable, __file__, "--days", str(args.days), "--child", sim.base_url],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        first_ms, end_ms = options.range_ms()
        truth = len(sim.control.truth(first_ms, end_ms))
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"events            {figures['events']:>10,}  (simulator truth {truth:,})")
    print(f"wall seconds      {figures['wall_s']:>10.2f}")
    print(f"events per second {figures['events'] / figures['wall_s']:>10,.0f}")
    print(f"requests / 1,000  {1000 * figures['requests'] / figures['events']:>10.2f}")
    print(f"retries           {figures['retries']:>10}")
    print(f"peak RSS MB       {figures['peak_rss_mb']:>10.1f}")
    return 0 if figures["events"] == truth else 1


if __name__ == "__main__":
    sys.exit(main())
