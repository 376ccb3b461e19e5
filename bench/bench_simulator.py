"""How many pages of 100 events a second the simulator serves.

Starts the simulator (30 days x 10,000 calls a day by default) in its own process and loads
``listEvents`` (size 100, a random page of a random day) from separate loader processes, each
keeping several keep-alive connections busy with a minimal HTTP/1.1 client on asyncio, so the
loader is cheap next to the server. Prints pages per second of wall time and per CPU second
of the server process (its one-core throughput, whatever the loaders cost).

    python bench/bench_simulator.py [--days 30] [--calls-per-day 10000] [--seconds 10]
                                    [--loaders 2] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import orjson
import psutil

from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

PAGE_SIZE = 100
"""Events per page requested."""

TOKEN = "bench-token"
"""Token of the benchmark's own loopback simulator (it guards nothing else)."""


def _requests(url: str, windows: list[tuple[int, int, int]], seed: int) -> list[bytes]:
    """Raw HTTP/1.1 requests for random full pages of the given day windows."""
    parts = urlsplit(url)
    rng = random.Random(seed)
    made = []
    for _ in range(2000):
        start, end, pages = rng.choice(windows)
        target = (
            f"{parts.path}/self/events?fromDate={start}&toDate={end}"
            f"&size={PAGE_SIZE}&offset={rng.randrange(pages)}"
        )
        made.append(
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
    return made


async def _connection(
    host: str, port: int, requests: list[bytes], deadline: float, tally: list[int]
) -> None:
    """Send requests one after the other on one keep-alive connection until ``deadline``."""
    reader, writer = await asyncio.open_connection(host, port)
    index = 0
    while time.monotonic() < deadline:
        writer.write(requests[index % len(requests)])
        index += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        tally[0 if head.startswith(b"HTTP/1.1 200") else 1] += 1
    writer.close()


def _loader(
    url: str,
    windows: list[tuple[int, int, int]],
    seconds: float,
    connections: int,
    seed: int,
    out: multiprocessing.Queue,
) -> None:
    """One loader process: ``connections`` concurrent connections for ``seconds``."""
    parts = urlsplit(url)
    requests = _requests(url, windows, seed)
    tally = [0, 0]

    async def run() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _connection(parts.hostname or "", parts.port or 80, requests[i:], deadline, tally)
                for i in range(connections)
            )
        )

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
    out.put(tuple(tally))


def _day_windows(sim: SimulatorProcess, options: SimulatorOptions) -> list[tuple[int, int, int]]:
    """(start, end, full pages) of every day of the data set."""
    windows = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sim.base_url, headers=headers, trust_env=False) as client:
        for day in range(options.days):
            low, high = options.day_start_ms(day), options.day_start_ms(day + 1)
            count = client.get("/self/events/count", params={"fromDate": low, "toDate": high})
            pages = count.json()["count"] // PAGE_SIZE
            if pages:
                windows.append((low, high, pages))
        sample = client.get("/self/events", params={"fromDate": windows[0][0], "size": PAGE_SIZE})
        if len(orjson.loads(sample.content)) != PAGE_SIZE:
            raise SystemExit("a full page must hold 100 events")
    return windows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls-per-day", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    options = SimulatorOptions(
        seed=7, start="2026-01-01", days=args.days, calls_per_day=args.calls_per_day, token=TOKEN
    )
    started = time.monotonic()
    with SimulatorProcess(options) as sim:
        print(f"simulator up in {time.monotonic() - started:.1f} s", flush=True)
        windows = _day_windows(sim, options)
        server = psutil.Process(sim.pid)
        cpu_before = sum(server.cpu_times()[:2])
        queue: multiprocessing.Queue = multiprocessing.Queue()
        loaders = [
            multiprocessing.Process(
                target=_loader,
                args=(sim.base_url, windows, args.seconds, args.connections, seed, queue),
            )
            for seed in range(args.loaders)
        ]
        wall = time.monotonic()
        for loader in loaders:
            loader.start()
        tallies = [queue.get(timeout=args.seconds + 30) for _ in loaders]
        wall = time.monotonic() - wall
        for loader in loaders:
            loader.join(timeout=10)
        server_cpu = sum(server.cpu_times()[:2]) - cpu_before
    pages = sum(ok for ok, _ in tallies)
    failed = sum(bad for _, bad in tallies)
    print(
        f"listEvents size={PAGE_SIZE}: {pages} pages in {wall:.1f} s wall "
        f"({args.loaders} loaders x {args.connections} connections), {failed} not 200"
    )
    print(f"  {pages / wall:,.0f} pages/s wall")
    print(
        f"  {pages / max(server_cpu, 1e-9):,.0f} pages per server CPU second ({server_cpu:.1f} s)"
    )
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
