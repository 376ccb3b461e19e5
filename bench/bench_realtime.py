"""Real time, measured: call end -> row queryable, and the receiver's throughput.

    python bench/bench_realtime.py                      # 10 and 200 events/s, then throughput
    python bench/bench_realtime.py --rates 50 --seconds 10 --skip-throughput

**Latency.** A simulator (its own process) delivers signed webhooks to ``vis-pipeline receive``
(its own process) while this script moves the simulator's clock in small steps, fast enough for
the deliveries to come at the asked rate (events per second of real time: appearances, answers
and ends of calls). A drain loop in this process (``live.drain_spool`` every ``--drain-every``
seconds, as ``vis-pipeline drain --follow`` runs it) merges the spool into a DuckDB file. For
every call that ends while the clock runs, the latency is the time from the moment the
simulator queued the delivery of its end (the clock passed the call's end) to the commit of
the merge that brought its final row into ``vis.events`` (queryable from then on). Reported:
p50, p99 and max over those calls, and the rate the deliveries really came at.

**Throughput.** ``vis-pipeline receive`` alone, pinned to one core, against a load generator
pinned to the other (raw HTTP/1.1 keep-alive on ``--connections`` sockets, bodies signed in
advance): accepted deliveries per second over ``--throughput-seconds``, each one fsynced before
its answer. Then the drain of everything that run spooled: events merged per second.

Other work on the machine shows in the figures: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vis_pipeline.client import VISClient  # noqa: E402
from vis_pipeline.live import drain_spool, warehouse_writer  # noqa: E402
from vis_pipeline.records import FINAL_STATES  # noqa: E402
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess  # noqa: E402
from vis_pipeline.spool import Spool, spool_folder  # noqa: E402
from vis_pipeline.subscriptions import subscribe  # noqa: E402
from vis_pipeline.webhook_signing import key_or_new, key_path  # noqa: E402

STEP_SECONDS = 0.05
"""Real seconds between two moves of the simulator's clock."""

CALIBRATION_SIM_SECONDS = 900
"""Simulated seconds delivered first to learn how many events a simulated second holds."""

OPTIONS = SimulatorOptions(
    seed=21,
    start="2026-03-02",
    days=2,
    calls_per_day=30_000,
    users=40,
    now="2026-03-03T09:00:00.000Z",
)
"""A busy account whose clock starts at 09:00: about 8,000 calls an hour at the peak."""


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@contextmanager
def receiver(home: Path, cpu: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``vis-pipeline receive`` on a free loopback port, its webhook folder ``home``."""
    env = {**os.environ, "VIS_WEBHOOK_HOME": str(home)}
    command = [sys.executable, "-m", "vis_pipeline.cli", "receive", "--port", "0"]
    process = subprocess.Popen(
        command, cwd=home.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        if cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        yield announced["url"], process
    finally:
        process.terminate()
        process.wait(10)


class DrainLoop(threading.Thread):
    """Drains the spool every ``every`` seconds; remembers when each call's end committed."""

    def __init__(self, spool: Spool, warehouse: Path, every: float) -> None:
        super().__init__(daemon=True)
        self.spool, self.warehouse, self.every = spool, warehouse, every
        self.finished_at: dict[int, float] = {}
        self.merged = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            drained = drain_spool(
                self.spool, lambda: warehouse_writer(self.warehouse), "UTC", refresh_reports=False
            )
            self.merged += drained.events
            for ident in drained.finished_ids:
                self.finished_at.setdefault(ident, drained.committed_at or time.time())
            if not drained.deliveries:
                self.stop.wait(self.every)


def final_deliveries(
    sim: SimulatorProcess, since: int
) -> tuple[dict[int, tuple[float, float]], int, int]:
    """When each call's final delivery was queued and acknowledged, the deliveries made, and
    the next index of the log."""
    log = sim.control.deliveries(since)
    finals: dict[int, tuple[float, float]] = {}
    made = 0
    for line in log["deliveries"]:
        if line["kind"] != "delivery" or line["outcome"] != "delivered":
            continue
        made += 1
        if line["state"] in FINAL_STATES:
            finals.setdefault(line["event_id"], (line["queued_at"], line["at"]))
    return finals, made, log["next"]


def run_clock(sim: SimulatorProcess, speed: float, seconds: float) -> None:
    """Move the clock ``speed`` simulated seconds per real second, for ``seconds``."""
    deadline = time.monotonic() + seconds
    next_step = time.monotonic()
    while next_step < deadline:
        sim.control.advance(speed * STEP_SECONDS)
        next_step += STEP_SECONDS
        time.sleep(max(0.0, next_step - time.monotonic()))


def latency_at(rate: float, seconds: float, drain_every: float, work: Path) -> dict[str, Any]:
    """Latency figures with deliveries coming at ``rate`` events per second."""
    home = work / f"rate-{rate:g}" / "webhook"
    key_or_new(key_path(home))
    warehouse = home.parent / "warehouse.sqlite"
    with SimulatorProcess(OPTIONS) as sim, receiver(home) as (url, _process):
        with VISClient(sim.base_url, sim.token) as client:
            subscribe(client, home, url)
        # Calibrate: how many deliveries one simulated second holds at this time of day.
        sim.control.advance(CALIBRATION_SIM_SECONDS)
        sim.control.wait_for_deliveries(60)
        _, made, since = final_deliveries(sim, 0)
        speed = rate / (made / CALIBRATION_SIM_SECONDS)
        loop = DrainLoop(Spool(spool_folder(home)), warehouse, drain_every)
        loop.start()
        started = time.time()
        run_clock(sim, speed, seconds)
        ended = time.time()
        sim.control.wait_for_deliveries(60)
        time.sleep(drain_every * 3 + 1)
        loop.stop.set()
        loop.join()
        finals, made, _ = final_deliveries(sim, since)
    measured = {ident: times for ident, times in finals.items() if started <= times[0] <= ended}
    landed = {ident: times for ident, times in measured.items() if ident in loop.finished_at}
    latencies = [loop.finished_at[ident] - queued for ident, (queued, _) in landed.items()]
    delivering = [acked - queued for queued, acked in landed.values()]
    return {
        "asked_events_per_s": rate,
        "events_per_s": round(made / (ended - started), 1),
        "simulated_speed": round(speed, 1),
        "calls_ended": len(latencies),
        "not_landed": len(measured) - len(landed),
        "delivery_p50_ms": round(1000 * percentile(delivering, 0.50), 1),
        "delivery_p99_ms": round(1000 * percentile(delivering, 0.99), 1),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }


def signed_requests(count: int, key: Any, host: str, port: int) -> list[bytes]:
    """``count`` distinct HTTP/1.1 POSTs of signed CALL events."""
    requests = []
    for index in range(count):
        body = orjson.dumps(
            {
                "id": 10_000_000 + index,
                "type": "CALL",
                "accountId": 1,
                "userId": 2 + index % 40,
                "uciId": 3,
                "direction": "INBOUND",
                "state": "ANSWERED",
                "phoneNumber": f"+1555{index:07d}",
                "startTime": "2026-03-03T10:00:00.000Z",
                "answerTime": "2026-03-03T10:00:05.000Z",
                "endTime": "2026-03-03T10:02:05.000Z",
                "duration": 125_000,
            }
        )
        head = (
            f"POST /vis HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-VON-Signature: {key.sign(body)}\r\n"
            f"X-VON-Delivery-Id: bench-{index}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


async def _hammer(
    host: str, port: int, requests: list[bytes], seconds: float, connections: int
) -> tuple[int, int]:
    """Send ``requests`` round-robin on ``connections`` keep-alive connections for ``seconds``:
    (answered 2xx, answered otherwise)."""
    deadline = time.monotonic() + seconds
    counts = [0, 0]
    cursor = iter(range(10**12))

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.monotonic() < deadline:
            writer.write(requests[next(cursor) % len(requests)])
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            counts[0 if status_line.split()[1].startswith(b"2") else 1] += 1
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return counts[0], counts[1]


def throughput(seconds: float, connections: int, work: Path) -> dict[str, Any]:
    """Accepted deliveries per second of one receiver process, and the drain's rate after."""
    home = work / "throughput" / "webhook"
    key = key_or_new(key_path(home))
    cpus = sorted(os.sched_getaffinity(0))
    receiver_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    with receiver(home, receiver_cpu) as (url, _process):
        host, port = url.split("//")[1].rstrip("/").split(":")
        requests = signed_requests(20_000, key, host, int(port))
        if load_cpu is not None:
            os.sched_setaffinity(0, {load_cpu})
        started = time.monotonic()
        accepted, refused = asyncio.run(_hammer(host, int(port), requests, seconds, connections))
        elapsed = time.monotonic() - started
        if load_cpu is not None:
            os.sched_setaffinity(0, set(cpus))
    spool = Spool(spool_folder(home))
    warehouse = home.parent / "warehouse.sqlite"
    drained = 0
    drain_started = time.monotonic()
    while batch := drain_spool(
        spool, lambda: warehouse_writer(warehouse), "UTC", refresh_reports=False
    ).deliveries:
        drained += batch
    drain_seconds = time.monotonic() - drain_started
    return {
        "connections": connections,
        "cores": f"receiver on cpu {receiver_cpu}, load on cpu {load_cpu}",
        "accepted_per_s": round(accepted / elapsed),
        "refused": refused,
        "spooled": drained,
        "drained_deliveries_per_s": round(drained / drain_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10,200", help="events per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per rate")
    parser.add_argument("--drain-every", type=float, default=0.1, help="drain loop's pause")
    parser.add_argument("--throughput-seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64, help="load generator's sockets")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"load_average": os.getloadavg(), "latency": [], "throughput": None}
    with tempfile.TemporaryDirectory(prefix="vis-realtime-") as folder:
        work = Path(folder)
        for rate in (float(r) for r in args.rates.split(",")):
            row = latency_at(rate, args.seconds, args.drain_every, work)
            figures["latency"].append(row)
            print(
                f"{row['asked_events_per_s']:>6g} ev/s asked, {row['events_per_s']:>6} came: "
                f"call end -> queryable p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                f"max {row['max_ms']} ms over {row['calls_ended']} calls "
                f"({row['not_landed']} not landed); of which queued -> acknowledged p50 "
                f"{row['delivery_p50_ms']} ms, p99 {row['delivery_p99_ms']} ms",
                flush=True,
            )
        if not args.skip_throughput:
            row = throughput(args.throughput_seconds, args.connections, work)
            figures["throughput"] = row
            print(
                f"receiver: {row['accepted_per_s']} deliveries/s accepted (fsynced) on one core, "
                f"{row['connections']} connections, {row['refused']} refused; drain: "
                f"{row['drained_deliveries_per_s']} deliveries/s merged ({row['spooled']} spooled)",
                flush=True,
            )
    print(f"load average while measuring started at {figures['load_average']}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
