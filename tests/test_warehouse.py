"""The DuckDB warehouse on real files: schema, transactional loads, settlement, checks, status."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pandas as pd
import pytest
from helpers import SYNCED_AT, copy_warehouse, make_event, random_events
from helpers import expected_synced_row as expected_row

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation, attach_lake
from vis_pipeline.normalize import NormalizedBatch, normalize_events
from vis_pipeline.records import RejectedRecord

TZ = "America/New_York"
DAY = date(2026, 3, 8)  # 23 hours long in New York

CONTRACT: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("raw", "events"): [
        ("event_id", "BIGINT"),
        ("payload", "JSON"),
        ("state", "VARCHAR"),
        ("is_final", "BOOLEAN"),
        ("start_time", "TIMESTAMP WITH TIME ZONE"),
        ("local_date", "DATE"),
        ("first_seen_at", "TIMESTAMP WITH TIME ZONE"),
        ("last_seen_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "events"): [
        ("event_id", "BIGINT"),
        ("external_id", "VARCHAR"),
        ("record_type", "VARCHAR"),
        ("account_id", "BIGINT"),
        ("user_id", "BIGINT"),
        ("uci_id", "BIGINT"),
        ("direction", "VARCHAR"),
        ("caller_id", "VARCHAR"),
        ("phone_number", "VARCHAR"),
        ("state", "VARCHAR"),
        ("is_final", "BOOLEAN"),
        ("start_time", "TIMESTAMP WITH TIME ZONE"),
        ("answer_time", "TIMESTAMP WITH TIME ZONE"),
        ("end_time", "TIMESTAMP WITH TIME ZONE"),
        ("duration_ms", "BIGINT"),
        ("sms_data", "VARCHAR"),
        ("local_date", "DATE"),
        ("synced_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "user_directory"): [
        ("user_id", "BIGINT"),
        ("user_name", "VARCHAR"),
        ("imported_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "users"): [
        ("user_id", "BIGINT"),
        ("account_id", "BIGINT"),
        ("account_label", "VARCHAR"),
        ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"),
        ("email_address", "VARCHAR"),
        ("contact_number", "VARCHAR"),
        ("status", "VARCHAR"),
        ("roles", "JSON"),
        ("payload", "JSON"),
        ("synced_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "accounts"): [
        ("account_id", "BIGINT"),
        ("name", "VARCHAR"),
        ("org", "VARCHAR"),
        ("status", "VARCHAR"),
        ("ucis", "JSON"),
        ("payload", "JSON"),
        ("synced_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "rejected_events"): [
        ("event_id", "BIGINT"),
        ("reason", "VARCHAR"),
        ("payload", "JSON"),
        ("window_start", "TIMESTAMP WITH TIME ZONE"),
        ("window_end", "TIMESTAMP WITH TIME ZONE"),
        ("local_date", "DATE"),
        ("run_id", "VARCHAR"),
        ("rejected_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "schema_version"): [
        ("fingerprint", "VARCHAR"),
        ("applied_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "sync_windows"): [
        ("sync_id", "BIGINT"),
        ("local_date", "DATE"),
        ("window_start", "TIMESTAMP WITH TIME ZONE"),
        ("window_end", "TIMESTAMP WITH TIME ZONE"),
        ("api_count", "BIGINT"),
        ("api_margin_count", "BIGINT"),
        ("loaded", "BIGINT"),
        ("rejected", "BIGINT"),
        ("pages", "BIGINT"),
        ("requests", "BIGINT"),
        ("retries", "BIGINT"),
        ("seconds", "DOUBLE"),
        ("status", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("finished_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "webhook_landings"): [
        ("event_id", "BIGINT"),
        ("local_date", "DATE"),
        ("state", "VARCHAR"),
        ("is_final", "BOOLEAN"),
        ("deliveries", "BIGINT"),
        ("first_received_at", "TIMESTAMP WITH TIME ZONE"),
        ("last_received_at", "TIMESTAMP WITH TIME ZONE"),
        ("landed_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    ("vis", "calls"): [
        ("event_id", "BIGINT"),
        ("local_date", "DATE"),
        ("start_time", "TIMESTAMP WITH TIME ZONE"),
        ("answer_time", "TIMESTAMP WITH TIME ZONE"),
        ("end_time", "TIMESTAMP WITH TIME ZONE"),
        ("direction", "VARCHAR"),
        ("state", "VARCHAR"),
        ("user_id", "BIGINT"),
        ("user_name", "VARCHAR"),
        ("phone_number", "VARCHAR"),
        ("caller_id", "VARCHAR"),
        ("is_inbound", "BOOLEAN"),
        ("is_outbound", "BOOLEAN"),
        ("is_finished", "BOOLEAN"),
        ("is_live", "BOOLEAN"),
        ("is_answered", "BOOLEAN"),
        ("is_missed", "BOOLEAN"),
        ("is_rejected", "BOOLEAN"),
        ("is_cancelled", "BOOLEAN"),
        ("talk_seconds", "DOUBLE"),
        ("wait_seconds", "DOUBLE"),
    ],
}
"""The tables, views and columns docs/tables.md promises, written out independently of the DDL."""

SNAPSHOT_TABLES = ("raw.events", "vis.events", "vis.rejected_events", "vis.users", "vis.accounts")


def window(
    day: date, api_count: int, run_id: str | None = "run-1", **changes: object
) -> wh.WindowSync:
    """The WindowSync of local ``day`` in New York."""
    zone = ZoneInfo(TZ)
    start = datetime.combine(day, clock(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), clock(), zone).astimezone(UTC)
    sync = wh.WindowSync(day, start, end, api_count, 3, 4, 1, 0.5, run_id)
    return replace(sync, **changes)


def at_noon(day: date, minute: int = 0) -> str:
    """An API instant at local noon (plus ``minute``) of ``day`` in New York."""
    moment = datetime.combine(day, clock(12, minute), ZoneInfo(TZ)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def final_event(event_id: int, day: date = DAY, **fields: object) -> dict:
    minute = event_id % 58
    ending = {"answerTime": at_noon(day, minute), "endTime": at_noon(day, minute + 1)}
    return make_event(
        event_id, at_noon(day, minute), "ANSWERED", **{**ending, "duration": 60_000, **fields}
    )


def live_event(event_id: int, day: date = DAY, **fields: object) -> dict:
    return make_event(event_id, at_noon(day, event_id % 60), "RINGING", **fields)


def batch_of(
    records: list, rejected: list | None = None, synced_at: datetime = SYNCED_AT
) -> NormalizedBatch:
    return normalize_events(records, rejected or [], TZ, synced_at)


def snapshot(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every row of the data tables, in a stable order."""
    return {
        table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        for table in SNAPSHOT_TABLES
    }


def sync_rows(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    return conn.execute(
        "SELECT local_date, status, api_count, loaded, rejected, run_id "
        "FROM vis.sync_windows ORDER BY sync_id"
    ).fetchall()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "warehouse.sqlite"


@pytest.fixture
def conn(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with wh.connect(path) as connection:
        yield connection


def columns(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], list[tuple[str, str]]]:
    rows = conn.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema IN ('raw', 'vis') "
        "ORDER BY table_schema, table_name, ordinal_position"
    ).fetchall()
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, kind in rows:
        found.setdefault((schema, table), []).append((column, kind))
    return found


def test_schema_on_a_fresh_file_and_again_on_an_existing_one(path: Path) -> None:
    with wh.connect(path) as conn:
        assert columns(conn) == CONTRACT
        schemas = {
            row[0]
            for row in conn.execute(
                "SELECT schema_name FROM information_schema.schemata"
            ).fetchall()
        }
        assert {"raw", "vis", "reports"} <= schemas
        wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
        before = snapshot(conn)
    with wh.connect(path) as conn:
        wh.apply_schema(conn)
        wh.apply_schema(conn)
        assert columns(conn) == CONTRACT
        assert snapshot(conn) == before
        assert len(sync_rows(conn)) == 1


def test_loaded_values_match_a_per_record_reading(conn: duckdb.DuckDBPyConnection) -> None:
    records = random_events(300, seed=8, day=DAY)
    wh.load_window(conn, batch_of(records), window(DAY, len(records)))
    cursor = conn.execute("SELECT * FROM vis.events ORDER BY event_id")
    names = [column[0] for column in cursor.description]
    stored = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert stored == [expected_row(record, TZ) for record in sorted(records, key=lambda r: r["id"])]
    raw = conn.execute("SELECT event_id, payload FROM raw.events ORDER BY event_id").fetchall()
    assert [orjson.loads(payload) for _, payload in raw] == sorted(records, key=lambda r: r["id"])


def test_loading_a_window_twice_changes_nothing_but_the_history(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    records = random_events(200, seed=9, day=DAY)
    rejected = [RejectedRecord("state: unknown value 'X'", {"id": 999_999, "state": "X"})]
    batch = batch_of(records, rejected)
    first = wh.load_window(conn, batch, window(DAY, 201))
    before = snapshot(conn)
    second = wh.load_window(conn, batch_of(records, rejected), window(DAY, 201))
    assert snapshot(conn) == before
    assert (first.inserted, second.inserted) == (200, 0)
    assert (first.loaded, first.rejected) == (200, 1)
    assert [row[1] for row in sync_rows(conn)] == ["loaded", "loaded"]
    # A later fetch of the same data only moves the "last seen" times.
    later = SYNCED_AT + timedelta(hours=1)
    wh.load_window(conn, batch_of(records, rejected, synced_at=later), window(DAY, 201))
    (first_seen, last_seen) = conn.execute(
        "SELECT DISTINCT first_seen_at, last_seen_at FROM raw.events"
    ).fetchone()
    assert (first_seen, last_seen) == (SYNCED_AT, later)
    assert conn.execute("SELECT count(*) FROM vis.rejected_events").fetchone() == (1,)


def test_a_final_version_replaces_a_live_one(conn: duckdb.DuckDBPyConnection) -> None:
    wh.load_window(conn, batch_of([live_event(1), live_event(2)]), window(DAY, 2))
    later = SYNCED_AT + timedelta(minutes=5)
    load = wh.load_window(
        conn, batch_of([final_event(1), live_event(2)], synced_at=later), window(DAY, 2)
    )
    assert load.kept_final == 0
    stored = conn.execute(
        "SELECT event_id, state, is_final, duration_ms, synced_at FROM vis.events ORDER BY 1"
    ).fetchall()
    assert stored == [(1, "ANSWERED", True, 60_000, later), (2, "RINGING", False, None, later)]
    raw = conn.execute(
        "SELECT state, first_seen_at, last_seen_at, payload FROM raw.events WHERE event_id = 1"
    ).fetchone()
    assert raw[:3] == ("ANSWERED", SYNCED_AT, later)
    assert orjson.loads(raw[3]) == final_event(1)


def test_a_live_version_never_replaces_a_final_one(conn: duckdb.DuckDBPyConnection) -> None:
    wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    before = snapshot(conn)
    stale = batch_of([live_event(1)], synced_at=SYNCED_AT + timedelta(hours=1))
    load = wh.load_window(conn, stale, window(DAY, 1))
    assert (load.kept_final, load.inserted) == (1, 0)
    assert snapshot(conn) == before
    # Another final version (a correction) still replaces the stored one.
    corrected = final_event(1, duration=61_000)
    wh.load_window(conn, batch_of([corrected]), window(DAY, 1))
    assert conn.execute("SELECT duration_ms FROM vis.events").fetchone() == (61_000,)
    assert orjson.loads(conn.execute("SELECT payload FROM raw.events").fetchone()[0]) == corrected


def test_a_batch_of_new_and_stored_ids_is_upserted(conn: duckdb.DuckDBPyConnection) -> None:
    wh.load_window(conn, batch_of([live_event(1), final_event(2)]), window(DAY, 2))
    later = SYNCED_AT + timedelta(hours=1)
    batch = batch_of([final_event(1), live_event(2), final_event(3)], synced_at=later)
    load = wh.load_window(conn, batch, window(DAY, 3))
    assert (load.inserted, load.kept_final) == (1, 1)
    stored = conn.execute(
        "SELECT event_id, state, first_seen_at, last_seen_at FROM raw.events ORDER BY 1"
    ).fetchall()
    assert stored == [
        (1, "ANSWERED", SYNCED_AT, later),
        (2, "ANSWERED", SYNCED_AT, SYNCED_AT),
        (3, "ANSWERED", later, later),
    ]
    assert all(check.passed for check in wh.run_checks(conn))


def test_an_id_stored_in_raw_only_is_upserted_not_inserted_twice(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    conn.execute("DELETE FROM vis.events")  # the two tables out of step, by hand
    later = SYNCED_AT + timedelta(hours=1)
    load = wh.load_window(conn, batch_of([final_event(1)], synced_at=later), window(DAY, 1))
    assert load.inserted == 1
    assert conn.execute("SELECT first_seen_at, last_seen_at FROM raw.events").fetchall() == [
        (SYNCED_AT, later)
    ]
    assert conn.execute("SELECT event_id FROM vis.events").fetchall() == [(1,)]


def test_a_window_without_rejects_clears_its_old_ones(conn: duckdb.DuckDBPyConnection) -> None:
    wh.load_window(
        conn, batch_of([final_event(1)], [RejectedRecord("bad", {"id": 7})]), window(DAY, 2)
    )
    wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    assert conn.execute("SELECT count(*) FROM vis.rejected_events").fetchone() == (0,)


def test_a_load_leaves_the_thread_count_as_it_found_it(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("SET threads = 3")
    wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    with pytest.raises(wh.WarehouseError):
        wh.load_window(conn, corrupt_event_ids(batch_of([final_event(2)])), window(DAY, 1))
    assert conn.execute("SELECT current_setting('threads')").fetchone() == (3,)


def test_a_window_loads_right_after_a_settlement_check(conn: duckdb.DuckDBPyConnection) -> None:
    wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    assert settled_sync(conn, DAY, 2) is None  # the API counts more now
    load = wh.load_window(conn, batch_of([final_event(1), final_event(2)]), window(DAY, 2))
    assert load.inserted == 1


def test_rejected_rows_are_replaced_per_window(conn: duckdb.DuckDBPyConnection) -> None:
    other_day = DAY + timedelta(days=1)
    three = [RejectedRecord(f"reason {i}", {"id": 100 + i}) for i in range(3)]
    wh.load_window(conn, batch_of([final_event(1)], three), window(DAY, 4))
    wh.load_window(conn, batch_of([final_event(2, other_day)], three[:1]), window(other_day, 2))
    wh.load_window(conn, batch_of([final_event(1)], three[1:]), window(DAY, 3, run_id="run-2"))
    rows = conn.execute(
        "SELECT local_date, event_id, reason, run_id, window_start "
        "FROM vis.rejected_events ORDER BY 1, 2"
    ).fetchall()
    assert rows == [
        (DAY, 101, "reason 1", "run-2", window(DAY, 0).window_start),
        (DAY, 102, "reason 2", "run-2", window(DAY, 0).window_start),
        (other_day, 100, "reason 0", "run-1", window(other_day, 0).window_start),
    ]


def corrupt_event_ids(batch: NormalizedBatch) -> NormalizedBatch:
    events = batch.events.copy()
    events.loc[0, "event_id"] = pd.NA  # violates event_id's NOT NULL
    return replace(batch, events=events)


def repeat_an_event(batch: NormalizedBatch) -> NormalizedBatch:
    # The tables have no key, so the loader itself must refuse an id given twice.
    events = pd.concat([batch.events, batch.events.iloc[:1]], ignore_index=True)
    raw = pd.concat([batch.raw, batch.raw.iloc[:1]], ignore_index=True)
    return replace(batch, events=events, raw=raw)


def corrupt_rejected_payload(batch: NormalizedBatch) -> NormalizedBatch:
    rejected = batch.rejected.copy()
    rejected.loc[0, "payload"] = "{not json"  # fails after events were written and rejects deleted
    return replace(batch, rejected=rejected)


@pytest.mark.parametrize("corrupt", [corrupt_event_ids, repeat_an_event, corrupt_rejected_payload])
def test_a_failing_load_rolls_back_entirely(
    conn: duckdb.DuckDBPyConnection, corrupt: Callable[[NormalizedBatch], NormalizedBatch]
) -> None:
    wh.load_window(
        conn, batch_of([live_event(1)], [RejectedRecord("old", {"id": 7})]), window(DAY, 2)
    )
    before, history = snapshot(conn), sync_rows(conn)
    bad = corrupt(batch_of([final_event(1), final_event(2)], [RejectedRecord("new", {"id": 8})]))
    with pytest.raises(wh.WarehouseError, match=str(DAY)):
        wh.load_window(conn, bad, window(DAY, 3))
    assert snapshot(conn) == before
    assert sync_rows(conn) == history
    # The connection is still usable after the rollback.
    wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    assert conn.execute("SELECT state FROM vis.events").fetchall() == [("ANSWERED",)]


def settled_sync(
    conn: duckdb.DuckDBPyConnection, day: date, api_count: int
) -> wh.WindowSync | None:
    """The latest sync of ``day`` if a count of ``api_count`` now leaves it settled."""
    return wh.settled_windows(conn, wh.latest_syncs(conn, [day]), {day: api_count}).get(day)


def test_settlement(conn: duckdb.DuckDBPyConnection) -> None:
    assert settled_sync(conn, DAY, 0) is None  # never synced
    finals = [final_event(i) for i in range(1, 6)]
    wh.load_window(conn, batch_of(finals), window(DAY, 5))
    settled = settled_sync(conn, DAY, 5)
    assert settled and settled.api_count == 5 and settled.run_id == "run-1"
    assert settled_sync(conn, DAY, 6) is None  # the API holds more now
    assert settled_sync(conn, DAY + timedelta(days=1), 5) is None

    # A live event keeps the day open.
    wh.load_window(conn, batch_of([*finals, live_event(6)]), window(DAY, 6))
    assert settled_sync(conn, DAY, 6) is None
    # Rejected records with an id count as held.
    wh.load_window(conn, batch_of(finals, [RejectedRecord("bad", {"id": 6})]), window(DAY, 6))
    assert settled_sync(conn, DAY, 6) is None  # event 6 is still stored live
    other = DAY + timedelta(days=2)
    rejected = [RejectedRecord("bad", {"id": 50}), RejectedRecord("no id", "junk")]
    wh.load_window(conn, batch_of([final_event(40, other)], rejected), window(other, 2))
    assert settled_sync(conn, other, 2)
    # Fewer ids held than the API counted: not settled.
    third = DAY + timedelta(days=3)
    wh.load_window(conn, batch_of([final_event(60, third)]), window(third, 2))
    assert settled_sync(conn, third, 2) is None


def test_settled_windows_judges_many_days_at_once_as_each_alone(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    days = [DAY + timedelta(days=offset) for offset in range(4)]
    wh.load_window(conn, batch_of([final_event(1, days[0])]), window(days[0], 1))
    wh.load_window(conn, batch_of([live_event(2, days[1])]), window(days[1], 1))
    wh.load_window(conn, batch_of([final_event(3, days[2])]), window(days[2], 1))
    counts = {days[0]: 1, days[1]: 1, days[2]: 2, days[3]: 0}  # days[3] was never synced
    together = wh.settled_windows(conn, wh.latest_syncs(conn, list(counts)), counts)
    alone = {day: settled_sync(conn, day, count) for day, count in counts.items()}
    assert set(together) == {day for day, settled in alone.items() if settled} == {days[0]}
    # Recorded together, in one transaction, they read back as each day's latest sync.
    wh.record_settled(conn, [replace(s, run_id="run-7") for s in together.values()])
    assert wh.latest_syncs(conn, days)[days[0]].run_id == "run-7"
    assert set(wh.latest_syncs(conn, days)) == set(days[:3])


def test_settlement_compares_the_count_of_the_range_queried(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    finals = [final_event(i) for i in range(1, 4)]
    wh.load_window(conn, batch_of(finals), window(DAY, 3, api_margin_count=5))
    assert settled_sync(conn, DAY, 3) is None
    previous = settled_sync(conn, DAY, 5)
    assert previous and previous.api_margin_count == 5 and previous.expected_count == 5
    # A settled row counts as the latest successful sync; a failed one does not.
    wh.record_settled(conn, [replace(previous, run_id="run-2", pages=0, requests=1)])
    wh.record_failed(conn, window(DAY, 0, run_id="run-3"))
    assert [row[1] for row in sync_rows(conn)] == ["loaded", "settled", "failed"]
    assert sync_rows(conn)[1] == (DAY, "settled", 3, 0, 0, "run-2")
    latest = settled_sync(conn, DAY, 5)
    assert latest and latest.run_id == "run-2" and latest.requests == 1


def test_reconcile(conn: duckdb.DuckDBPyConnection) -> None:
    ok_day, short_day, unsynced = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)
    wh.load_window(
        conn,
        batch_of([final_event(1), live_event(2)], [RejectedRecord("r", {"id": 3})]),
        window(ok_day, 3),
    )
    wh.load_window(conn, batch_of([final_event(4, short_day)]), window(short_day, 2))
    result = wh.reconcile(conn, [unsynced, ok_day, short_day, ok_day])
    assert result == [
        wh.Reconciliation(ok_day, 3, 3, True),
        wh.Reconciliation(short_day, 2, 1, False),
        wh.Reconciliation(unsynced, None, 0, False),
    ]
    assert wh.reconcile(conn, []) == []


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding finals, lives and rejects, written once for the corruption tests."""
    path = tmp_path_factory.mktemp("clean") / "warehouse.sqlite"
    records = random_events(300, seed=10, day=DAY)
    with wh.connect(path) as conn:
        wh.load_window(
            conn, batch_of(records, [RejectedRecord("r", {"id": 9999})]), window(DAY, 301)
        )
        wh.load_window(conn, batch_of([final_event(7, DAY)]), window(DAY, 301))
    return path


def copy_of(clean: Path, tmp_path: Path) -> Path:
    return copy_warehouse(clean, tmp_path / "copy" / "warehouse.sqlite")


CORRUPTIONS: list[tuple[str, str, str]] = [
    (
        "unique_event_id",
        "a second row of the same event",
        "INSERT INTO vis.events SELECT * FROM vis.events WHERE event_id = 7;",
    ),
    (
        "unique_event_id",
        "two raw payloads of the same event",
        "UPDATE raw.events SET payload = (SELECT payload FROM raw.events WHERE event_id = 7) "
        "WHERE event_id = 8;",
    ),
    (
        "call_fields_match_state",
        "an answered call without its answer time",
        "UPDATE vis.events SET answer_time = NULL WHERE event_id = 7;",
    ),
    (
        "call_fields_match_state",
        "a missed call with an answer time",
        "UPDATE vis.events SET state = 'MISSED' WHERE event_id = 7; "
        "UPDATE raw.events SET state = 'MISSED' WHERE event_id = 7;",
    ),
    (
        "call_fields_match_state",
        "a final call without its end",
        "UPDATE vis.events SET end_time = NULL, duration_ms = NULL WHERE event_id = 7;",
    ),
    (
        "call_times_in_order",
        "a call that ends before it starts",
        "UPDATE vis.events SET end_time = start_time - INTERVAL 1 SECOND WHERE event_id = 7;",
    ),
    (
        "call_times_in_order",
        "a call answered after it ended",
        "UPDATE vis.events SET answer_time = end_time + INTERVAL 1 SECOND WHERE event_id = 7;",
    ),
    (
        "call_times_in_order",
        "a negative duration",
        "UPDATE vis.events SET duration_ms = -1 WHERE event_id = 7;",
    ),
    (
        "no_final_regressed",
        "a final call stored back as ringing",
        "UPDATE vis.events SET state = 'RINGING', is_final = false WHERE event_id = 7;",
    ),
    (
        "raw_matches_events",
        "an event missing from raw.events",
        "DELETE FROM raw.events WHERE event_id = 7;",
    ),
    (
        "raw_matches_events",
        "raw and clean disagree on the state",
        "UPDATE raw.events SET state = 'MISSED' WHERE event_id = 7;",
    ),
]


def test_every_check_passes_on_a_clean_warehouse(clean_file: Path) -> None:
    with wh.connect(clean_file, read_only=True) as conn:
        results = wh.run_checks(conn)
    assert [(r.name, r.passed, r.failures, r.sample) for r in results] == [
        (name, True, 0, []) for name in wh.CHECKS
    ]


@pytest.mark.parametrize(("check", "what", "sql"), CORRUPTIONS, ids=[c[1] for c in CORRUPTIONS])
def test_each_check_fails_on_a_corrupted_copy(
    clean_file: Path, tmp_path: Path, check: str, what: str, sql: str
) -> None:
    with wh.connect(copy_of(clean_file, tmp_path)) as conn:
        conn.execute(sql)
        result = wh.run_check(conn, check)
    assert not result.passed, what
    assert result.failures >= 1
    assert any(row.get("event_id") in (7, 8) for row in result.sample), result.sample


def test_unknown_check_is_refused(conn: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="unknown check"):
        wh.run_check(conn, "../warehouse/upsert_events")


def test_status_summary_reports_gaps_failures_and_reconciliation(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    empty = wh.status_summary(conn)
    assert (empty["days_synced"], empty["gaps"], empty["last_run_id"]) == (0, [], None)
    first = date(2026, 3, 1)
    days = [first + timedelta(days=n) for n in range(6)]  # 1 .. 6 March
    wh.load_window(conn, batch_of([final_event(1, days[0])]), window(days[0], 1))
    wh.load_window(conn, batch_of([final_event(2, days[1])]), window(days[1], 2))  # short by one
    wh.record_failed(conn, window(days[3], 0))
    wh.load_window(conn, batch_of([final_event(5, days[4])]), window(days[4], 1))
    wh.record_settled(conn, [window(days[4], 1, run_id="run-9")])
    summary = wh.status_summary(conn)
    assert summary["days_synced"] == 3
    assert (summary["first_day"], summary["last_day"]) == ("2026-03-01", "2026-03-05")
    assert summary["gaps"] == ["2026-03-03", "2026-03-04"]
    assert summary["failed_days"] == ["2026-03-04"]
    assert summary["unreconciled_days"] == ["2026-03-02"]
    assert summary["last_run_id"] == "run-9" and summary["last_sync_status"] == "settled"
    assert summary["counts"]["events"] == 3 and summary["counts"]["window_syncs"] == 5
    datetime.fromisoformat(summary["last_sync_at"])
    orjson.dumps(summary)  # JSON-ready


def test_run_days_and_preview(conn: duckdb.DuckDBPyConnection) -> None:
    other = DAY + timedelta(days=1)
    wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1, run_id="a"))
    wh.load_window(conn, batch_of([final_event(2, other)]), window(other, 1, run_id="b"))
    wh.record_settled(conn, [window(DAY, 1, run_id="b")])
    assert wh.run_days(conn, "b") == [
        {"local_date": "2026-03-08", "status": "settled", "api_count": 1, "loaded": 0,
         "rejected": 0, "pages": 3, "requests": 4, "retries": 1, "seconds": 0.5},
        {"local_date": "2026-03-09", "status": "loaded", "api_count": 1, "loaded": 1,
         "rejected": 0, "pages": 3, "requests": 4, "retries": 1, "seconds": 0.5},
    ]  # fmt: skip
    assert wh.run_days(conn, "nobody") == []
    preview = wh.preview_events(conn, DAY, other)
    assert list(preview["event_id"]) == [1, 2]
    assert list(wh.preview_events(conn, other, other, limit=5)["event_id"]) == [2]


def test_users_and_account_are_replaced_by_id(conn: duckdb.DuckDBPyConnection) -> None:
    user = {
        "id": 522078, "accountId": 257073, "acountLabel": "Vonage", "firstName": "Robert",
        "lastName": "Smith", "emailAddress": "r@example.com", "contactNumber": 14155550100,
        "status": "ACTIVE", "roles": [{"code": "AU", "name": "Account User"}], "extra": 1,
    }  # fmt: skip
    assert wh.replace_users(conn, [user, {"id": 2}], SYNCED_AT) == 2
    assert wh.replace_users(conn, [{**user, "firstName": "Bob"}], SYNCED_AT) == 1
    row = conn.execute("SELECT * FROM vis.users WHERE user_id = 522078").fetchone()
    assert row[:8] == (
        522078,
        257073,
        "Vonage",
        "Bob",
        "Smith",
        "r@example.com",
        "14155550100",
        "ACTIVE",
    )
    assert orjson.loads(row[8]) == user["roles"]
    assert orjson.loads(row[9]) == {**user, "firstName": "Bob"}
    assert conn.execute("SELECT count(*) FROM vis.users").fetchone() == (2,)
    account = {
        "id": 257073,
        "name": "Vonage",
        "org": "Vonage",
        "status": "ACTIVE",
        "ucis": [{"id": 1}],
    }
    wh.replace_account(conn, account, SYNCED_AT)
    wh.replace_account(conn, {**account, "status": "ARCHIVED"}, SYNCED_AT)
    stored = conn.execute("SELECT account_id, name, org, status, ucis FROM vis.accounts").fetchall()
    assert [(r[0], r[1], r[2], r[3], orjson.loads(r[4])) for r in stored] == [
        (257073, "Vonage", "Vonage", "ARCHIVED", [{"id": 1}])
    ]
    with pytest.raises(ValueError, match="user id"):
        wh.replace_users(conn, [{"firstName": "no id"}], SYNCED_AT)


def test_read_only_connection_reads_but_never_writes(path: Path) -> None:
    with wh.connect(path) as conn:
        wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    with wh.connect(path, read_only=True) as conn:
        assert wh.reconcile(conn, [DAY])[0].ok
        with pytest.raises(wh.WarehouseError):
            wh.record_settled(conn, [window(DAY, 1)])


def test_naive_window_times_are_refused(conn: duckdb.DuckDBPyConnection) -> None:
    naive = window(DAY, 1, window_start=datetime(2026, 3, 8, 5))
    with pytest.raises(ValueError, match="timezone-aware"):
        wh.load_window(conn, batch_of([final_event(1)]), naive)


@pytest.mark.parametrize("name", ["warehouse.duckdb", "old.db"])
def test_a_single_file_warehouse_of_an_earlier_version_is_refused_with_the_way_to_import_it(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "w" / name
    with pytest.raises(wh.WarehouseError, match="vis-pipeline warehouse import"):
        wh.connect(path)
    assert not path.parent.exists(), "a refused location left something behind"


@pytest.mark.parametrize("name", ["vis.sqlite", "RAW.db.sqlite", "reports"])
def test_a_catalog_named_after_a_schema_still_resolves_every_table(
    tmp_path: Path, name: str
) -> None:
    # The lake is attached under a fixed name, so the catalog file may be called anything.
    with wh.connect(tmp_path / name) as conn:
        wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
    with wh.connect(tmp_path / name, read_only=True) as conn:
        assert conn.execute("SELECT event_id FROM vis.events").fetchall() == [(1,)]


def test_load_of_100k_events_is_timed(conn: duckdb.DuckDBPyConnection) -> None:
    records = random_events(100_000, seed=11, day=DAY)
    batch = batch_of(records)
    timings = []
    for _ in range(2):  # a first load inserts, the second updates every row
        began = time.perf_counter()
        wh.load_window(conn, batch, window(DAY, len(records)))
        timings.append(time.perf_counter() - began)
    print(f"\nloaded 100k events: insert {timings[0]:.3f} s, re-load {timings[1]:.3f} s")
    assert conn.execute("SELECT count(*) FROM vis.events").fetchone() == (100_000,)


def test_works_on_a_direct_connection_in_another_session_time_zone(tmp_path: Path) -> None:
    # A connection whose session is in some other zone (an analyst's, a notebook's): instants
    # and local dates must come out the same.
    path = tmp_path / "warehouse.sqlite"
    records = random_events(50, seed=12, day=DAY)
    on_day = sum(expected_row(r, TZ)["local_date"] == DAY for r in records)
    assert 0 < on_day < 50  # the batch straddles the day, as the stored dates must show
    with duckdb.connect() as direct:
        attach_lake(direct, WarehouseLocation.parse(path), read_only=False)
        direct.execute("SET TimeZone = 'Asia/Tokyo'")
        wh.apply_schema(direct)
        wh.load_window(direct, batch_of(records), window(DAY, on_day))
        wh.record_settled(direct, [window(DAY, on_day)])
        assert wh.reconcile(direct, [DAY])[0].ok
        assert [r.passed for r in wh.run_checks(direct)] == [True] * len(wh.CHECKS)
    with wh.connect(path, read_only=True) as conn:
        cursor = conn.execute("SELECT * FROM vis.events ORDER BY event_id")
        names = [column[0] for column in cursor.description]
        stored = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        window_start = conn.execute("SELECT DISTINCT window_start FROM vis.sync_windows").fetchall()
    assert stored == [expected_row(r, TZ) for r in sorted(records, key=lambda r: r["id"])]
    assert window_start == [(window(DAY, 0).window_start,)]


def test_a_new_version_of_the_schema_is_applied_to_an_existing_warehouse_once(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wh.connect(path) as conn:
        wh.load_window(conn, batch_of([final_event(1)]), window(DAY, 1))
        before = snapshot(conn)
    first = wh.schema_fingerprint()
    # Another version of the schema files: the next writer applies them (options already set
    # are left alone), the one after finds nothing to do.
    monkeypatch.setattr(wh, "schema_fingerprint", lambda: "a-later-version")
    for _ in range(2):
        with wh.connect(path) as conn:
            assert snapshot(conn) == before
            versions = conn.execute("SELECT fingerprint FROM vis.schema_version").fetchall()
    assert sorted(versions) == sorted([(first,), ("a-later-version",)])
