"""A reader of the warehouse in a process of its own, as an analyst's session is: one read-only
connection opened once, then queries in a loop for as long as the test wants.

A helper module, not a test module. Run as a script, the reader writes one JSON line per
observation to its output file: the rows per local day of ``vis.events``, ``raw.events`` and
``vis.sync_windows`` as one snapshot saw them, or the error a read raised; the last one is made
after it is told to stop. It reads two ways in turn: one statement (a snapshot by itself), and
three statements inside one short explicit transaction (a snapshot for the three). With
``--hold-seconds`` its first read instead opens a transaction, reads, keeps the transaction
open that long or until told to stop (a person thinking between two queries), reads again
inside it and commits; both reads must see the same snapshot.

    python tests/warehouse_reader.py CATALOG OUTPUT STOP_FILE [--hold-seconds S]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import chain, cycle
from pathlib import Path
from types import TracebackType
from typing import Any

START_SECONDS = 60.0
"""How long the reader may take to open its connection."""

STOP_SECONDS = 60.0
"""How long the reader may take to finish its last query and exit once told to stop."""

SOURCES = ("vis", "raw", "sync")
"""What each day's counts are, in order: vis.events, raw.events, vis.sync_windows rows."""

_PER_DAY = {
    "vis": "SELECT local_date, count(*) FROM vis.events GROUP BY local_date",
    "raw": "SELECT local_date, count(*) FROM raw.events GROUP BY local_date",
    "sync": "SELECT local_date, count(*) FROM vis.sync_windows GROUP BY local_date",
}
_ONE_STATEMENT = " UNION ALL ".join(
    f"SELECT '{source}' AS source, * FROM ({sql})" for source, sql in _PER_DAY.items()
)


@dataclass(frozen=True)
class Observation:
    """What one read saw: per local day (vis, raw, sync) counts, or the error it raised."""

    at: float
    """``time.monotonic()`` of the reader when the read ended."""
    days: dict[date, tuple[int, int, int]]
    error: str | None = None

    def landed(self) -> set[date]:
        """Days holding at least one event in ``vis.events``."""
        return {day for day, (vis, _, _) in self.days.items() if vis}


# ----------------------------------------------------------------------------------------------
# The reader's side (the child process)


def _per_day(rows: list[tuple[str, date, int]]) -> dict[str, list[int]]:
    days: dict[str, list[int]] = {}
    for source, day, count in rows:
        days.setdefault(day.isoformat(), [0, 0, 0])[SOURCES.index(source)] = int(count)
    return days


def _read_in_one_statement(conn: Any) -> dict[str, list[int]]:
    return _per_day(conn.execute(_ONE_STATEMENT).fetchall())


def _read_in_one_transaction(conn: Any) -> dict[str, list[int]]:
    conn.begin()
    try:
        rows = [
            (source, day, count)
            for source, sql in _PER_DAY.items()
            for day, count in conn.execute(sql).fetchall()
        ]
    finally:
        conn.commit()
    return _per_day(rows)


def _held_transaction(conn: Any, hold_seconds: float, stop: Path) -> Callable[[Any], Any]:
    """A read that keeps its transaction open ``hold_seconds`` (or until ``stop`` appears)
    between its two halves, and says whether both halves saw the same snapshot."""

    def read(_: Any) -> dict[str, list[int]]:
        conn.begin()
        try:
            before = _per_day(conn.execute(_ONE_STATEMENT).fetchall())
            deadline = time.monotonic() + hold_seconds
            while time.monotonic() < deadline and not stop.exists():
                time.sleep(0.05)
            after = _per_day(conn.execute(_ONE_STATEMENT).fetchall())
        finally:
            conn.commit()
        if before != after:
            raise AssertionError(f"one transaction saw two snapshots: {before} then {after}")
        return after

    return read


def _write(out: Any, record: dict[str, Any]) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


def read_until_stopped(catalog: Path, output: Path, stop: Path, hold_seconds: float) -> None:
    """Open the warehouse once, say so, then observe it until ``stop`` exists."""
    from vis_pipeline import warehouse as wh

    with output.open("w", encoding="utf-8") as out, wh.connect(catalog, read_only=True) as conn:
        _write(out, {"ready": True})
        first = [_held_transaction(conn, hold_seconds, stop)] if hold_seconds else []
        reads = chain(first, cycle([_read_in_one_statement, _read_in_one_transaction]))
        for read in reads:
            _observe(out, read, conn)
            if stop.exists():
                break
        # Once more after being told to stop: what the same connection sees at the end.
        _observe(out, _read_in_one_statement, conn)


def _observe(out: Any, read: Callable[[Any], dict[str, list[int]]], conn: Any) -> None:
    try:
        days = read(conn)
    except Exception as exc:  # every failure is an observation the test asserts on
        _write(out, {"at": time.monotonic(), "error": f"{type(exc).__name__}: {exc}"})
        return
    _write(out, {"at": time.monotonic(), "days": days})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("stop", type=Path)
    parser.add_argument("--hold-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    read_until_stopped(args.catalog, args.output, args.stop, args.hold_seconds)
    return 0


# ----------------------------------------------------------------------------------------------
# The test's side


def _observation(at: float, days: dict[str, list[int]]) -> Observation:
    counts = {date.fromisoformat(day): (c[0], c[1], c[2]) for day, c in days.items()}
    return Observation(at=at, days=counts)


def read_once(catalog: Path) -> Observation:
    """One observation, in this process, through a connection of its own."""
    from vis_pipeline import warehouse as wh

    with wh.connect(catalog, read_only=True) as conn:
        return _observation(time.monotonic(), _read_in_one_transaction(conn))


class ReaderProcess:
    """The reader above in a child process; ``with`` returns once its connection is open.

    ``stop()`` tells it to finish, waits for it and returns every observation (in order).
    """

    def __init__(self, catalog: Path, folder: Path, *, hold_seconds: float = 0.0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.catalog = catalog
        self.output = folder / "observations.jsonl"
        self.stop_file = folder / "stop"
        self.log = folder / "reader.log"
        self.hold_seconds = hold_seconds
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ReaderProcess:
        command = [sys.executable, __file__, str(self.catalog), str(self.output)]
        command += [str(self.stop_file), "--hold-seconds", str(self.hold_seconds)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the reader did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        return self.output.exists() and self.output.read_text(encoding="utf-8").startswith("{")

    def stop(self) -> list[Observation]:
        """Stop the reader (its current read ends first) and return what it observed."""
        assert self.process is not None
        self.stop_file.touch()
        code = self.process.wait(timeout=STOP_SECONDS)
        assert code == 0, self.log.read_text()[-2000:]
        return self.observations()

    def observations(self) -> list[Observation]:
        lines = self.output.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines[1:] if line.strip()]
        return [
            Observation(record["at"], {}, record["error"])
            if "error" in record
            else _observation(record["at"], record["days"])
            for record in records
        ]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop_file.touch()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
