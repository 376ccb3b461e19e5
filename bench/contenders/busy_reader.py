"""A busy reader beside a sync: one read-only connection querying the warehouse in a loop.

Not a contender of its own: the runner starts it before the ``library + busy reader`` row's
sync and stops it after, so that row's figures are the sync's alone, measured while something
reads. It opens its connection as soon as the sync has created the warehouse, then asks, again
and again, how many events each local day holds in ``vis.events`` and in ``raw.events`` (one
statement, so one snapshot), as a dashboard refreshing would. When told to stop (``--stop``
appears) it writes what it did as one JSON object to ``--out``: queries, errors (the first one
named), the number of different states of the warehouse it saw, and any day whose two tables
disagreed in one snapshot (a half-loaded day).

    python -m bench.contenders.busy_reader --warehouse FILE --ready FILE --stop FILE --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

QUERY = """
SELECT coalesce(e.local_date, r.local_date) AS local_date,
       coalesce(e.n, 0) AS events, coalesce(r.n, 0) AS raw
FROM (SELECT local_date, count(*) AS n FROM vis.events GROUP BY local_date) AS e
FULL JOIN (SELECT local_date, count(*) AS n FROM raw.events GROUP BY local_date) AS r
    USING (local_date)
"""
"""Events per local day in vis.events and raw.events, in one snapshot."""

OPEN_POLL_SECONDS = 0.02
"""How often the reader tries again to open a warehouse the sync has not created yet."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--ready", type=Path, required=True, help="touched once imports are done")
    parser.add_argument("--stop", type=Path, required=True, help="the reader stops when it exists")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def open_when_created(path: Path, stop: Path) -> Any:
    """A read-only connection to the warehouse once its schema is there (None if stopped
    first); the sync creates it."""
    import duckdb

    from vis_pipeline import warehouse
    from vis_pipeline.errors import WarehouseError

    while not stop.exists():
        try:
            conn = warehouse.connect(path, read_only=True)
        except WarehouseError:
            time.sleep(OPEN_POLL_SECONDS)
            continue
        try:
            conn.execute(QUERY).fetchall()
            return conn
        except duckdb.Error:  # the schema's first commit is not there yet
            conn.close()
            time.sleep(OPEN_POLL_SECONDS)
    return None


class Tally:
    """What the reader saw."""

    def __init__(self) -> None:
        self.queries = 0
        self.errors = 0
        self.first_error: str | None = None
        self.states: set[tuple[tuple[Any, int], ...]] = set()
        self.half_days: list[str] = []

    def saw(self, rows: list[tuple[Any, int, int]]) -> None:
        self.queries += 1
        self.states.add(tuple(sorted((day, events) for day, events, _ in rows)))
        for day, events, raw in rows:
            if events != raw:
                self.half_days.append(f"{day}: {events} events, {raw} raw")

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}".splitlines()[0]


def read_until_stopped(path: Path, stop: Path) -> dict[str, Any]:
    """Query until ``stop`` exists; what was seen."""
    began = time.perf_counter()
    conn = open_when_created(path, stop)
    opened = time.perf_counter()
    tally = Tally()
    if conn is not None:
        with conn:
            while not stop.exists():
                try:
                    tally.saw(conn.execute(QUERY).fetchall())
                except Exception as exc:  # counted and named: the row reports it
                    tally.failed(exc)
    seconds = time.perf_counter() - opened
    return {
        "opened": conn is not None,
        "wait_to_open_s": round(opened - began, 3),
        "reading_s": round(seconds, 3),
        "queries": tally.queries,
        "queries_per_s": round(tally.queries / seconds, 1) if seconds else None,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "states_seen": len(tally.states),
        "half_days": tally.half_days[:5],
        "half_day_count": len(tally.half_days),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import vis_pipeline.warehouse  # noqa: F401  (imported before saying ready)

    args.ready.touch()
    summary = read_until_stopped(args.warehouse, args.stop)
    args.out.write_text(json.dumps(summary), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
