"""Helpers shared by several test modules; the fixtures stay in conftest.py.

- The independent truth of events: what ``vis.events`` must hold for API records, computed with
  ``datetime`` rather than the project's pandas normalisation, and what the warehouse holds.
- API event records written by hand or drawn at random, for normalising and loading.
- A reports warehouse in New York time over the 2026-03-08 clock change, built through the
  pipeline, with calls planted in the simulator to pin down the callback rules.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from vis_pipeline import warehouse as wh
from vis_pipeline.catalog import WarehouseLocation
from vis_pipeline.client import VISClient
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.records import FINAL_STATES, LIVE_STATES, format_instant_ms
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.sync import days_between, local_day_window, sync_days

SMALL = SimulatorOptions(seed=11, start="2026-03-02", days=3, calls_per_day=300, users=6)
"""A small data set: fast to generate and sync, still with ties, midnights and live calls."""


# ----------------------------------------------------------------------------------------------
# The independent truth of events


def instant(value: str | None) -> datetime | None:
    """The independent reading of an API instant: the standard library's ISO parser."""
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def expected_row(record: dict, tz: str) -> dict:
    """The ``vis.events`` row (without synced_at) of one API record, computed with ``datetime``
    rather than the project's pandas normalisation."""
    start = instant(record["startTime"])
    return {
        "event_id": record["id"],
        "external_id": record.get("externalId"),
        "record_type": record["type"],
        "account_id": record["accountId"],
        "user_id": record["userId"],
        "uci_id": record["uciId"],
        "direction": record["direction"],
        "caller_id": record.get("callerId"),
        "phone_number": record["phoneNumber"],
        "state": record["state"],
        "is_final": record["state"] in FINAL_STATES,
        "start_time": start,
        "answer_time": instant(record.get("answerTime")),
        "end_time": instant(record.get("endTime")),
        "duration_ms": record.get("duration"),
        "sms_data": record.get("smsData"),
        "local_date": start.astimezone(ZoneInfo(tz)).date(),
    }


def expected_events(truth: list[dict], tz: str) -> pd.DataFrame:
    """What ``vis.events`` must hold for these API records, sorted by event_id."""
    rows = [expected_row(record, tz) for record in truth]
    return pd.DataFrame(rows).sort_values("event_id", ignore_index=True)


def warehouse_events(location: Path | WarehouseLocation) -> pd.DataFrame:
    """``vis.events`` (timestamps in UTC) sorted by event_id, without synced_at, of the warehouse
    whose SQLite catalog is at ``location`` or which ``location`` names (any catalog)."""
    with wh.connect(location, read_only=True) as conn:
        frame = conn.execute("SELECT * EXCLUDE (synced_at) FROM vis.events ORDER BY event_id").df()
    # DuckDB hands DATE columns to pandas as timestamps; the contract is a calendar date.
    frame["local_date"] = frame["local_date"].dt.date
    return frame


def assert_same_events(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Row for row and field for field, with clear messages on the first difference."""
    assert sorted(actual["event_id"]) == sorted(expected["event_id"]), (
        f"ids differ: {len(set(actual.event_id) - set(expected.event_id))} unexpected, "
        f"{len(set(expected.event_id) - set(actual.event_id))} missing"
    )
    actual_rows = _as_python_rows(actual)
    expected_rows = _as_python_rows(expected[list(actual.columns)])
    for got, want in zip(actual_rows, expected_rows, strict=True):
        assert got == want


def _as_python_rows(frame: pd.DataFrame) -> list[dict]:
    def plain(value: object) -> object:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime().astimezone(UTC)
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        if hasattr(value, "item"):
            return value.item()
        return value

    return [{key: plain(value) for key, value in row.items()} for row in frame.to_dict("records")]


# ----------------------------------------------------------------------------------------------
# API event records for normalising and loading

SYNCED_AT = datetime(2026, 3, 10, 12, 0, 0, 123000, tzinfo=UTC)
"""When the hand-made and random records are normalised."""


CALLERS = [
    "Zoë Ångström",
    "李小龍",
    "محمد",
    "👩‍💻 on call ☎️",
    "e\u0301tienne",  # combining accent
    "",
    "tab\tand\nnewline",
    'quote " and backslash \\',
]


def make_event(event_id: int, start: str, state: str = "ANSWERED", **fields: Any) -> dict:
    """An event in the wire format of the spec's Event schema; ``fields`` add or override."""
    record: dict[str, Any] = {
        "id": event_id,
        "type": "CALL",
        "accountId": 257073,
        "userId": 522078,
        "uciId": 11,
        "direction": "INBOUND",
        "state": state,
        "phoneNumber": "+14155550100",
        "startTime": start,
    }
    record.update(fields)
    return record


def random_events(count: int, seed: int, day: date = date(2026, 3, 8)) -> list[dict]:
    """Events with every field, optional ones sometimes missing or null, ids from 1."""
    rnd = random.Random(seed)
    base = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    events = []
    for index in range(count):
        start = base + rnd.randrange(-6 * 3_600_000, 30 * 3_600_000)
        final = rnd.random() < 0.8
        state = rnd.choice(sorted(FINAL_STATES if final else LIVE_STATES))
        record = make_event(
            index + 1,
            format_instant_ms(start),
            state,
            accountId=rnd.randrange(1, 2**40),
            userId=rnd.randrange(1, 2**62),
            uciId=rnd.randrange(0, 1000),
            direction=rnd.choice(["INBOUND", "OUTBOUND"]),
            phoneNumber=f"+1{rnd.randrange(10**9, 10**10)}",
        )
        if rnd.random() < 0.7:
            record["callerId"] = rnd.choice(CALLERS)
        elif rnd.random() < 0.5:
            record["callerId"] = None
        if rnd.random() < 0.5:
            record["externalId"] = f"ext-{rnd.randrange(10**6)}"
        if rnd.random() < 0.1:
            record["smsData"] = "hello ✉"
        if final:
            answer = start + rnd.randrange(0, 30_000)
            duration = rnd.randrange(0, 3_600_000)
            if state == "ANSWERED":
                record["answerTime"] = format_instant_ms(answer)
            record["endTime"] = format_instant_ms(answer + duration)
            record["duration"] = duration
        events.append(record)
    return events


def expected_synced_row(record: dict, tz: str) -> dict:
    """``expected_row`` with the ``synced_at`` of a normalisation at SYNCED_AT."""
    return {**expected_row(record, tz), "synced_at": SYNCED_AT}


# ----------------------------------------------------------------------------------------------
# The reports warehouse: New York time, over the spring clock change

TZ = "America/New_York"
FIRST, LAST = date(2026, 3, 6), date(2026, 3, 9)
OPTIONS = SimulatorOptions(
    seed=23, start=FIRST.isoformat(), days=4, calls_per_day=220, users=5, tz=TZ
)
ANSWERED = {"ANSWERED", "DETACHED"}
UNKNOWN_USER = 424_242


# ----------------------------------------------------------------------------------------------
# Calls planted in the simulator to pin down the callback rules (numbers no generated call uses)


@dataclass(frozen=True)
class Planted:
    """One planted call: local wall-clock start, direction, final state, remote number."""

    key: str
    local: datetime
    direction: str
    state: str
    phone: str
    user: int | None = None


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo(TZ))


PLANTED = (
    # Missed late on the 7th, called back the next morning, across midnight and the DST change.
    Planted("a_missed", _local(7, 23, 30), "INBOUND", "MISSED", "+353155501"),
    Planted("a_back", _local(8, 9), "OUTBOUND", "ANSWERED", "+353155501"),
    # Answered 24.5 real hours later (the clock change makes the wall clock say 25.5 h).
    Planted("b_missed", _local(7, 10), "INBOUND", "MISSED", "+353155502"),
    Planted("b_late", _local(8, 11, 30), "INBOUND", "ANSWERED", "+353155502"),
    # A second missed call is not a callback: both stay unreturned.
    Planted("c_first", _local(6, 12), "INBOUND", "MISSED", "+353155503"),
    Planted("c_second", _local(6, 14), "INBOUND", "MISSED", "+353155503"),
    # Any outbound call counts as a callback, even one the caller rejected.
    Planted("d_missed", _local(6, 15), "INBOUND", "MISSED", "+353155504"),
    Planted("d_back", _local(6, 16), "OUTBOUND", "REJECTED", "+353155504"),
    # A callback must start strictly after the missed call.
    Planted("e_missed", _local(9, 9), "INBOUND", "MISSED", "+353155505"),
    Planted("e_same", _local(9, 9), "INBOUND", "ANSWERED", "+353155505"),
    # A user vis.users does not know: listed with no name.
    Planted("f_missed", _local(6, 16), "INBOUND", "MISSED", "+353155506", UNKNOWN_USER),
    # Exactly at the end of the window still counts.
    Planted("g_missed", _local(6, 17), "INBOUND", "MISSED", "+353155507"),
    Planted("g_back", _local(7, 17), "OUTBOUND", "ANSWERED", "+353155507"),
    # One real hour apart around the clock change: local hours 1 and 3 of 2026-03-08.
    Planted("dst_before", _local(8, 1, 30), "INBOUND", "ANSWERED", "+353155509"),
    Planted("dst_after", _local(8, 3, 30), "INBOUND", "MISSED", "+353155510"),
    # A caller id that is markup, to be escaped by every HTML output.
    Planted("h_missed", _local(9, 8), "INBOUND", "MISSED", "+353155508"),
    # A caller id with a control character (worksheets cannot hold it).
    Planted("i_missed", _local(9, 8, 30), "INBOUND", "MISSED", "+353155511"),
)
PLANTED_BASE_ID = 9_000_000_000_000
HOSTILE_CALLER = '<script>alert("x")</script> & <b>Bold</b>'
BELL_CALLER = "Bell\x07Ring Ltd"
CALLER_IDS = {"h_missed": HOSTILE_CALLER, "i_missed": BELL_CALLER}


def planted_id(key: str) -> int:
    return PLANTED_BASE_ID + [p.key for p in PLANTED].index(key)


def _iso(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def planted_records(users: list[dict[str, Any]], account_id: int) -> list[dict[str, Any]]:
    """The planted calls as API records."""
    records = []
    for index, call in enumerate(PLANTED):
        user = users[index % len(users)]
        start = call.local.astimezone(UTC)
        record: dict[str, Any] = {
            "id": PLANTED_BASE_ID + index,
            "type": "CALL",
            "accountId": account_id,
            "userId": call.user or user["id"],
            "uciId": user["ucis"][0]["id"],
            "direction": call.direction,
            "state": call.state,
            "phoneNumber": call.phone,
            "callerId": CALLER_IDS.get(call.key, f"Planted {call.key}"),
            "startTime": _iso(start),
        }
        end = start + timedelta(seconds=25)
        if call.state in ANSWERED:
            record["answerTime"] = _iso(start + timedelta(seconds=6))
            end = start + timedelta(seconds=186)
        record["endTime"] = _iso(end)
        record["duration"] = int((end - start).total_seconds() * 1000)
        records.append(record)
    return records


# ----------------------------------------------------------------------------------------------
# Building it through the pipeline


@dataclass(frozen=True)
class Built:
    """A warehouse synced from a simulator, and the API records it was synced from."""

    path: Path
    truth: list[dict[str, Any]]
    users: list[dict[str, Any]]
    tz: str
    first: date
    last: date


def opener(path: Path):
    @contextmanager
    def open_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
        with wh.connect(path) as conn:
            yield conn

    return open_warehouse


def build_warehouse(
    sim: SimulatorProcess, path: Path, first: date, last: date, tz: str, *, plant: bool = True
) -> Built:
    """Plant the calls, sync ``first``..``last``, load the users: the pipeline's own steps."""
    users = sim.control.users()
    if plant:
        sim.control.inject(planted_records(users, users[0]["accountId"]))
    days = days_between(first, last)
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        sync_days(extractor, opener(path), days, tz)
    with wh.connect(path) as conn:
        wh.replace_users(conn, users, datetime.now(UTC))
    start, _ = local_day_window(first, tz)
    _, end = local_day_window(last, tz)
    truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return Built(path, truth, users, tz, first, last)


def copy_warehouse(source: Path, target: Path) -> Path:
    """A copy of the warehouse whose SQLite catalog is ``source`` (its data folder beside it) at
    ``target``: the copy is a warehouse of its own, its data folder beside its catalog."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    shutil.copytree(
        source.with_name(f"{source.stem}-data"), target.with_name(f"{target.stem}-data")
    )
    return target
