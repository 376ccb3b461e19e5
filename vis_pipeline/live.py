"""Draining the spool: webhook deliveries into the warehouse, through the sync's own merge.

One drain reads what the receiver spooled past the committed offsets and, under the spool's
drain lock and the warehouse's write lock:

1. parses each body and checks it against the record contract (``records``); a record that is
   not a valid event is quarantined in vis.rejected_events like a sync's, under its local day;
2. keeps, per call, its most advanced version: deliveries repeat and overtake each other, and
   the API delivers a call when it appears, when it is answered and when it ends, so the
   state's rank in that order (``STATE_RANK``) says which came later, whatever order they
   arrived in; a version behind what vis.events already holds is left out;
3. normalises with ``normalize_events`` and merges with ``warehouse.load_webhook_events``: the
   same normalisation and the same guarded merge as a sync, so a final state never regresses
   and an event seen by both paths is stored once; each event is marked in
   vis.webhook_landings, which makes the next sync of its day fetch the day whole and check it
   against the API's count (``sync._settled_days``);
4. commits the spool offsets, only now that the warehouse has committed, then deletes the
   spool's sealed segments that are wholly committed;
5. recomputes the report tables of the local days the deliveries touched (optional).

A drain killed at any point loses nothing: before step 3 commits, the records are still past
the committed offsets; between steps 3 and 4, they are read and merged again, which changes
nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pyarrow as pa

from vis_pipeline.batch import NormalizedBatch
from vis_pipeline.catalog import WarehouseLocation
from vis_pipeline.normalize import normalize_events
from vis_pipeline.records import FINAL_STATES, RejectedRecord, event_problem
from vis_pipeline.reports import materialize_reports
from vis_pipeline.spool import DEFAULT_BATCH_RECORDS, Spool, SpoolEntry
from vis_pipeline.sqlfiles import load_sql
from vis_pipeline.sync import local_day_window
from vis_pipeline.warehouse import LANDINGS_SCHEMA, load_webhook_events, open_writer

OpenWarehouse = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
"""Opens a write connection to the warehouse (under its lock) and closes it at the end."""

STATE_RANK: dict[str, int] = {
    "INITIALIZING": 0,
    "RINGING": 1,
    "ACTIVE": 2,
    "HELD": 2,
    "REMOTE_HELD": 2,
    **dict.fromkeys(FINAL_STATES, 3),
}
"""How far along a call is in each state: it appears (0, 1), is answered (2), ends (3).
A version of lower rank than one already seen is older, whatever order they arrived in."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drained:
    """What one drain did."""

    deliveries: int = 0
    """Spooled deliveries read (repeats included)."""
    events: int = 0
    """Distinct events merged into the warehouse."""
    inserted: int = 0
    """Events the warehouse did not hold before."""
    stale: int = 0
    """Events left out because the warehouse held a later version."""
    rejected: int = 0
    """Records quarantined in vis.rejected_events."""
    days: list[date] = field(default_factory=list)
    """Local days the deliveries touched."""
    reports: dict[str, int] = field(default_factory=dict)
    """Rows each report holds for those days, when they were recomputed."""
    committed_at: float | None = None
    """Wall-clock time (epoch seconds) the merge committed: the events are queryable from then."""
    finished_ids: list[int] = field(default_factory=list)
    """Ids of the events merged in a final state (calls that ended)."""


@dataclass
class _Latest:
    """The most advanced version of one call among the deliveries read, and their count."""

    record: dict
    rank: int
    received_ms: int
    first_received_ms: int
    deliveries: int = 1


def drain_spool(
    spool: Spool,
    open_warehouse: OpenWarehouse,
    tz: str,
    *,
    refresh_reports: bool = True,
    limit: int = DEFAULT_BATCH_RECORDS,
) -> Drained:
    """Drain up to ``limit`` spooled deliveries into the warehouse (see the module docstring).

    ``tz`` is the reporting time zone (local days). Returns what was done; nothing pending
    costs a look at the spool and nothing else.
    """
    with spool.drain_lock():
        pending = spool.pending(limit)
        if not pending.entries:
            spool.purge()
            return Drained()
        latest, rejected = _latest_versions(pending.entries)
        with open_warehouse() as conn:
            drained = _merge(conn, latest, rejected, tz, len(pending.entries))
            # The merge has committed: only now may the spool forget these records.
            spool.commit(pending.ends)
            if refresh_reports and drained.days:
                reports = materialize_reports(conn, drained.days[0], drained.days[-1], tz)
                drained = replace(drained, reports=reports)
        purged = spool.purge()
    if purged.set_aside:
        log.warning("set aside %d damaged spool segments", len(purged.set_aside))
    return drained


def follow_spool(
    spool: Spool,
    open_warehouse: OpenWarehouse,
    tz: str,
    *,
    every: float,
    reports_every: float,
    should_stop: Callable[[], bool],
    on_drained: Callable[[Drained], None],
) -> None:
    """Drain again and again until ``should_stop()``: at once while deliveries keep coming,
    ``every`` seconds apart when the spool is empty; the reports of the days touched are
    recomputed at most every ``reports_every`` seconds (they take longer than a merge)."""
    touched: set[date] = set()
    reported = time.monotonic()
    while not should_stop():
        drained = drain_spool(spool, open_warehouse, tz, refresh_reports=False)
        touched.update(drained.days)
        if touched and time.monotonic() - reported >= reports_every:
            _refresh_reports(open_warehouse, touched, tz)
            reported = time.monotonic()
        if drained.deliveries:
            on_drained(drained)
        else:
            time.sleep(every)
    _refresh_reports(open_warehouse, touched, tz)


def _refresh_reports(open_warehouse: OpenWarehouse, days: set[date], tz: str) -> None:
    """Recompute the reports of ``days`` (none: nothing) and forget them."""
    if days:
        with open_warehouse() as conn:
            materialize_reports(conn, min(days), max(days), tz)
        days.clear()


@contextmanager
def warehouse_writer(location: WarehouseLocation | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse at ``location`` opened for writing, queued behind other writers."""
    with open_writer(location) as conn:
        yield conn


def _latest_versions(
    entries: Sequence[SpoolEntry],
) -> tuple[dict[int, _Latest], list[RejectedRecord]]:
    """The most advanced valid version of each call, and the records that are not events."""
    latest: dict[int, _Latest] = {}
    rejected: list[RejectedRecord] = []
    for entry in entries:
        try:
            record = orjson.loads(entry.body)
        except orjson.JSONDecodeError:
            record = entry.body.decode("utf-8", "replace")
        problem = event_problem(record)
        if problem is not None:
            rejected.append(RejectedRecord(problem, record))
            continue
        _keep_latest(latest, record, entry.received_ms)
    return latest, rejected


def _keep_latest(latest: dict[int, _Latest], record: dict, received_ms: int) -> None:
    """Count ``record`` for its call and keep it if it is the most advanced version so far
    (at equal rank, the one received last)."""
    rank = STATE_RANK[record["state"]]
    seen = latest.get(record["id"])
    if seen is None:
        latest[record["id"]] = _Latest(record, rank, received_ms, received_ms)
        return
    seen.deliveries += 1
    seen.first_received_ms = min(seen.first_received_ms, received_ms)
    if (rank, received_ms) >= (seen.rank, seen.received_ms):
        seen.record, seen.rank, seen.received_ms = record, rank, received_ms


def _merge(
    conn: duckdb.DuckDBPyConnection,
    latest: dict[int, _Latest],
    rejected: list[RejectedRecord],
    tz: str,
    deliveries: int,
) -> Drained:
    """Normalise the versions newer than the stored ones and merge them in one transaction."""
    stale = _behind_stored(conn, latest)
    fresh = {ident: version for ident, version in latest.items() if ident not in stale}
    now = datetime.now(UTC)
    batch = normalize_events([v.record for v in fresh.values()], rejected, tz, now)
    today = now.astimezone(ZoneInfo(tz)).date()
    batch.rejected["local_date"] = batch.rejected["local_date"].fillna(today)
    days = sorted(set(batch.events["local_date"]) | set(batch.rejected["local_date"]))
    windows = {day: local_day_window(day, tz) for day in days}
    load = load_webhook_events(conn, batch, _landings(fresh, batch), now, windows)
    return Drained(
        deliveries=deliveries,
        events=load.loaded,
        inserted=load.inserted,
        stale=len(stale),
        rejected=load.rejected,
        days=days,
        committed_at=time.time(),
        finished_ids=[int(i) for i in batch.events.loc[batch.events["is_final"], "event_id"]],
    )


def _behind_stored(conn: duckdb.DuckDBPyConnection, latest: dict[int, _Latest]) -> set[int]:
    """Ids whose stored version is further along than the one delivered."""
    if not latest:
        return set()
    rows = conn.execute(load_sql("live/select_stored_states"), {"event_ids": list(latest)})
    return {
        ident for ident, state in rows.fetchall() if STATE_RANK.get(state, -1) > latest[ident].rank
    }


def _landings(fresh: dict[int, _Latest], batch: NormalizedBatch) -> pa.Table:
    """The vis.webhook_landings rows of the merged events (one per id, as the batch)."""
    events = batch.events
    ids = [int(ident) for ident in events["event_id"]]
    versions = [fresh[ident] for ident in ids]
    return pa.table(
        {
            "event_id": pa.array(ids, pa.int64()),
            "local_date": pa.array(list(events["local_date"]), pa.date32()),
            "state": pa.array([v.record["state"] for v in versions], pa.string()),
            "is_final": pa.array([v.rank == STATE_RANK["ANSWERED"] for v in versions]),
            "deliveries": pa.array([v.deliveries for v in versions], pa.int64()),
            "first_received_at": _instants([v.first_received_ms for v in versions]),
            "last_received_at": _instants([v.received_ms for v in versions]),
        },
        schema=LANDINGS_SCHEMA,
    )


def _instants(millis: list[int]) -> pa.Array:
    return pa.array(millis, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
