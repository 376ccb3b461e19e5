"""Normalisation of API event records into typed frames, checked against per-record truth."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
import pytest
from helpers import CALLERS, SYNCED_AT, instant, make_event, random_events
from helpers import expected_synced_row as expected_row

from vis_pipeline.normalize import NormalizedBatch, normalize_events
from vis_pipeline.records import (
    FINAL_STATES,
    RejectedRecord,
    event_problem,
)

NEW_YORK = "America/New_York"

INT = "int64[pyarrow]"
TEXT = "string[pyarrow]"
FLAG = "bool[pyarrow]"
INSTANT = "timestamp[ms, tz=UTC][pyarrow]"
DAY_TYPE = "date32[day][pyarrow]"
EXPECTED_EVENT_DTYPES = {
    "event_id": INT,
    "external_id": TEXT,
    "record_type": TEXT,
    "account_id": INT,
    "user_id": INT,
    "uci_id": INT,
    "direction": TEXT,
    "caller_id": TEXT,
    "phone_number": TEXT,
    "state": TEXT,
    "is_final": FLAG,
    "start_time": INSTANT,
    "answer_time": INSTANT,
    "end_time": INSTANT,
    "duration_ms": INT,
    "sms_data": TEXT,
    "local_date": DAY_TYPE,
    "synced_at": INSTANT,
}
EXPECTED_RAW_DTYPES = {
    "event_id": INT,
    "payload": TEXT,
    "state": TEXT,
    "is_final": FLAG,
    "start_time": INSTANT,
    "local_date": DAY_TYPE,
}
EXPECTED_REJECTED_DTYPES = {
    "event_id": INT,
    "reason": TEXT,
    "payload": TEXT,
    "local_date": DAY_TYPE,
}


def plain(value: Any) -> Any:
    """A frame value as a plain Python value (NA -> None, Timestamp -> datetime)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def rows(frame: pd.DataFrame) -> list[dict]:
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def normalize(records: list, rejected: list | None = None, tz: str = NEW_YORK) -> NormalizedBatch:
    return normalize_events(records, rejected or [], tz, SYNCED_AT)


def test_dtypes_and_column_order_are_exact() -> None:
    batch = normalize(random_events(50, seed=1), [RejectedRecord("bad", {"id": 3})])
    assert {k: str(v) for k, v in batch.events.dtypes.items()} == EXPECTED_EVENT_DTYPES
    assert list(batch.events.columns) == list(EXPECTED_EVENT_DTYPES)
    assert {k: str(v) for k, v in batch.raw.dtypes.items()} == EXPECTED_RAW_DTYPES
    assert {k: str(v) for k, v in batch.rejected.dtypes.items()} == EXPECTED_REJECTED_DTYPES


def test_empty_batch_has_the_same_dtypes() -> None:
    batch = normalize([])
    assert batch.events.empty and batch.raw.empty and batch.rejected.empty
    assert {k: str(v) for k, v in batch.events.dtypes.items()} == EXPECTED_EVENT_DTYPES
    assert {k: str(v) for k, v in batch.raw.dtypes.items()} == EXPECTED_RAW_DTYPES
    assert {k: str(v) for k, v in batch.rejected.dtypes.items()} == EXPECTED_REJECTED_DTYPES


@pytest.mark.parametrize("tz", ["UTC", NEW_YORK, "Asia/Kolkata"])
def test_every_field_matches_a_per_record_reading(tz: str) -> None:
    records = random_events(400, seed=2)
    assert all(event_problem(record) is None for record in records)
    batch = normalize(records, tz=tz)
    assert rows(batch.events) == [expected_row(record, tz) for record in records]
    assert batch.rejected.empty


def test_raw_rows_carry_the_record_and_its_unknown_fields() -> None:
    records = random_events(30, seed=3)
    records[0]["futureField"] = {"nested": [1, 2, {"deep": "é"}]}
    records[1]["big"] = 2**70  # beyond 64 bits: still kept in the payload
    batch = normalize(records)
    raw = rows(batch.raw)
    assert [row["event_id"] for row in raw] == [record["id"] for record in records]
    assert orjson.loads(raw[0]["payload"]) == records[0]
    assert orjson.loads(raw[0]["payload"])["futureField"] == {"nested": [1, 2, {"deep": "é"}]}
    assert json.loads(raw[1]["payload"])["big"] == 2**70
    for row, record in zip(raw, records, strict=True):
        assert row["state"] == record["state"]
        assert row["is_final"] == (record["state"] in FINAL_STATES)
        assert row["start_time"] == instant(record["startTime"])
        assert (
            row["local_date"] == instant(record["startTime"]).astimezone(ZoneInfo(NEW_YORK)).date()
        )


# (instant, local date in New York): around midnight on ordinary days and on both DST changes.
NEW_YORK_EDGES = [
    ("2026-03-07T04:59:59.999Z", date(2026, 3, 6)),
    ("2026-03-07T05:00:00.000Z", date(2026, 3, 7)),
    # 2026-03-08: clocks go forward at 02:00 (UTC-5 -> UTC-4); the day has 23 hours.
    ("2026-03-08T04:59:59.999Z", date(2026, 3, 7)),
    ("2026-03-08T05:00:00.000Z", date(2026, 3, 8)),
    ("2026-03-08T06:59:59.999Z", date(2026, 3, 8)),
    ("2026-03-08T07:00:00.000Z", date(2026, 3, 8)),
    ("2026-03-09T03:59:59.999Z", date(2026, 3, 8)),
    ("2026-03-09T04:00:00.000Z", date(2026, 3, 9)),
    # 2026-11-01: clocks go back at 02:00 (UTC-4 -> UTC-5); the day has 25 hours.
    ("2026-11-01T03:59:59.999Z", date(2026, 10, 31)),
    ("2026-11-01T04:00:00.000Z", date(2026, 11, 1)),
    ("2026-11-01T05:30:00.000Z", date(2026, 11, 1)),
    ("2026-11-01T06:30:00.000Z", date(2026, 11, 1)),
    ("2026-11-02T04:59:59.999Z", date(2026, 11, 1)),
    ("2026-11-02T05:00:00.000Z", date(2026, 11, 2)),
    # Other spellings of an instant: an offset, no milliseconds, microseconds.
    ("2026-03-08T00:30:00.000-05:00", date(2026, 3, 8)),
    ("2026-03-09T03:59:59Z", date(2026, 3, 8)),
    ("2026-11-01T03:59:59.999999+00:00", date(2026, 10, 31)),
]


def test_local_date_around_new_york_midnights_and_dst_changes() -> None:
    records = [make_event(i + 1, start) for i, (start, _) in enumerate(NEW_YORK_EDGES)]
    batch = normalize(records)
    got = [plain(value) for value in batch.events["local_date"]]
    assert got == [expected for _, expected in NEW_YORK_EDGES]
    # The same answer from the standard library, record by record.
    zone = ZoneInfo(NEW_YORK)
    assert got == [instant(start).astimezone(zone).date() for start, _ in NEW_YORK_EDGES]
    starts = [plain(value) for value in batch.events["start_time"]]
    # Milliseconds are the stored precision: microseconds are truncated, not rounded.
    assert starts[-1] == datetime(2026, 11, 1, 3, 59, 59, 999000, tzinfo=UTC)
    assert starts[-3] == datetime(2026, 3, 8, 5, 30, tzinfo=UTC)


def test_unicode_callers_survive_exactly() -> None:
    records = [
        make_event(i + 1, "2026-03-08T12:00:00.000Z", callerId=c) for i, c in enumerate(CALLERS)
    ]
    batch = normalize(records)
    assert list(batch.events["caller_id"]) == CALLERS
    assert [orjson.loads(p)["callerId"] for p in batch.raw["payload"]] == CALLERS


def test_missing_and_null_optional_fields_are_null() -> None:
    bare = make_event(1, "2026-03-08T12:00:00.000Z", "RINGING")
    nulls = make_event(
        2,
        "2026-03-08T12:00:00.000Z",
        "RINGING",
        callerId=None,
        externalId=None,
        smsData=None,
        answerTime=None,
        endTime=None,
        duration=None,
    )
    batch = normalize([bare, nulls])
    optional = ["external_id", "caller_id", "answer_time", "end_time", "duration_ms", "sms_data"]
    for row in rows(batch.events):
        assert all(row[name] is None for name in optional), row
        assert row["is_final"] is False


@pytest.mark.parametrize(
    "odd",
    [
        {},  # nothing odd: the whole window is serialised in one call
        {"tags": ["a", "\x00", "b"]},  # the marker between records, inside a record
        {"note": ',"\\u0000",'},  # the marker's text inside a string
        {"big": 2**70},  # beyond orjson: every record is serialised on its own
    ],
)
def test_raw_payloads_are_each_record_whichever_way_they_are_serialised(odd: dict) -> None:
    records = random_events(50, seed=6)
    records[20].update(odd)
    batch = normalize(records)
    assert [json.loads(payload) for payload in batch.raw["payload"]] == records
    assert rows(batch.events) == [expected_row(record, NEW_YORK) for record in records]


def test_a_record_that_is_a_sequence_is_rejected_not_read_by_position() -> None:
    records = random_events(10, seed=7)
    records[4] = list(records[4].values())
    records[6] = tuple(records[6].values())
    batch = normalize(records)
    assert len(batch.events) == 8
    assert sorted(batch.rejected["reason"]) == [
        "record is a list, not an object",
        "record is a tuple, not an object",
    ]


def test_invalid_records_are_rejected_and_the_rest_kept() -> None:
    records = random_events(40, seed=4)
    records[3]["duration"] = "60"  # a string where the spec says integer
    records[7] = "not an object"
    records[11]["startTime"] = "2026-13-01T00:00:00Z"
    records[13]["id"] = 2**70  # passes the record contract, does not fit BIGINT
    records[17]["state"] = "TELEPORTED"
    records[19]["callerId"] = "\ud800 lone surrogate"  # valid JSON escape, not valid UTF-8
    bad = {3, 7, 11, 13, 17, 19}
    batch = normalize(records)
    kept = [record for index, record in enumerate(records) if index not in bad]
    assert rows(batch.events) == [expected_row(record, NEW_YORK) for record in kept]
    rejected = rows(batch.rejected)
    assert len(rejected) == len(bad)
    reasons = {row["event_id"]: row["reason"] for row in rejected if row["event_id"]}
    assert reasons[4].startswith("duration")
    assert reasons[12].startswith("startTime")
    assert reasons[18].startswith("state")
    assert reasons[20].startswith("conversion failed")
    without_id = {row["payload"]: row["reason"] for row in rejected if row["event_id"] is None}
    assert without_id['"not an object"'] == "record is a str, not an object"
    # The oversized id stays in the payload only; the reason says conversion failed.
    (oversized,) = [reason for payload, reason in without_id.items() if str(2**70) in payload]
    assert oversized.startswith("conversion failed")
    for row in rejected:
        row["payload"].encode("utf-8")  # always storable text


def test_given_rejected_records_keep_reason_id_payload_and_date() -> None:
    given = [
        RejectedRecord(
            "userId: required field missing", {"id": 9, "startTime": "2026-03-08T04:00:00.000Z"}
        ),
        RejectedRecord("odd", {"startTime": "garbage"}, event_id=77),
        RejectedRecord("bytes", b"\x00\xff"),
        RejectedRecord("set", {"id": True, "tags": {1, 2}}),
    ]
    batch = normalize([make_event(1, "2026-03-08T12:00:00.000Z")], given)
    rejected = rows(batch.rejected)
    assert [row["reason"] for row in rejected] == [
        "userId: required field missing",
        "odd",
        "bytes",
        "set",
    ]
    assert [row["event_id"] for row in rejected] == [9, 77, None, None]
    assert [row["local_date"] for row in rejected] == [date(2026, 3, 7), None, None, None]
    assert orjson.loads(rejected[0]["payload"]) == given[0].payload
    assert isinstance(orjson.loads(rejected[2]["payload"]), str)  # not JSON: its text as a string
    assert len(batch.events) == 1


def test_one_row_per_event_final_version_wins() -> None:
    start = "2026-03-08T12:00:00.000Z"
    live = make_event(5, start, "RINGING")
    final = make_event(5, start, "ANSWERED", endTime="2026-03-08T12:01:00.000Z", duration=60000)
    later_live = make_event(5, start, "ACTIVE")
    other = make_event(6, start, "ACTIVE")
    newer_other = make_event(6, start, "HELD")
    batch = normalize([live, final, later_live, other, newer_other])
    assert list(batch.events["event_id"]) == [5, 6]
    assert list(batch.events["state"]) == ["ANSWERED", "HELD"]
    assert list(batch.raw["state"]) == ["ANSWERED", "HELD"]
    assert orjson.loads(batch.raw["payload"][0]) == final


def test_settings_errors_are_not_record_problems() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_events([], [], "UTC", datetime(2026, 1, 1))
    with pytest.raises(Exception, match="Nowhere/Land"):
        normalize_events([], [], "Nowhere/Land", SYNCED_AT)


def test_synced_at_is_the_batch_time_in_utc() -> None:
    local = SYNCED_AT.astimezone(ZoneInfo(NEW_YORK))
    batch = normalize_events([make_event(1, "2026-03-08T12:00:00.000Z")], [], NEW_YORK, local)
    assert plain(batch.events["synced_at"][0]) == SYNCED_AT
    assert batch.synced_at == SYNCED_AT


def test_speed_of_100k_records_is_reported() -> None:
    records = random_events(100_000, seed=5)
    began = time.perf_counter()
    batch = normalize(records)
    seconds = time.perf_counter() - began
    print(f"\nnormalised {len(batch.events)} events in {seconds:.3f} s")
    assert len(batch.events) == len(records)
    assert batch.events["start_time"].max() - batch.events["start_time"].min() < timedelta(days=2)
